"""TransformerClassifier's config checks and the modules its config builds, read off the model's own
parts and compared with what the config asks for (written out here), and the "last"/"first" pools
against indexing computed by hand."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqlab.models.classifiers import TransformerClassifier, TransformerClassifierConfig


def config(**kw):
    base = dict(vocab_size=11, n_classes=3, d_model=8, n_heads=2, n_layers=2, d_ff=16, dropout=0.25, max_len=10)
    base.update(kw)
    return TransformerClassifierConfig(**base)


def test_config_errors_name_the_choices():
    with pytest.raises(ValueError, match=r"^pool must be one of mean, cls, first, last; got 'max'$"):
        config(pool="max")
    with pytest.raises(ValueError, match=r"^pool='last' goes with causal=True, and causal=True with pool='last'$"):
        config(pool="last")
    with pytest.raises(ValueError, match=r"^positional must be one of learned, sinusoidal, rotary, relative; "
                                         r"got 'alibi'$"):
        config(positional="alibi")
    with pytest.raises(ValueError, match=r"^max_relative_position must be at least 1; got 0$"):
        config(max_relative_position=0)
    assert config(positional="relative", max_relative_position=1).max_relative_position == 1


@pytest.mark.parametrize("pool,causal,extra", [("mean", False, 1), ("cls", False, 1), ("first", False, 0),
                                               ("last", True, 0)])
def test_learned_positions_one_more_for_a_cls_vector(pool, causal, extra):
    model = TransformerClassifier(config(pool=pool, causal=causal))
    assert model.position.embedding.weight.shape == (10 + extra, 8)
    assert model.cls.shape == (1, 1, 8)


def test_cls_vector_is_small():
    torch.manual_seed(0)
    cls = TransformerClassifier(config(d_model=256, n_heads=4, pool="cls")).cls
    assert 0.01 < cls.std().item() < 0.03  # randn · 0.02


@pytest.mark.parametrize("pool,causal,length", [("mean", False, 11), ("first", False, 10), ("last", True, 10)])
def test_rotary_tables(pool, causal, length):
    model = TransformerClassifier(config(positional="rotary", pool=pool, causal=causal))
    for layer in model.layers:
        rotary = layer.self_attn.rotary
        assert rotary is not None and rotary.d_head == 4 and isinstance(rotary.d_head, int)
        assert rotary.cos.shape == (length, 2)
    for positional in ("learned", "sinusoidal", "relative"):
        model = TransformerClassifier(config(positional=positional))
        assert all(layer.self_attn.rotary is None for layer in model.layers)


@pytest.mark.parametrize("norm_first", [True, False])
def test_layers_follow_the_config(norm_first):
    model = TransformerClassifier(config(norm_first=norm_first, activation="gelu", layer_norm_eps=1e-7))
    x = torch.linspace(-3, 3, 16)
    for layer in model.layers:
        assert layer.norm_first is norm_first
        assert layer.dropout.p == 0.25 and layer.self_attn.dropout == 0.25 and layer.ff.dropout.p == 0.25
        torch.testing.assert_close(layer.ff.activation(x), F.gelu(x))
    assert isinstance(model.norm, nn.LayerNorm) is norm_first
    assert all(m.eps == 1e-7 for m in model.modules() if isinstance(m, nn.LayerNorm))


def test_pooler_is_linear_then_tanh():
    model = TransformerClassifier(config(pooler=True)).eval()
    linear, tanh = model.pooler
    assert isinstance(linear, nn.Linear) and (linear.in_features, linear.out_features) == (8, 8)
    assert isinstance(tanh, nn.Tanh)
    h = torch.randn(4, 8)
    torch.testing.assert_close(model.pooler(h), torch.tanh(h @ linear.weight.T + linear.bias))
    assert isinstance(TransformerClassifier(config()).pooler, nn.Identity)


def _captured_final_states(model, ids):
    seen = {}
    model.norm.register_forward_hook(lambda m, i, o: seen.setdefault("x", o))
    logits = model(ids)
    return logits, seen["x"]


def test_last_pool_reads_the_last_real_token():
    torch.manual_seed(0)
    model = TransformerClassifier(config(pool="last", causal=True)).eval()
    ids = torch.tensor([[3, 4, 5, 0, 0], [6, 0, 0, 0, 0], [1, 2, 3, 4, 5]])
    logits, x = _captured_final_states(model, ids)
    pooled = torch.stack([x[0, 2], x[1, 0], x[2, 4]])
    torch.testing.assert_close(logits, pooled @ model.head.weight.T + model.head.bias)


def test_first_pool_reads_position_zero():
    torch.manual_seed(0)
    model = TransformerClassifier(config(pool="first")).eval()
    ids = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    logits, x = _captured_final_states(model, ids)
    torch.testing.assert_close(logits, x[:, 0] @ model.head.weight.T + model.head.bias)


def test_last_pool_on_the_meta_device():
    # the positions must be made on the ids' device: on a meta model, CPU index tensors fail
    model = TransformerClassifier(config(pool="last", causal=True, dropout=0.0)).to("meta").eval()
    ids = torch.ones(2, 5, dtype=torch.long, device="meta")
    assert model(ids).shape == (2, 3)
