"""Every model whose forward computes attention returns the weights from that call
(``need_weights=True`` -> (output, attention)), keeps none of them on its modules, and still runs the
fused kernel when they are not asked for."""

import pytest
import torch
from torch import Tensor

from seqlab.models import (ConvSeq2Seq, ConvSeq2SeqConfig, Seq2Seq, Seq2SeqConfig, Transformer, TransformerConfig,
                           TransformerLM, TransformerLMConfig)
from seqlab.models import forecasters as fm
from seqlab.models.classifiers import TransformerClassifier, TransformerClassifierConfig
from seqlab.models.vit import VisionTransformer, VisionTransformerConfig


def tokens(B: int, T: int, vocab: int) -> Tensor:
    return torch.randint(1, vocab, (B, T))


def padded_source() -> Tensor:
    src = tokens(2, 6, 11)
    src[1, 4:] = 0  # the second sentence has 4 real tokens
    return src


# name -> (model, inputs, the shapes of the attention it returns: per layer (B, H, T_q, T_k))
CASES = {
    "transformer": (lambda: Transformer(TransformerConfig(11, 13, d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0)),
                    lambda: (padded_source(), tokens(2, 4, 13)),
                    {"encoder": [(2, 2, 6, 6)] * 2, "decoder": [(2, 2, 4, 4)] * 2, "cross": [(2, 2, 4, 6)] * 2}),
    "lm": (lambda: TransformerLM(TransformerLMConfig(20, d_model=16, n_heads=2, n_layers=2, max_len=16)),
           lambda: (tokens(2, 7, 20),), [(2, 2, 7, 7)] * 2),
    "lm-rotary": (lambda: TransformerLM(TransformerLMConfig(20, d_model=16, n_heads=2, n_layers=3, max_len=16, positional="rotary")),
                  lambda: (tokens(1, 5, 20),), [(1, 2, 5, 5)] * 3),
    "seq2seq-attention": (lambda: Seq2Seq(Seq2SeqConfig(11, 13, kind="attention", embed_dim=8, hidden_size=8, dropout=0.0)),
                          lambda: (padded_source(), tokens(2, 4, 13)), {"cross": [(2, 1, 4, 6)]}),
    "conv-seq2seq": (lambda: ConvSeq2Seq(ConvSeq2SeqConfig(11, 13, embed_dim=8, hidden_size=8, n_layers=2, dropout=0.0, max_len=16)),
                     lambda: (padded_source(), tokens(2, 4, 13)), {"cross": [(2, 1, 4, 6)] * 2}),
    "timestep-forecaster": (lambda: fm.TimeStepTransformer(fm.TimeStepTransformerConfig(3, 12, 4, d_model=16, n_heads=2, n_layers=2, d_ff=32,
                                                           dropout=0.0)),
                            lambda: (torch.randn(2, 12, 3),), [(2, 2, 12, 12)] * 2),
    # 12 steps, patches of 4 every 4, padded by one stride: 4 patches for each of the 2·3 series
    "patch-forecaster": (lambda: fm.PatchTransformer(fm.PatchTransformerConfig(3, 12, 4, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                                     dropout=0.0, patch_len=4, stride=4)),
                         lambda: (torch.randn(2, 12, 3),), [(6, 2, 4, 4)]),
    "classifier": (lambda: TransformerClassifier(TransformerClassifierConfig(20, 3, d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0,
                                                 max_len=16, pool="cls")),
                   lambda: (tokens(2, 5, 20),), [(2, 2, 6, 6)] * 2),  # [CLS] + 5 tokens
    "vit": (lambda: VisionTransformer(VisionTransformerConfig(8, 10, patch_size=4, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0)),
            lambda: (torch.rand(2, 1, 8, 8),), [(2, 2, 5, 5)]),  # [CLS] + 4 patches
}


def tensors_held(model: torch.nn.Module) -> dict[tuple[str, str], int]:
    """Every tensor a module keeps as a plain attribute (parameters and buffers live elsewhere),
    also inside a list, tuple or dict: (module, attribute) -> id of the value."""
    held = {}
    for name, module in model.named_modules():
        for attribute, value in vars(module).items():
            inside = value.values() if isinstance(value, dict) and not attribute.startswith("_") else (
                value if isinstance(value, (list, tuple)) else [value])
            if any(isinstance(v, Tensor) for v in inside):
                held[(name, attribute)] = id(value)
    return held


@pytest.mark.parametrize("name", CASES)
def test_forward_returns_the_weights_and_keeps_none(name):
    torch.manual_seed(0)
    build, inputs, shapes = CASES[name]
    model, inputs = build().eval(), inputs()
    before = tensors_held(model)
    with torch.no_grad():
        output, attention = model(*inputs, need_weights=True)
        assert tensors_held(model) == before, "forward left a tensor on a module"
        torch.testing.assert_close(output, model(*inputs))  # the weights are extra, the output the same
    if isinstance(shapes, dict):
        assert set(attention) == set(shapes)
        got = {kind: [tuple(w.shape) for w in maps] for kind, maps in attention.items()}
        maps = [w for kind in attention for w in attention[kind]]
    else:
        got, maps = [tuple(w.shape) for w in attention], attention
    assert got == shapes
    for weights in maps:  # each query's weights: a distribution over the keys
        assert (weights >= 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_transformer_weights_follow_the_masks():
    torch.manual_seed(0)
    model = CASES["transformer"][0]().eval()
    src, tgt = padded_source(), tokens(2, 4, 13)
    _, attention = model(src, tgt, need_weights=True)
    for weights in attention["encoder"] + attention["cross"]:
        assert (weights[1, ..., 4:] == 0).all()  # no query reads the second sentence's padding
        assert (weights[1, ..., :4] > 0).all()
    future = ~torch.ones(4, 4, dtype=torch.bool).tril()
    for weights in attention["decoder"]:
        assert (weights[..., future] == 0).all()  # nor an output position the ones after it


def test_two_calls_return_their_own_weights():
    """What a second call computes does not change what the first one was given."""
    torch.manual_seed(0)
    model = CASES["lm"][0]().eval()
    with torch.no_grad():
        _, first = model(torch.tensor([[1, 2, 3, 4]]), need_weights=True)
        kept = [w.clone() for w in first]
        _, second = model(torch.tensor([[5, 6]]), need_weights=True)
    assert [w.shape[-1] for w in second] == [2, 2]
    for w, k in zip(first, kept):
        torch.testing.assert_close(w, k, rtol=0, atol=0)


@pytest.mark.parametrize("name, calls", [("transformer", 2 + 2 * 2), ("lm", 2), ("classifier", 2)])
def test_fused_kernel_runs_unless_weights_are_asked_for(name, calls, monkeypatch):
    import torch.nn.functional as F

    fused = F.scaled_dot_product_attention
    seen = []

    def counting(*args, **kwargs):
        seen.append(1)
        return fused(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    torch.manual_seed(0)
    build, inputs, _ = CASES[name]
    model, inputs = build().eval(), inputs()
    with torch.no_grad():
        model(*inputs)
        assert len(seen) == calls  # float32 on any device: every attention through the fused kernel
        seen.clear()
        model(*inputs, need_weights=True)
        assert seen == []  # the weights need the explicit softmax
