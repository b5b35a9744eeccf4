"""Relative position representations (Shaw et al., 2018): equal to the paper's equations written out
pair by pair, outputs and gradients; dependent on offsets only; usable with a key/value cache."""

import contextlib
import math

import pytest
import torch

from seqlab.nn import (KVCache, MultiHeadAttention, RelativePositions, SinusoidalPositionalEncoding, encoder_layer,
                       relative_positions, scaled_dot_product_attention)


def reference_attention(q, k, v, a_key, a_value, max_distance, offset=0, mask=None):
    """Eqs. 3 and 4 of the paper, one (query, key) pair at a time: e_ij = q_i·(k_j + a^K_ij)/√d,
    α = softmax_j e_ij over the allowed keys, z_i = Σ_j α_ij (v_j + a^V_ij), a_ij = a[clip(j - i, -k, k)]."""
    B, H, T_q, d = q.shape
    T_k = k.size(2)
    rows = []
    for b in range(B):
        for h in range(H):
            for t in range(T_q):
                i = offset + t
                logits, values = [], []
                for j in range(T_k):
                    if mask is not None and not mask[b, t, j]:
                        continue
                    r = min(max(j - i, -max_distance), max_distance) + max_distance
                    logits.append(torch.dot(q[b, h, t], k[b, h, j] + a_key[r]) / math.sqrt(d))
                    values.append(v[b, h, j] + a_value[r])
                alpha = torch.softmax(torch.stack(logits), 0)
                rows.append(sum(a * value for a, value in zip(alpha, values)))
    return torch.stack(rows).view(B, H, T_q, d)


@pytest.mark.parametrize("T_q, T_k, offset, masked", [(6, 6, 0, False), (6, 6, 0, True), (2, 7, 5, False)])
def test_equals_the_papers_equations_pair_by_pair_with_gradients(T_q, T_k, offset, masked):
    torch.manual_seed(0)
    k_clip, d = 2, 3  # sequences longer than 2k + 1, so clipping is exercised on both sides
    relative = RelativePositions(d, k_clip).double()
    with torch.no_grad():
        relative.key.weight.normal_()
        relative.value.weight.normal_()
    q, k, v = (torch.randn(2, 2, T, d, dtype=torch.float64, requires_grad=True) for T in (T_q, T_k, T_k))
    mask = None
    if masked:  # padding in the second sequence, and a causal pattern
        mask = torch.ones(2, T_q, T_k, dtype=torch.bool).tril()
        mask[1, :, 4:] = False
    out, _ = scaled_dot_product_attention(q, k, v, None if mask is None else mask.unsqueeze(1),
                                          relative=relative, offset=offset)

    a_key = relative.key.weight.detach().clone().requires_grad_()
    a_value = relative.value.weight.detach().clone().requires_grad_()
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    expected = reference_attention(q2, k2, v2, a_key, a_value, k_clip, offset, mask)
    torch.testing.assert_close(out, expected)

    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for got, want in [(q.grad, q2.grad), (k.grad, k2.grad), (v.grad, v2.grad),
                      (relative.key.weight.grad, a_key.grad), (relative.value.weight.grad, a_value.grad)]:
        torch.testing.assert_close(got, want)
    if not masked and T_q == T_k:  # every offset, the clipped ones included, was used
        assert relative.key.weight.grad.abs().min() > 0 and relative.value.weight.grad.abs().min() > 0


def test_offsets_are_clipped_differences():
    relative = RelativePositions(4, max_distance=2)
    # query positions 3, 4 (after 3 cached ones) against keys 0 … 5: j - i clipped to [-2, 2], plus 2
    assert relative.offsets(2, 6, offset=3).tolist() == [[0, 0, 1, 2, 3, 4], [0, 0, 0, 1, 2, 3]]
    with pytest.raises(ValueError, match="at least 1"):
        RelativePositions(4, max_distance=0)


def encoder(positional=None, n_layers=2, d_model=16, max_distance=3):
    torch.manual_seed(0)
    layers = [encoder_layer(d_model, 2, 32, dropout=0.0, norm_first=True,
                            relative=RelativePositions(d_model // 2, max_distance) if positional is None else None)
              for _ in range(n_layers)]
    return torch.nn.ModuleList(layers).eval()


def run(layers, x, mask=None):
    for layer in layers:
        x = layer(x, mask)
    return x


def test_shifting_a_sequence_right_behind_masked_keys_leaves_its_outputs_unchanged():
    """Only offsets j - i enter: the sequence x at positions 0 … T-1 and the same x at s … s+T-1, behind
    s keys no query may attend to, give the same outputs. Absolute positions fail the same check."""
    x = torch.randn(2, 9, 16)
    s = 5
    shifted = torch.cat([torch.randn(2, s, 16), x], dim=1)
    keep = torch.ones(2, 1, s + 9, dtype=torch.bool)
    keep[..., :s] = False  # (B, 1, T): the first s keys are masked
    layers = encoder()
    torch.testing.assert_close(run(layers, shifted, keep)[:, s:], run(layers, x), atol=1e-5, rtol=1e-5)

    # The check can fail: with the sinusoidal table added instead, position matters.
    absolute, table = encoder("sinusoidal"), SinusoidalPositionalEncoding(16)
    assert not torch.allclose(run(absolute, table(shifted), keep)[:, s:], run(absolute, table(x)), atol=1e-3)


def test_beyond_the_clipping_distance_key_order_does_not_matter():
    """With k = 2, a query at position 0 sees keys at offsets 2, 3, 4, 5 all as offset k: swapping
    those keys leaves its output unchanged (one layer; later positions do see the swap)."""
    layers = encoder(n_layers=1, max_distance=2)
    x = torch.randn(1, 6, 16)
    swapped = x[:, [0, 1, 5, 3, 4, 2]]
    a, b = run(layers, x), run(layers, swapped)
    torch.testing.assert_close(a[:, 0], b[:, 0], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(a[:, 3], b[:, 3], atol=1e-4)  # offsets -1 and +2 from position 3 differ


def test_cached_self_attention_equals_attention_over_the_whole_sequence():
    torch.manual_seed(0)
    attention = MultiHeadAttention(16, 2, relative=RelativePositions(8, 3)).eval()
    x = torch.randn(2, 10, 16)
    causal = torch.ones(10, 10, dtype=torch.bool).tril()
    full, _ = attention(x, x, x, causal)
    cache = KVCache()
    pieces = [attention(x[:, :4], x[:, :4], x[:, :4], causal[:4, :4], cache=cache)[0]]
    pieces += [attention(x[:, t:t + 1], x[:, t:t + 1], x[:, t:t + 1], cache=cache)[0] for t in range(4, 7)]
    pieces.append(attention(x[:, 7:], x[:, 7:], x[:, 7:], causal[7:], cache=cache)[0])  # a chunk after the cache
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)
    # is_causal (no mask tensor) gives the same as the explicit mask
    torch.testing.assert_close(attention(x, x, x, is_causal=True)[0], full)


def shaw_index(i, j, k):
    """The row of the tables for query position i and key position j: clip(j - i, -k, k) shifted by k."""
    return min(max(j - i, -k), k) + k


def test_each_layer_gets_its_tables_only_for_relative_positions():
    tables = relative_positions("relative", 6, 3)
    assert isinstance(tables, RelativePositions)
    assert (tables.d_head, tables.max_distance) == (6, 3)
    assert tables.key.weight.shape == tables.value.weight.shape == (7, 6)  # 2k + 1 rows of width d_head
    for positional in ("sinusoidal", "learned", "rotary", "Relative"):
        assert relative_positions(positional, 6, 3) is None


def test_clipping_distance_one_and_the_default_of_sixteen():
    smallest = RelativePositions(4, max_distance=1)  # k = 1 is allowed: offsets -1, 0, 1
    assert smallest.offsets(4, 4).tolist() == [[shaw_index(i, j, 1) for j in range(4)] for i in range(4)]
    assert RelativePositions(4).max_distance == 16 and RelativePositions(4).key.num_embeddings == 33


def test_tables_start_small():
    torch.manual_seed(0)
    tables = RelativePositions(64, 16)  # 33 × 64 draws from N(0, 0.02²) each
    for weight in (tables.key.weight, tables.value.weight):
        assert 0.018 < weight.std() < 0.022 and abs(weight.mean()) < 0.002


@pytest.mark.parametrize("default_device", [None, "meta"])
def test_logits_and_values_without_an_offset_equal_the_paper_pair_by_pair(default_device):
    """No offset given: queries at 0 … T_q - 1. Eq. 4's q_i · a^K_ij / √d and eq. 3's Σ_j α_ij a^V_ij,
    written out per pair; the tables kept in float32 while q and α are float64 (as under autocast the
    tables and the activations differ): the result follows the activations' dtype. Under another default
    device (`with torch.device(...)`, meta standing in for an accelerator) the indices still follow q's."""
    torch.manual_seed(0)
    k, d, T_q, T_k = 2, 3, 4, 7
    tables = RelativePositions(d, k)
    with torch.no_grad():
        tables.key.weight.normal_()
        tables.value.weight.normal_()
    q = torch.randn(2, 2, T_q, d, dtype=torch.float64)
    alpha = torch.softmax(torch.randn(2, 2, T_q, T_k, dtype=torch.float64), -1)
    a_key, a_value = tables.key.weight.detach().double(), tables.value.weight.detach().double()
    with torch.device(default_device) if default_device else contextlib.nullcontext():
        logits, values = tables.logits(q, T_k), tables.values(alpha)
    assert logits.device == values.device == q.device
    assert tables.offsets(T_q, T_k).tolist() == [[shaw_index(i, j, k) for j in range(T_k)] for i in range(T_q)]
    assert logits.dtype == values.dtype == torch.float64
    for b in range(2):
        for h in range(2):
            for i in range(T_q):
                z = torch.zeros(d, dtype=torch.float64)
                for j in range(T_k):
                    r = shaw_index(i, j, k)
                    torch.testing.assert_close(logits[b, h, i, j], q[b, h, i] @ a_key[r] / math.sqrt(d))
                    z = z + alpha[b, h, i, j] * a_value[r]
                torch.testing.assert_close(values[b, h, i], z)


def test_indices_are_built_on_the_tables_device():
    # Meta tensors (shapes and devices, no data) stand in for an accelerator.
    tables = RelativePositions(4, 2).to("meta")
    assert tables.offsets(3, 5, offset=2, device=torch.device("meta")).device.type == "meta"
    q = torch.randn(1, 2, 3, 4, device="meta")
    logits = tables.logits(q, 5, offset=2)
    values = tables.values(torch.randn(1, 2, 3, 5, device="meta"), offset=2)
    assert logits.device.type == values.device.type == "meta"
    assert logits.shape == (1, 2, 3, 5) and values.shape == (1, 2, 3, 4)


def test_queries_start_at_position_zero_unless_told():
    torch.manual_seed(0)
    relative = RelativePositions(3, 2).double()
    with torch.no_grad():
        relative.key.weight.normal_()
        relative.value.weight.normal_()
    q, k, v = (torch.randn(1, 2, 5, 3, dtype=torch.float64) for _ in range(3))
    out, _ = scaled_dot_product_attention(q, k, v, relative=relative)
    expected = reference_attention(q, k, v, relative.key.weight.detach(), relative.value.weight.detach(), 2, offset=0)
    torch.testing.assert_close(out, expected)
