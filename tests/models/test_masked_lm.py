"""The masked language model's encoder (learned, sinusoidal or relative positions): every position
reads both sides, padding is never read, the output layer is the embedding, and a saved model loads
with identical outputs."""

import pytest
import torch
from torch import nn

from seqlab.models import MaskedLM, MaskedLMConfig, from_pretrained
from seqlab.nn import LearnedPositionalEmbedding, RelativePositions, SinusoidalPositionalEncoding


def tiny(positional="learned", **kwargs):
    return MaskedLM(MaskedLMConfig(40, d_model=32, n_heads=4, n_layers=2, max_len=20, dropout=0.0,
                                   positional=positional, **kwargs)).eval()


@pytest.mark.parametrize("positional, module", [("learned", LearnedPositionalEmbedding),
                                                ("sinusoidal", SinusoidalPositionalEncoding),
                                                ("relative", torch.nn.Identity)])
def test_every_position_reads_both_sides(positional, module):
    model = tiny(positional)
    assert isinstance(model.position, module)
    relative = [m for m in model.modules() if isinstance(m, RelativePositions)]
    assert len(relative) == (2 if positional == "relative" else 0)  # one per layer (Shaw et al. §3.3)
    ids = torch.randint(5, 40, (2, 12))
    changed = ids.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 35 + 5
    before, after = model(ids), model(changed)
    assert before.shape == (2, 12, 40)
    assert not torch.allclose(before[:, 2], after[:, 2])  # a token before the change sees it (no causal mask)


@pytest.mark.parametrize("norm_first, positional", [(True, "learned"), (False, "learned"), (True, "relative")])
def test_padding_is_never_read(norm_first, positional):
    model = tiny(positional, norm_first=norm_first)
    ids = torch.randint(5, 40, (1, 8))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)  # [PAD] = 0
    torch.testing.assert_close(model(padded)[:, :8], model(ids), rtol=1e-5, atol=1e-5)


def test_the_output_layer_is_the_embedding_and_the_head_is_berts():
    model = tiny()
    assert model.lm_head.weight is model.embedding.weight and model.lm_head.bias is not None
    hidden = model.encode(torch.randint(5, 40, (1, 6)))
    transform = model.head_transform
    expected = torch.nn.functional.layer_norm(torch.nn.functional.gelu(transform[0](hidden)), (32,),
                                              transform[2].weight, transform[2].bias)
    expected = expected @ model.embedding.weight.T + model.lm_head.bias
    torch.testing.assert_close(model.lm_head(model.head_transform(hidden)), expected)


def test_attention_weights_come_back_per_layer():
    model = tiny()
    logits, maps = model(torch.randint(5, 40, (2, 7)), need_weights=True)
    assert len(maps) == 2 and maps[0].shape == (2, 4, 7, 7)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, 7))


def test_too_long_and_unknown_positional_are_refused():
    with pytest.raises(ValueError, match="longer than max_len=20"):
        tiny()(torch.randint(5, 40, (1, 21)))
    with pytest.raises(ValueError, match="positional must be one of learned, sinusoidal, relative"):
        tiny("rotary")
    with pytest.raises(ValueError, match="max_relative_position must be at least 1"):
        tiny("relative", max_relative_position=0)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "relative"])
def test_save_and_load_round_trip(tmp_path, positional):
    model = tiny(positional)
    with torch.no_grad():  # off the initial values, so that a weight not loaded would show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(tmp_path)
    ids = torch.randint(1, 40, (2, 11))
    for loaded in (MaskedLM.from_pretrained(tmp_path), from_pretrained(tmp_path)):
        assert type(loaded) is MaskedLM and loaded.config == model.config
        assert torch.equal(loaded.eval()(ids), model(ids))
        assert loaded.lm_head.weight is loaded.embedding.weight  # still tied after loading


def test_position_module_adds_the_position_of_each_kind():
    from seqlab.models.masked_lm import position_module
    x = torch.randn(2, 5, 8)
    sinusoidal = position_module("sinusoidal", 8, 20)
    assert sinusoidal.table.shape == (20, 8)  # max_len rows of the fixed table, not its default
    position = torch.arange(5.0)[:, None]
    i = torch.arange(0, 8, 2)
    expected = torch.stack([torch.sin(position / 10000 ** (i / 8)), torch.cos(position / 10000 ** (i / 8))], -1)
    torch.testing.assert_close(sinusoidal(x), x + expected.flatten(1))  # §3.5
    learned = position_module("learned", 8, 20)
    assert learned.embedding.weight.shape == (20, 8)
    torch.testing.assert_close(learned(x), x + learned.embedding.weight[:5])
    for positional in ("rotary", "relative"):  # positions enter the attention instead
        assert isinstance(position_module(positional, 8, 20), nn.Identity)
        assert torch.equal(position_module(positional, 8, 20)(x), x)


def test_the_head_on_chosen_positions_gives_those_positions_logits_and_gradients():
    """``chosen`` sends only the masked positions through the head: the same logits (rows in row-major
    order) and the same gradients as the full (B, T, V) output indexed afterwards."""
    torch.manual_seed(0)
    model = tiny().eval()
    ids = torch.randint(5, 40, (2, 9))
    ids[1, 6:] = 0  # padding
    chosen = torch.zeros(2, 9, dtype=torch.bool)
    chosen[0, [1, 4]], chosen[1, [0, 5]] = True, True
    full = model(ids)  # (B, T, V)
    full_grads = torch.autograd.grad(full[chosen].logsumexp(-1).sum(), list(model.parameters()))
    part = model(ids, chosen=chosen)  # (N, V)
    assert part.shape == (4, full.size(-1))
    torch.testing.assert_close(part, full[chosen], rtol=1e-5, atol=1e-6)
    part_grads = torch.autograd.grad(part.logsumexp(-1).sum(), list(model.parameters()))
    for a, b in zip(part_grads, full_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    logits, maps = model(ids, need_weights=True, chosen=chosen)
    torch.testing.assert_close(logits, part)
    assert len(maps) == len(model.layers)
