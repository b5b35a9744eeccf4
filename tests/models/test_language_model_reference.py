"""The decoder-only LM against torch's own encoder stack run under a causal mask with the same weights
(GPT's block: Radford et al., 2018), GPT-2's initialisation and the config's checks."""

import math

import pytest
import torch
from torch import nn

from seqlab.models import TransformerLM, TransformerLMConfig
from seqlab.models.language_model import check_positional

D, H = 16, 2
IDS = torch.tensor([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])


def copy_layer(ours, theirs):
    for projection in (ours.self_attn.w_q, ours.self_attn.w_k, ours.self_attn.w_v, ours.self_attn.w_o):
        nn.init.normal_(projection.weight, std=0.3)  # GPT-2's small start makes attention all but uniform
        nn.init.normal_(projection.bias, std=0.3)
    theirs.self_attn.in_proj_weight.copy_(torch.cat([ours.self_attn.w_q.weight, ours.self_attn.w_k.weight,
                                                     ours.self_attn.w_v.weight]))
    theirs.self_attn.in_proj_bias.copy_(torch.cat([ours.self_attn.w_q.bias, ours.self_attn.w_k.bias,
                                                   ours.self_attn.w_v.bias]))
    theirs.self_attn.out_proj.load_state_dict(ours.self_attn.w_o.state_dict())
    for name in ("linear1", "linear2"):
        nn.init.normal_(getattr(ours.ff, name).bias)  # GPT-2 starts them at zero: make them count
        getattr(theirs, name).load_state_dict(getattr(ours.ff, name).state_dict())
    for name in ("norm1", "norm2"):
        nn.init.normal_(getattr(ours, name).weight), nn.init.normal_(getattr(ours, name).bias)
        getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())


@torch.no_grad()
def torch_stack(model: TransformerLM) -> nn.TransformerEncoder:
    c = model.config
    assert len(model.layers) == c.n_layers
    stack = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, c.d_ff, 0.0, c.activation, batch_first=True,
                                                             norm_first=c.norm_first),
                                  c.n_layers, enable_nested_tensor=False)
    for ours, theirs in zip(model.layers, stack.layers, strict=True):
        copy_layer(ours, theirs)
    return stack.eval()


def reference(model, stack, embedded):
    T = embedded.size(1)
    h = stack(embedded, mask=torch.ones(T, T, dtype=torch.bool).triu(1))  # torch: True = may NOT attend
    if model.config.norm_first:  # pre-LN ends with a LayerNorm (GPT-2)
        h = nn.functional.layer_norm(h, (D,), model.norm.weight, model.norm.bias)
    return h @ model.lm_head.weight.T


def test_pre_ln_gpt_with_learned_positions_is_torchs_encoder_under_a_causal_mask():
    model = TransformerLM(TransformerLMConfig(10, d_model=D, n_heads=H, n_layers=2, max_len=9, dropout=0.2)).eval()
    stack = torch_stack(model)
    with torch.no_grad():
        nn.init.normal_(model.norm.weight), nn.init.normal_(model.norm.bias)
    assert model.position.embedding.weight.shape == (9, D)
    embedded = model.embedding.weight[IDS] + model.position.embedding.weight[:7]
    expected = reference(model, stack, embedded)
    torch.testing.assert_close(model(IDS), expected, atol=1e-5, rtol=1e-4)
    assert model.lm_head.weight is model.embedding.weight and model.lm_head.bias is None
    logits, maps = model(IDS, need_weights=True)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-4)
    assert len(maps) == 2
    for m in maps:
        assert m.shape == (2, H, 7, 7)
        assert (m * torch.ones(7, 7).triu(1)).abs().max() == 0  # nothing sees the future
        torch.testing.assert_close(m.sum(-1), torch.ones(2, H, 7))
    # a prompt of 3, then 4 new positions at once: the lower-right part of the causal mask
    cache = model.new_cache()
    first = model(IDS[:, :3], cache)
    assert cache.offset == 3
    rest, rest_maps = model(IDS[:, 3:], cache, need_weights=True)
    torch.testing.assert_close(torch.cat([first, rest], 1), expected, atol=1e-5, rtol=1e-4)
    assert rest_maps[0].shape == (2, H, 4, 7) and (rest_maps[0][..., 3:] * torch.ones(4, 4).triu(1)).abs().max() == 0


def test_post_ln_relu_with_the_scaled_sinusoidal_table_is_torchs_encoder_under_a_causal_mask():
    model = TransformerLM(TransformerLMConfig(10, d_model=D, n_heads=H, n_layers=3, d_ff=24, norm_first=False,
                                              activation="relu", positional="sinusoidal", embedding_scale=True,
                                              tie_weights=False)).eval()
    stack = torch_stack(model)
    assert isinstance(model.norm, nn.Identity) and model.lm_head.weight is not model.embedding.weight
    position = torch.arange(7.0)[:, None]
    i = torch.arange(0, D, 2)
    table = torch.stack([torch.sin(position / 10000 ** (i / D)), torch.cos(position / 10000 ** (i / D))], -1)
    embedded = model.embedding.weight[IDS] * math.sqrt(D) + table.flatten(1)  # §3.4, §3.5
    expected = reference(model, stack, embedded)
    torch.testing.assert_close(model(IDS), expected, atol=1e-5, rtol=1e-4)
    assert model.position.table.shape == (model.config.max_len, D)  # the fixed table holds max_len positions
    logits, maps = model(IDS, need_weights=True)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-4)
    two, _ = model(IDS[:, :2], need_weights=True)  # two positions: the first must not see the second
    torch.testing.assert_close(two, expected[:, :2], atol=1e-5, rtol=1e-4)
    # one position at a time with a cache
    cache = model.new_cache()
    steps = torch.cat([model(IDS[:, t:t + 1], cache) for t in range(7)], 1)
    torch.testing.assert_close(steps, expected, atol=1e-5, rtol=1e-4)


def test_one_position_without_a_cache():
    model = TransformerLM(TransformerLMConfig(10, d_model=D, n_heads=H, n_layers=1, max_len=9)).eval()
    stack = torch_stack(model)
    embedded = model.embedding.weight[IDS[:, :1]] + model.position.embedding.weight[:1]
    torch.testing.assert_close(model(IDS[:, :1]), reference(model, stack, embedded), atol=1e-5, rtol=1e-4)
    logits, maps = model(IDS[:, :1], need_weights=True)
    assert maps[0].shape == (2, H, 1, 1)


def test_dropout_rates_reach_every_part():
    model = TransformerLM(TransformerLMConfig(10, d_model=D, n_heads=H, n_layers=2, dropout=0.1,
                                              attention_dropout=0.2, ff_dropout=0.3))
    assert model.dropout.p == 0.1
    for layer in model.layers:
        assert layer.dropout.p == 0.1 and layer.self_attn.dropout == 0.2 and layer.ff.dropout.p == 0.3
    model.train()
    torch.manual_seed(0)
    assert not torch.equal(model(IDS), model(IDS))


def test_rotary_positions_go_into_every_layers_attention():
    model = TransformerLM(TransformerLMConfig(10, d_model=D, n_heads=H, n_layers=2, max_len=9, positional="rotary"))
    assert model.position is None
    for layer in model.layers:
        assert layer.self_attn.rotary is not None and layer.self_attn.rotary.d_head == D // H
        assert layer.self_attn.rotary.cos.shape == (9, D // H // 2)  # a table of max_len positions
        assert layer.self_attn.relative is None
    relative = TransformerLM(TransformerLMConfig(10, d_model=D, n_heads=H, n_layers=2, positional="relative",
                                                 max_relative_position=3))
    for layer in relative.layers:
        assert layer.self_attn.rotary is None and layer.self_attn.relative.max_distance == 3
        assert layer.self_attn.relative.key.weight.shape == (7, D // H)


def test_gpt2_initialisation():
    torch.manual_seed(0)
    n_layers, d = 3, 64
    model = TransformerLM(TransformerLMConfig(100, d_model=d, n_heads=2, n_layers=n_layers, tie_weights=False))
    residual = {id(m.weight) for layer in model.layers for m in (layer.self_attn.w_o, layer.ff.linear2)}
    assert len(residual) == 2 * n_layers
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            std = 0.02 / math.sqrt(2 * n_layers) if id(module.weight) in residual else 0.02
            assert abs(module.weight.std().item() - std) < 0.06 * std, name
            assert abs(module.weight.mean().item()) < 0.1 * std, name
        if isinstance(module, nn.Linear) and module.bias is not None:
            assert module.bias.abs().max() == 0, name
    assert model.layers[0].ff.linear1.weight.shape == (4 * d, d)  # d_ff = 4 · d_model by default


def test_config_is_checked():
    assert TransformerLMConfig(10, d_model=8).d_ff == 32
    assert TransformerLMConfig(10, d_model=8, d_ff=12).d_ff == 12
    with pytest.raises(ValueError, match="^positional must be one of learned, sinusoidal, rotary, relative; "
                                         "got 'alibi'$"):
        TransformerLMConfig(10, positional="alibi")
    with pytest.raises(ValueError, match="^max_relative_position must be at least 1; got 0$"):
        TransformerLMConfig(10, max_relative_position=0)
    TransformerLMConfig(10, max_relative_position=1)
    with pytest.raises(ValueError, match="^positional must be one of a, b; got 'c'$"):
        check_positional("c", ("a", "b"), 2)
    check_positional("b", ("a", "b"), 1)
