import pytest
import torch
from torch import nn

from seqlab.nn import (Decoder, DecoderLayer, Encoder, EncoderLayer, KVCache, LearnedPositionalEmbedding,
                       MultiHeadAttention, PositionwiseFeedForward, RelativePositions, RotaryEmbedding,
                       SinusoidalPositionalEncoding, causal_mask, decoder_layer, encoder_layer, padding_mask)

from torch_reference import copy_attention  # tests/ is on sys.path (its conftest)



def copy_common(ours, ref):
    with torch.no_grad():
        for name in ("linear1", "linear2"):
            getattr(ref, name).load_state_dict(getattr(ours.ff, name).state_dict())
        for name in ("norm1", "norm2", "norm3"):
            if hasattr(ref, name):
                getattr(ref, name).load_state_dict(getattr(ours, name).state_dict())
                nn.init.normal_(getattr(ref, name).weight)  # non-trivial norms, copied back
                getattr(ours, name).load_state_dict(getattr(ref, name).state_dict())


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_torch(norm_first):
    D, H, F = 16, 4, 32
    ours = encoder_layer(D, H, F, dropout=0.0, norm_first=norm_first).eval()
    ref = nn.TransformerEncoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    copy_attention(ours.self_attn, ref.self_attn)
    copy_common(ours, ref)
    tokens = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    x = torch.randn(2, 6, D)
    out = ours(x, padding_mask(tokens, 0))
    expected = ref(x, src_key_padding_mask=tokens == 0)
    # torch's fast path returns zeros at padded positions; compare real positions.
    real = tokens != 0
    torch.testing.assert_close(out[real], expected[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_torch(norm_first):
    D, H, F, T, S = 16, 4, 32, 5, 6
    ours = decoder_layer(D, H, F, dropout=0.0, norm_first=norm_first).eval()
    ref = nn.TransformerDecoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    copy_attention(ours.self_attn, ref.self_attn)
    copy_attention(ours.cross_attn, ref.multihead_attn)
    copy_common(ours, ref)
    src = torch.tensor([[1] * 6, [1] * 2 + [0] * 4])
    x, memory = torch.randn(2, T, D), torch.randn(2, S, D)
    out = ours(x, memory, causal_mask(T), padding_mask(src, 0))
    expected = ref(x, memory, tgt_mask=~causal_mask(T), memory_key_padding_mask=src == 0)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_layers_return_the_weights_torch_computes():
    """need_weights=True returns (x, weights): per head, what torch's MultiheadAttention computes on
    the same input (post-LN: the first sub-layer reads x itself), and x as without weights."""
    torch.manual_seed(0)
    D, H, F, T, S = 16, 4, 32, 5, 6
    x, memory = torch.randn(2, T, D), torch.randn(2, S, D)
    ref = nn.MultiheadAttention(D, H, batch_first=True).eval()

    encoder = encoder_layer(D, H, F, dropout=0.0).eval()
    copy_attention(encoder.self_attn, ref)
    tokens = torch.tensor([[1] * T, [1] * 3 + [0] * 2])
    out, weights = encoder(x, padding_mask(tokens, 0), need_weights=True)
    _, expected = ref(x, x, x, key_padding_mask=tokens == 0, average_attn_weights=False)
    torch.testing.assert_close(weights, expected, atol=1e-6, rtol=1e-5)  # (B, H, T, T)
    torch.testing.assert_close(out, encoder(x, padding_mask(tokens, 0)))

    decoder = decoder_layer(D, H, F, dropout=0.0).eval()
    copy_attention(decoder.self_attn, ref)
    out, (self_weights, cross_weights) = decoder(x, memory, causal_mask(T), need_weights=True)
    _, expected = ref(x, x, x, attn_mask=~causal_mask(T), average_attn_weights=False)
    torch.testing.assert_close(self_weights, expected, atol=1e-6, rtol=1e-5)
    assert cross_weights.shape == (2, H, T, S)
    torch.testing.assert_close(out, decoder(x, memory, causal_mask(T)))


def torch_layout_gradients(ours) -> dict[str, torch.Tensor]:
    """Our layer's gradients under the names and shapes of torch's Transformer{Encoder,Decoder}Layer."""
    grads = {}
    for name, torch_name in (("self_attn", "self_attn"), ("cross_attn", "multihead_attn")):
        if hasattr(ours, name):
            attn = getattr(ours, name)
            projections = (attn.w_q, attn.w_k, attn.w_v)
            grads[f"{torch_name}.in_proj_weight"] = torch.cat([p.weight.grad for p in projections])
            grads[f"{torch_name}.in_proj_bias"] = torch.cat([p.bias.grad for p in projections])
            grads[f"{torch_name}.out_proj.weight"] = attn.w_o.weight.grad
            grads[f"{torch_name}.out_proj.bias"] = attn.w_o.bias.grad
    for name, p in ours.named_parameters():
        if not name.startswith(("self_attn.", "cross_attn.")):
            grads[name.removeprefix("ff.")] = p.grad
    return grads


def assert_same_gradients(ours, ref, out, expected, inputs):
    """Outputs, then the gradients of every parameter and every input, under one random loss."""
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    target = torch.randn_like(out)
    ours_input_grads = torch.autograd.grad((out * target).sum(), inputs, retain_graph=True)
    ref_input_grads = torch.autograd.grad((expected * target).sum(), inputs, retain_graph=True)
    (out * target).sum().backward()
    (expected * target).sum().backward()
    for i, (a, b) in enumerate(zip(ours_input_grads, ref_input_grads)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=f"input {i}")
    reference = dict(ref.named_parameters())
    grads = torch_layout_gradients(ours)
    assert grads.keys() == reference.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference[name].grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradients_equal_torch(norm_first):
    D, H, F = 16, 4, 32
    ours = encoder_layer(D, H, F, dropout=0.0, norm_first=norm_first)
    ref = nn.TransformerEncoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first)
    copy_attention(ours.self_attn, ref.self_attn)
    copy_common(ours, ref)
    tokens = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    x = torch.randn(2, 6, D, requires_grad=True)
    assert_same_gradients(ours, ref, ours(x, padding_mask(tokens, 0)), ref(x, src_key_padding_mask=tokens == 0), (x,))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_gradients_equal_torch(norm_first):
    D, H, F, T, S = 16, 4, 32, 5, 6
    ours = decoder_layer(D, H, F, dropout=0.0, norm_first=norm_first)
    ref = nn.TransformerDecoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first)
    copy_attention(ours.self_attn, ref.self_attn)
    copy_attention(ours.cross_attn, ref.multihead_attn)
    copy_common(ours, ref)
    src = torch.tensor([[1] * 6, [1] * 2 + [0] * 4])
    x, memory = torch.randn(2, T, D, requires_grad=True), torch.randn(2, S, D, requires_grad=True)
    out = ours(x, memory, causal_mask(T), padding_mask(src, 0))
    expected = ref(x, memory, tgt_mask=~causal_mask(T), memory_key_padding_mask=src == 0)
    assert_same_gradients(ours, ref, out, expected, (x, memory))


def test_encoder_layer_fully_padded_row_has_no_nan():
    layer = encoder_layer(8, 2, 16, dropout=0.0)
    out = layer(torch.randn(2, 4, 8), padding_mask(torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]]), 0))
    assert torch.isfinite(out).all()


class Zero(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def test_encoder_layer_is_composed_from_the_parts_it_is_given():
    attention, norm = MultiHeadAttention(8, 2), nn.LayerNorm(8)
    layer = EncoderLayer(attention, Zero(), norm, nn.Identity(), dropout=0.0, norm_first=False).eval()
    x = torch.randn(2, 5, 8)
    # Post-LN: norm1(x + SelfAttention(x)), then a feed-forward part that adds nothing, unnormalised.
    torch.testing.assert_close(layer(x), norm(x + attention(x, x, x)[0]))
    assert layer.self_attn is attention and isinstance(layer.ff, Zero)


def test_sinusoidal_encoding_equals_formula_and_extends():
    d, pe = 6, SinusoidalPositionalEncoding(6, max_len=10)
    table = pe.encoding(20)  # past max_len
    for pos in (0, 3, 17):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert table[pos, 2 * i].item() == pytest.approx(torch.tensor(angle).sin().item(), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(torch.tensor(angle).cos().item(), abs=1e-6)
    torch.testing.assert_close(pe.encoding(3, offset=15), table[15:18])


def test_learned_positions_refuse_overlong_input():
    pe = LearnedPositionalEmbedding(4, 8)
    assert pe(torch.zeros(1, 4, 8)).shape == (1, 4, 8)
    with pytest.raises(ValueError, match="max_len"):
        pe(torch.zeros(1, 5, 8))


def test_feedforward_is_position_wise():
    ff = PositionwiseFeedForward(8, 16)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(ff(x)[:, 3], ff(x[:, 3:4])[:, 0])
    assert ff.linear1.out_features == 16 and ff.linear2.out_features == 8


def test_layers_default_to_the_papers_post_ln_and_residual_dropout():
    """Vaswani et al. 2017: LayerNorm(x + Sublayer(x)) (§3.1) and P_drop = 0.1 (§5.4)."""
    self_attn, cross_attn, norm = MultiHeadAttention(8, 2), MultiHeadAttention(8, 2), nn.LayerNorm(8)
    nn.init.normal_(norm.weight)
    x, memory = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    encoder = EncoderLayer(self_attn, Zero(), norm, nn.Identity())
    assert encoder.dropout.p == 0.1
    torch.testing.assert_close(encoder.eval()(x), norm(x + self_attn(x, x, x)[0]))
    decoder = DecoderLayer(self_attn, cross_attn, Zero(), norm, nn.Identity(), nn.Identity())
    assert decoder.dropout.p == 0.1
    h = norm(x + self_attn(x, x, x)[0])
    torch.testing.assert_close(decoder.eval()(x, memory), h + cross_attn(h, memory, memory)[0])
    for layer in (encoder_layer(8, 2, 16), decoder_layer(8, 2, 16)):
        assert layer.dropout.p == 0.1 and layer.ff.dropout.p == 0.1 and not layer.norm_first
        assert attention_rates(layer) == [0.1] * (1 if isinstance(layer, EncoderLayer) else 2)


def attention_rates(layer) -> list[float]:
    return [module.dropout for module in layer.modules() if isinstance(module, MultiHeadAttention)]


@pytest.mark.parametrize("build, n_attentions", [(encoder_layer, 1), (decoder_layer, 2)])
def test_builders_route_each_dropout_rate(build, n_attentions):
    layer = build(8, 2, 16, dropout=0.3)
    assert layer.dropout.p == 0.3 and layer.ff.dropout.p == 0.3 and attention_rates(layer) == [0.3] * n_attentions
    layer = build(8, 2, 16, dropout=0.3, attention_dropout=0.0, ff_dropout=0.2)
    assert layer.dropout.p == 0.3 and layer.ff.dropout.p == 0.2 and attention_rates(layer) == [0.0] * n_attentions


def test_builders_pass_the_position_modules_to_self_attention_only():
    rope = RotaryEmbedding(4)
    assert encoder_layer(8, 2, 16, rotary=rope).self_attn.rotary is rope
    relative = RelativePositions(4, 3)
    assert encoder_layer(8, 2, 16, relative=relative).self_attn.relative is relative
    decoder = decoder_layer(8, 2, 16, relative=relative)
    assert decoder.self_attn.relative is relative and decoder.cross_attn.relative is None


@pytest.mark.parametrize("norm_first", [False, True])
def test_layers_with_gelu_equal_torch(norm_first):
    D, H, F, T, S = 16, 4, 32, 5, 6
    x, memory = torch.randn(2, T, D), torch.randn(2, S, D)
    ours = encoder_layer(D, H, F, dropout=0.0, norm_first=norm_first, activation="gelu").eval()
    ref = nn.TransformerEncoderLayer(D, H, F, dropout=0.0, activation="gelu", batch_first=True,
                                     norm_first=norm_first).eval()
    copy_attention(ours.self_attn, ref.self_attn)
    copy_common(ours, ref)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    ours = decoder_layer(D, H, F, dropout=0.0, norm_first=norm_first, activation="gelu").eval()
    ref = nn.TransformerDecoderLayer(D, H, F, dropout=0.0, activation="gelu", batch_first=True,
                                     norm_first=norm_first).eval()
    copy_attention(ours.self_attn, ref.self_attn)
    copy_attention(ours.cross_attn, ref.multihead_attn)
    copy_common(ours, ref)
    torch.testing.assert_close(ours(x, memory), ref(x, memory), atol=1e-5, rtol=1e-5)


# Stacks (§3.1: N identical layers) against torch's TransformerEncoder / TransformerDecoder.

D, H, F = 16, 4, 32


def torch_pair(kind: str, norm_first: bool, n_layers: int = 2):
    """Our stack and torch's, with the same weights (non-trivial LayerNorms); pre-LN stacks end with a
    final LayerNorm, as torch's ``norm=``."""
    final = (lambda: nn.LayerNorm(D)) if norm_first else (lambda: None)
    if kind == "encoder":
        ours = Encoder([encoder_layer(D, H, F, dropout=0.0, norm_first=norm_first) for _ in range(n_layers)], final())
        ref = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, F, dropout=0.0, batch_first=True,
                                                               norm_first=norm_first),
                                    n_layers, final(), enable_nested_tensor=False)
    else:
        ours = Decoder([decoder_layer(D, H, F, dropout=0.0, norm_first=norm_first) for _ in range(n_layers)], final())
        ref = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, F, dropout=0.0, batch_first=True,
                                                               norm_first=norm_first), n_layers, final())
    for layer, ref_layer in zip(ours.layers, ref.layers):
        copy_attention(layer.self_attn, ref_layer.self_attn)
        if kind == "decoder":
            copy_attention(layer.cross_attn, ref_layer.multihead_attn)
        copy_common(layer, ref_layer)
    if norm_first:
        with torch.no_grad():
            nn.init.normal_(ref.norm.weight), nn.init.normal_(ref.norm.bias)
        ours.norm.load_state_dict(ref.norm.state_dict())
    return ours, ref


def assert_stack_gradients(ours, ref, out, expected, inputs):
    """Outputs, then the gradients of the inputs and of every parameter, layer by layer."""
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    target = torch.randn_like(out)
    ours_grads = torch.autograd.grad((out * target).sum(), inputs, retain_graph=True)
    ref_grads = torch.autograd.grad((expected * target).sum(), inputs, retain_graph=True)
    for a, b in zip(ours_grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    (out * target).sum().backward()
    (expected * target).sum().backward()
    for i, (layer, ref_layer) in enumerate(zip(ours.layers, ref.layers, strict=True)):
        reference = dict(ref_layer.named_parameters())
        for name, grad in torch_layout_gradients(layer).items():
            torch.testing.assert_close(grad, reference[name].grad, atol=1e-5, rtol=1e-4, msg=f"layer {i} {name}")
    if ref.norm is not None:
        torch.testing.assert_close(ours.norm.weight.grad, ref.norm.weight.grad, atol=1e-5, rtol=1e-4)


SOURCE = torch.tensor([[1] * 6, [1] * 2 + [0] * 4])  # the second sentence padded after 2 tokens


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_equals_torch_with_gradients(norm_first):
    torch.manual_seed(0)
    ours, ref = torch_pair("encoder", norm_first)
    x = torch.randn(2, 6, D, requires_grad=True)
    out, expected = ours(x, padding_mask(SOURCE, 0)), ref(x, src_key_padding_mask=SOURCE == 0)
    assert_stack_gradients(ours, ref, out, expected, (x,))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_stack_equals_torch_with_gradients(norm_first):
    torch.manual_seed(0)
    ours, ref = torch_pair("decoder", norm_first)
    x, memory = torch.randn(2, 5, D, requires_grad=True), torch.randn(2, 6, D, requires_grad=True)
    out = ours(x, memory, causal_mask(5), padding_mask(SOURCE, 0))
    expected = ref(x, memory, tgt_mask=~causal_mask(5), memory_key_padding_mask=SOURCE == 0)
    assert_stack_gradients(ours, ref, out, expected, (x, memory))


def self_attention_input(layer, x):
    return layer.norm1(x) if layer.norm_first else x


@pytest.mark.parametrize("norm_first", [False, True])
@torch.no_grad()
def test_encoder_stack_returns_each_layers_weights(norm_first):
    torch.manual_seed(0)
    ours, ref = torch_pair("encoder", norm_first)
    x = torch.randn(2, 6, D)
    out, maps = ours(x, padding_mask(SOURCE, 0), need_weights=True)
    torch.testing.assert_close(out, ref(x, src_key_padding_mask=SOURCE == 0), atol=1e-5, rtol=1e-5)
    assert len(maps) == 2
    h = x
    for weights, layer in zip(maps, ref.layers):
        a = self_attention_input(layer, h)
        expected = layer.self_attn(a, a, a, key_padding_mask=SOURCE == 0, average_attn_weights=False)[1]
        torch.testing.assert_close(weights, expected, atol=1e-6, rtol=1e-5)  # (B, H, T, T)
        h = layer(h, src_key_padding_mask=SOURCE == 0)


def torch_decoder_weights(ref, x, memory, tgt_mask, memory_padding):
    """Each layer's self- and cross-attention weights, from torch's modules, sub-layer by sub-layer."""
    self_maps, cross_maps = [], []
    for layer in ref.layers:
        a = self_attention_input(layer, x)
        attended, weights = layer.self_attn(a, a, a, attn_mask=tgt_mask, average_attn_weights=False)
        self_maps.append(weights)
        h = x + attended if layer.norm_first else layer.norm1(x + attended)
        a = layer.norm2(h) if layer.norm_first else h
        cross_maps.append(layer.multihead_attn(a, memory, memory, key_padding_mask=memory_padding,
                                               average_attn_weights=False)[1])
        x = layer(x, memory, tgt_mask=tgt_mask, memory_key_padding_mask=memory_padding)
    return self_maps, cross_maps


@pytest.mark.parametrize("norm_first", [False, True])
@torch.no_grad()
def test_decoder_stack_returns_each_layers_weights(norm_first):
    torch.manual_seed(0)
    ours, ref = torch_pair("decoder", norm_first)
    x, memory = torch.randn(2, 5, D), torch.randn(2, 6, D)
    out, (self_maps, cross_maps) = ours(x, memory, causal_mask(5), padding_mask(SOURCE, 0), need_weights=True)
    expected = ref(x, memory, tgt_mask=~causal_mask(5), memory_key_padding_mask=SOURCE == 0)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    expected_self, expected_cross = torch_decoder_weights(ref, x, memory, ~causal_mask(5), SOURCE == 0)
    assert len(self_maps) == len(cross_maps) == 2
    for ours_map, ref_map in zip(self_maps + cross_maps, expected_self + expected_cross):
        torch.testing.assert_close(ours_map, ref_map, atol=1e-6, rtol=1e-5)


def count_calls(module: nn.Module) -> list:
    calls = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("need_weights", [False, True])
@torch.no_grad()
def test_cached_decoding_equals_torchs_full_decoding(norm_first, need_weights):
    """One position at a time with a cache (no self mask: a step sees the cached positions), as the
    whole target at once under a causal mask; the memory is projected once per layer, at the first step."""
    torch.manual_seed(0)
    ours, ref = torch_pair("decoder", norm_first)
    T, memory_mask = 5, padding_mask(SOURCE, 0)
    x, memory = torch.randn(2, T, D), torch.randn(2, 6, D)
    expected = ref(x, memory, tgt_mask=~causal_mask(T), memory_key_padding_mask=SOURCE == 0)
    expected_self, expected_cross = torch_decoder_weights(ref, x, memory, ~causal_mask(T), SOURCE == 0)
    projections = [count_calls(layer.cross_attn.w_k) for layer in ours.layers]
    cache = ours.new_cache()
    assert len(cache) == 2 and cache.offset == 0
    for t in range(T):
        step = ours(x[:, t : t + 1], memory, None, memory_mask, need_weights=need_weights, cache=cache)
        if need_weights:
            step, (self_maps, cross_maps) = step
            for i in range(2):
                seen = expected_self[i][:, :, t : t + 1, : t + 1]  # the step's row, over the positions so far
                torch.testing.assert_close(self_maps[i], seen, atol=1e-6, rtol=1e-5)
                torch.testing.assert_close(cross_maps[i], expected_cross[i][:, :, t : t + 1], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(step, expected[:, t : t + 1], atol=1e-5, rtol=1e-5)
        assert cache.offset == t + 1
    assert [len(calls) for calls in projections] == [1, 1]
    assert all(len(cross) == 6 for _, cross in cache)


@pytest.mark.parametrize("index", [[2, 0, 0], [0, 1, 0]])  # most rows move (gathered), one row moves (in place)
@torch.no_grad()
def test_cache_reorder_equals_decoding_the_reindexed_prefixes(index):
    """Beam search: three hypotheses of one source sentence; after two steps keep rows ``index``, then a
    third step continues each kept prefix as if it had been decoded in that row from the start."""
    torch.manual_seed(0)
    ours, ref = torch_pair("decoder", norm_first=False)
    index = torch.tensor(index)
    x, memory = torch.randn(3, 3, D), torch.randn(1, 6, D).expand(3, 6, D)
    cache = ours.new_cache()
    for t in range(2):
        ours(x[:, t : t + 1], memory, cache=cache)
    cache.reorder(index)
    step = ours(x[:, 2:3], memory, cache=cache)
    prefixes = torch.cat([x[index, :2], x[:, 2:3]], dim=1)
    expected = ref(prefixes, memory, tgt_mask=~causal_mask(3))[:, 2:3]
    torch.testing.assert_close(step, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
@torch.no_grad()
def test_encoder_layer_as_a_causal_block_with_and_without_a_cache(norm_first):
    """GPT's block: is_causal (no mask tensor), and one position at a time with a cache, both equal to
    torch's layer under a causal mask."""
    torch.manual_seed(0)
    T = 6
    ours = encoder_layer(D, H, F, dropout=0.0, norm_first=norm_first).eval()
    ref = nn.TransformerEncoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    copy_attention(ours.self_attn, ref.self_attn)
    copy_common(ours, ref)
    x = torch.randn(2, T, D)
    expected = ref(x, src_mask=~causal_mask(T))
    torch.testing.assert_close(ours(x, is_causal=True), expected, atol=1e-5, rtol=1e-5)
    cache = KVCache()
    steps = [ours(x[:, t : t + 1], cache=cache) for t in range(T)]
    torch.testing.assert_close(torch.cat(steps, dim=1), expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_decoder_layer_with_a_cache_equals_torch_and_projects_the_memory_once():
    torch.manual_seed(0)
    T = 4
    ours = decoder_layer(D, H, F, dropout=0.0).eval()
    ref = nn.TransformerDecoderLayer(D, H, F, dropout=0.0, batch_first=True).eval()
    copy_attention(ours.self_attn, ref.self_attn)
    copy_attention(ours.cross_attn, ref.multihead_attn)
    copy_common(ours, ref)
    x, memory = torch.randn(2, T, D), torch.randn(2, 6, D)
    expected = ref(x, memory, tgt_mask=~causal_mask(T), memory_key_padding_mask=SOURCE == 0)
    projections = count_calls(ours.cross_attn.w_v)
    cache = (KVCache(), KVCache(static=True))
    steps = [ours(x[:, t : t + 1], memory, None, padding_mask(SOURCE, 0), cache=cache) for t in range(T)]
    torch.testing.assert_close(torch.cat(steps, dim=1), expected, atol=1e-5, rtol=1e-5)
    assert len(projections) == 1 and len(cache[0]) == T
