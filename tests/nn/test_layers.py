import pytest
import torch
from torch import nn

from seqlab.nn import (EncoderLayer, LearnedPositionalEmbedding, MultiHeadAttention, PositionwiseFeedForward,
                       SinusoidalPositionalEncoding, causal_mask, decoder_layer, encoder_layer, padding_mask)


def copy_attention(ours, ref: nn.MultiheadAttention):
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
        ref.out_proj.weight.copy_(ours.w_o.weight)
        ref.out_proj.bias.copy_(ours.w_o.bias)


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
