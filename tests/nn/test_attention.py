import math

import pytest
import torch
from torch import nn

from seqlab.nn import KVCache, MultiHeadAttention, causal_mask, padding_mask, scaled_dot_product_attention

from torch_reference import copy_attention, torch_attention  # tests/ is on sys.path (its conftest)



def test_masks():
    tokens = torch.tensor([[5, 6, 7, 0, 0, 0]])
    assert padding_mask(tokens, 0).tolist() == [[[True, True, True, False, False, False]]]
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(3, device="meta").device.type == "meta"  # built where it is used, not copied there


def test_sdpa_matches_formula_and_torch():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    mask = torch.rand(2, 1, 5, 7) > 0.3
    mask[..., 0] = True
    out, w = scaled_dot_product_attention(q, k, v, mask, need_weights=True)
    scores = (q @ k.transpose(-1, -2) / math.sqrt(8)).masked_fill(~mask, -1e30)
    expected = scores.softmax(-1) @ v
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5))
    fused, none = scaled_dot_product_attention(q, k, v, mask)
    assert none is None
    torch.testing.assert_close(fused, out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("need_weights", [False, True])
def test_fully_masked_rows_give_zeros_not_nan(need_weights):
    q, k, v = (torch.randn(1, 2, 4, 8, requires_grad=True) for _ in range(3))
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    mask[:, :, 2] = False  # query 2 may attend to nothing
    out, _ = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)
    assert torch.isfinite(out).all()
    assert (out[:, :, 2] == 0).all()
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_gradcheck_float64():
    q, k, v = (torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.tensor([[True, True, False]]).expand(3, 3)
    for need_weights in (False, True):
        assert torch.autograd.gradcheck(
            lambda q, k, v: scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)[0],
            (q, k, v))


@pytest.mark.parametrize("kind", ["self_padding", "causal", "cross_padding"])
def test_mha_equals_torch_multihead_attention(kind):
    B, T, S, D, H = 3, 6, 5, 16, 4
    ours = MultiHeadAttention(D, H).eval()
    ref = torch_attention(ours, ours.n_heads).eval()
    x = torch.randn(B, T, D)
    if kind == "self_padding":
        tokens = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
        out, w = ours(x, x, x, padding_mask(tokens, 0), need_weights=True)
        ref_out, ref_w = ref(x, x, x, key_padding_mask=tokens == 0, average_attn_weights=False)
    elif kind == "causal":
        out, w = ours(x, x, x, causal_mask(T), need_weights=True)
        ref_out, ref_w = ref(x, x, x, attn_mask=~causal_mask(T), average_attn_weights=False)
    else:
        memory = torch.randn(B, S, D)
        tokens = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] + [0] * 4])
        out, w = ours(x, memory, memory, padding_mask(tokens, 0), need_weights=True)
        ref_out, ref_w = ref(x, memory, memory, key_padding_mask=tokens == 0, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)
    fused, _ = ours(x, x, x, causal_mask(T)) if kind == "causal" else (None, None)
    if fused is not None:
        torch.testing.assert_close(fused, ref_out, atol=1e-5, rtol=1e-5)


def mha_gradients(ours: MultiHeadAttention) -> dict[str, torch.Tensor]:
    """Our gradients in torch's layout: w_q, w_k, w_v stacked into in_proj_*, w_o as out_proj."""
    return {"in_proj_weight": torch.cat([ours.w_q.weight.grad, ours.w_k.weight.grad, ours.w_v.weight.grad]),
            "in_proj_bias": torch.cat([ours.w_q.bias.grad, ours.w_k.bias.grad, ours.w_v.bias.grad]),
            "out_proj.weight": ours.w_o.weight.grad, "out_proj.bias": ours.w_o.bias.grad}


@pytest.mark.parametrize("need_weights", [False, True])  # torch's fused kernel, or the composite with weights
@pytest.mark.parametrize("kind", ["causal", "cross_padding"])
def test_mha_gradients_equal_torch(kind, need_weights):
    B, T, S, D, H = 3, 5, 4, 8, 2
    ours = MultiHeadAttention(D, H)
    ref = torch_attention(ours, ours.n_heads)
    query = torch.randn(B, T, D, requires_grad=True)
    if kind == "causal":  # self-attention: one input
        key = value = query
        inputs, mask, ref_masks = (query,), causal_mask(T), {"attn_mask": ~causal_mask(T)}
    else:  # cross-attention with padded keys: key and value apart, so that swapping them shows
        key, value = (torch.randn(B, S, D, requires_grad=True) for _ in range(2))
        tokens = torch.tensor([[1] * 4, [1] * 2 + [0] * 2, [1] + [0] * 3])
        inputs, mask, ref_masks = (query, key, value), padding_mask(tokens, 0), {"key_padding_mask": tokens == 0}
    out = ours(query, key, value, mask, need_weights=need_weights)[0]
    ref_out = ref(query, key, value, need_weights=False, **ref_masks)[0]
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    target = torch.randn_like(out)  # a loss whose gradient differs at every output position
    ours_input_grads = torch.autograd.grad((out * target).sum(), inputs, retain_graph=True)
    (out * target).sum().backward()
    ref_input_grads = torch.autograd.grad((ref_out * target).sum(), inputs, retain_graph=True)
    (ref_out * target).sum().backward()
    for a, b in zip(ours_input_grads, ref_input_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    expected = dict(ref.named_parameters())
    for name, grad in mha_gradients(ours).items():
        torch.testing.assert_close(grad, expected[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_incremental_cache_equals_full_self_attention():
    D, H, T = 16, 4, 7
    mha = MultiHeadAttention(D, H).eval()
    x = torch.randn(2, T, D)
    full, _ = mha(x, x, x, causal_mask(T))
    cache = KVCache()
    steps = [mha(x[:, t : t + 1], x[:, t : t + 1], x[:, t : t + 1], cache=cache)[0] for t in range(T)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    assert len(cache) == T


def test_static_cache_projects_memory_once():
    mha = MultiHeadAttention(8, 2).eval()
    memory, x = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    cache = KVCache(static=True)
    first, _ = mha(x, memory, memory, cache=cache)
    again, _ = mha(x, torch.zeros_like(memory), torch.zeros_like(memory), cache=cache)
    torch.testing.assert_close(first, again)


def test_head_divisibility_is_checked():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


def test_recording_scores_keeps_the_logits_behind_the_weights():
    """Q·Kᵀ/√d_k from the projection matrices by hand, -inf where the mask forbids, and softmax of it
    the weights returned; nothing is recorded without ``need_weights`` or outside the block."""
    from seqlab.nn import recording_scores

    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(1, 5, 8)
    mask = causal_mask(5)
    with recording_scores() as scores:
        mha(x, x, x, mask)  # the fused path: no weights, nothing recorded
        _, weights = mha(x, x, x, mask, need_weights=True)
    assert len(scores) == 1
    q = (x @ mha.w_q.weight.T + mha.w_q.bias).view(1, 5, 2, 4).transpose(1, 2)  # (B, H, T, d_head)
    k = (x @ mha.w_k.weight.T + mha.w_k.bias).view(1, 5, 2, 4).transpose(1, 2)
    expected = (q @ k.transpose(-1, -2) / 2.0).masked_fill(~mask, float("-inf"))  # √d_head = 2
    torch.testing.assert_close(scores[0], expected)
    assert torch.isinf(scores[0]).sum() == 2 * 10  # the 10 future pairs of each head
    torch.testing.assert_close(scores[0].softmax(-1), weights)
    _, _ = mha(x, x, x, mask, need_weights=True)
    assert len(scores) == 1  # the block is closed
    nowhere = mask.clone()
    nowhere[2] = False  # query 2 may attend to no key: its logits are all -inf (its weights zeros)
    with recording_scores() as scores:
        _, weights = mha(x, x, x, nowhere, need_weights=True)
    assert torch.isneginf(scores[0][0, :, 2]).all() and weights[0, :, 2].abs().sum() == 0


def test_recording_scores_is_per_thread():
    """Requests served at once (the explorer's threads) each keep their own logits."""
    import threading

    from seqlab.nn import recording_scores

    mha = MultiHeadAttention(8, 2)
    got, together = {}, threading.Barrier(3)

    def record(length):
        x = torch.randn(1, length, 8)
        with recording_scores() as scores:
            together.wait()  # all three blocks open at once
            for _ in range(20):
                mha(x, x, x, need_weights=True)
            together.wait()
        got[length] = {tuple(s.shape) for s in scores}, len(scores)

    threads = [threading.Thread(target=record, args=(n,)) for n in (3, 4, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {n: ({(1, 2, n, n)}, 20) for n in (3, 4, 5)}


def test_cache_appends_and_reorders_as_cat_and_index_select_do():
    torch.manual_seed(0)
    cache, keys, values = KVCache(), torch.empty(6, 2, 0, 4), torch.empty(6, 2, 0, 4)
    first_key = torch.randn(6, 2, 3, 4)
    given = first_key.clone()
    for step, new in enumerate([3, 1, 1, 2, 1, 1, 1]):
        k, v = (first_key, first_key + 1) if step == 0 else (torch.randn(6, 2, new, 4), torch.randn(6, 2, new, 4))
        keys, values = torch.cat([keys, k], 2), torch.cat([values, v], 2)
        got_k, got_v = cache.update(k, v)
        assert torch.equal(got_k, keys) and torch.equal(got_v, values) and len(cache) == keys.size(2)
        # beam search's re-ranking: one row moved (in place), then most of them (a copy)
        index = torch.tensor([0, 1, 1, 3, 4, 5]) if step % 2 else torch.tensor([5, 5, 4, 0, 1, 1])
        cache.reorder(index)
        keys, values = keys[index], values[index]
        assert torch.equal(cache.key, keys) and torch.equal(cache.value, values)
    assert torch.equal(first_key, given)  # what the cache was given is never written to


def test_cache_concatenates_under_autograd():
    cache = KVCache()
    x = torch.randn(2, 1, 3, 4, requires_grad=True)
    cache.update(x * 1, x * 2)
    k, v = cache.update(x * 3, x * 4)
    (k.sum() + v.sum()).backward()
    assert torch.equal(x.grad, torch.full_like(x, 10.0))


# --- which path runs, and what torch says about export ----------------------------------------------------------


def test_is_exporting_asks_torch_and_says_no_where_torch_cannot_tell(monkeypatch):
    from seqlab.nn.attention import is_exporting

    assert is_exporting() is False  # no export trace here
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    assert is_exporting() is True
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: 0)
    assert is_exporting() is False
    monkeypatch.delattr(torch.compiler, "is_exporting")  # torch before 2.7
    assert is_exporting() is False


def test_fused_kernel_pays_except_for_short_bf16_on_cpu():
    """The rule its docstring states: not in bf16 with at most 256 keys (axis -2 of k) on the CPU."""
    from seqlab.nn.attention import _fused_kernel_pays

    def pays(dtype, keys, device="cpu"):
        q = torch.empty(1, 2, 3, 8, dtype=dtype, device=device)
        return _fused_kernel_pays(q, torch.empty(1, 2, keys, 8, dtype=dtype, device=device))

    assert not pays(torch.bfloat16, 1) and not pays(torch.bfloat16, 256)
    assert pays(torch.bfloat16, 257) and pays(torch.bfloat16, 1000)
    assert pays(torch.float32, 1) and pays(torch.float32, 256) and pays(torch.float16, 16)
    assert pays(torch.bfloat16, 16, device="meta")  # not the CPU
    # keys counted on axis -2 whatever the leading axes: (B, Tk, d) with 300 keys and 8 channels
    assert _fused_kernel_pays(torch.empty(2, 3, 8, dtype=torch.bfloat16), torch.empty(2, 300, 8, dtype=torch.bfloat16))


def reference_attention(q, k, v, allowed):
    """softmax(Q Kᵀ/√d) V over the allowed keys, written out; a row allowed nowhere gives zeros."""
    scores = (q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))).masked_fill(~allowed, float("-inf"))
    weights = torch.nan_to_num(scores.softmax(-1), nan=0.0)
    return weights @ v, weights


def test_fused_kernel_runs_unless_weights_relative_positions_or_short_bf16(monkeypatch):
    import torch.nn.functional as F

    from seqlab.nn import RelativePositions

    calls, real = [], F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 2, 5, 8), torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 8)
    expected, expected_w = reference_attention(q, k, v, torch.ones(5, 6, dtype=torch.bool))
    out, w = scaled_dot_product_attention(q, k, v)
    assert len(calls) == 1 and w is None  # float32: the fused kernel
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    out, w = scaled_dot_product_attention(q, k, v, need_weights=True)
    assert len(calls) == 1
    torch.testing.assert_close(w, expected_w, atol=1e-6, rtol=1e-5)
    out, w = scaled_dot_product_attention(q, k, v, relative=RelativePositions(8, 2))
    assert len(calls) == 1 and w is None  # the composite, but no weights asked for
    out, w = scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert len(calls) == 1 and w is None and out.dtype == torch.bfloat16  # bf16, 6 keys: the composite
    torch.testing.assert_close(out.float(), expected, atol=3e-2, rtol=3e-2)
    long_k, long_v = torch.randn(2, 2, 300, 8), torch.randn(2, 2, 300, 8)
    out, _ = scaled_dot_product_attention(q.bfloat16(), long_k.bfloat16(), long_v.bfloat16())
    assert len(calls) == 2  # bf16, 300 keys: the fused kernel
    expected, _ = reference_attention(q, long_k, long_v, torch.ones(5, 300, dtype=torch.bool))
    torch.testing.assert_close(out.float(), expected, atol=3e-2, rtol=3e-2)


def test_mask_and_is_causal_together_are_refused():
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(ValueError, match=r"^give either a mask or is_causal=True, not both$"):
        scaled_dot_product_attention(q, q, q, causal_mask(3), is_causal=True)


@pytest.mark.parametrize("need_weights", [False, True])
def test_a_row_allowed_nowhere_leaves_the_other_rows_masked(need_weights):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8)
    mask = torch.rand(2, 1, 4, 6) > 0.4
    mask[..., 0] = True
    mask[1, :, 2] = False  # one query of the second sequence may attend nowhere
    expected, expected_w = reference_attention(q, k, v, mask)
    out, w = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert (out[1, :, 2] == 0).all()
    if need_weights:
        torch.testing.assert_close(w, expected_w)


@pytest.mark.parametrize("need_weights", [False, True])
def test_is_causal_equals_a_lower_triangular_mask(need_weights):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, requires_grad=True) for _ in range(3))
    out, w = scaled_dot_product_attention(q, k, v, need_weights=need_weights, is_causal=True)
    expected, expected_w = reference_attention(q, k, v, torch.ones(5, 5, dtype=torch.bool).tril())
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    if need_weights:
        torch.testing.assert_close(w, expected_w)
    upstream = torch.randn_like(out)
    got = torch.autograd.grad((out * upstream).sum(), (q, k, v))
    want = torch.autograd.grad((expected * upstream).sum(), (q, k, v))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("need_weights", [False, True])
def test_any_leading_axes_as_torchs_attention_takes_them(need_weights):
    """One head, (B, T, d): the keys are axis -2 everywhere, as for F.scaled_dot_product_attention."""
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 5, 3), torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    for is_causal in (False, True):
        out, _ = scaled_dot_product_attention(q, k, v, need_weights=need_weights, is_causal=is_causal)
        torch.testing.assert_close(out, torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=is_causal),
                                   atol=1e-5, rtol=1e-5)
    # keys and values shared by every sequence of the batch broadcast, relative positions included
    from seqlab.nn import RelativePositions

    relative = RelativePositions(3, 2)
    q4, shared_k, shared_v = torch.randn(2, 2, 4, 3), torch.randn(2, 6, 3), torch.randn(2, 6, 3)
    out, _ = scaled_dot_product_attention(q4, shared_k, shared_v, need_weights=need_weights, relative=relative)
    full, _ = scaled_dot_product_attention(q4, shared_k.expand(2, 2, 6, 3), shared_v.expand(2, 2, 6, 3),
                                           need_weights=need_weights, relative=relative)
    torch.testing.assert_close(out, full)


def test_causal_mask_is_built_on_the_device_of_the_queries():
    q = torch.empty(1, 2, 4, 8, device="meta")
    out, w = scaled_dot_product_attention(q, q, q, need_weights=True, is_causal=True)
    assert out.device.type == "meta" and w.shape == (1, 2, 4, 4)


def test_attention_dropout_drops_weights_of_both_paths():
    import torch.nn.functional as F

    torch.manual_seed(0)
    q, k, v = torch.randn(2, 2, 5, 8), torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 8)
    mask = torch.rand(2, 1, 5, 6) > 0.3
    mask[..., 0] = True
    plain, weights = reference_attention(q, k, v, mask)
    torch.manual_seed(1)
    out, w = scaled_dot_product_attention(q, k, v, mask, dropout_p=0.3, need_weights=True)
    torch.manual_seed(1)
    expected = F.dropout(weights, 0.3) @ v  # the same draws: the weights dropped, the rest scaled by 1/0.7
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, weights)  # the weights returned are those before dropout
    assert not torch.allclose(out, plain, atol=1e-3)
    fused, _ = scaled_dot_product_attention(q, k, v, mask, dropout_p=0.5)  # the fused kernel drops its own
    assert not torch.allclose(fused, plain, atol=1e-3)
    fused_causal, _ = scaled_dot_product_attention(q, q, v[:, :, :5], dropout_p=0.5, is_causal=True)
    assert not torch.allclose(fused_causal, reference_attention(q, q, v[:, :, :5], torch.ones(5, 5).tril().bool())[0],
                              atol=1e-3)


# --- the module: bias, dropout, rotary positions -----------------------------------------------------------------


def test_mha_without_bias_equals_torch_without_bias():
    torch.manual_seed(0)
    ours = MultiHeadAttention(8, 2, bias=False).eval()
    assert all(layer.bias is None for layer in (ours.w_q, ours.w_k, ours.w_v, ours.w_o))
    ref = copy_attention(ours, nn.MultiheadAttention(8, 2, bias=False, batch_first=True).eval())
    x, memory = torch.randn(2, 4, 8), torch.randn(2, 5, 8)
    torch.testing.assert_close(ours(x, memory, memory)[0], ref(x, memory, memory)[0], atol=1e-5, rtol=1e-5)


def test_mha_dropout_only_in_training():
    torch.manual_seed(0)
    ours = MultiHeadAttention(8, 2, dropout=0.5)
    ref = torch_attention(ours, ours.n_heads).eval()
    x = torch.randn(2, 6, 8)
    ours.eval()
    for need_weights in (False, True):
        torch.testing.assert_close(ours(x, x, x, need_weights=need_weights)[0], ref(x, x, x)[0], atol=1e-5, rtol=1e-5)
    ours.train()
    for need_weights in (False, True):
        assert not torch.allclose(ours(x, x, x, need_weights=need_weights)[0], ref(x, x, x)[0], atol=1e-3)


def rope(x, offset):
    """RoPE (Su et al., 2021) written out: channels (i, i + d/2) at position p rotated by p·10000^(-2i/d)."""
    d, T = x.size(-1), x.size(-2)
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = torch.arange(offset, offset + T, dtype=torch.float64).unsqueeze(1) * theta  # (T, d/2)
    cos, sin = angle.cos().float(), angle.sin().float()
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def test_mha_rotates_queries_and_keys_by_their_positions_cached_or_not():
    from seqlab.nn import RotaryEmbedding

    torch.manual_seed(0)
    B, T, D, H = 2, 6, 16, 2
    mha = MultiHeadAttention(D, H, rotary=RotaryEmbedding(D // H)).eval()
    x = torch.randn(B, T, D)

    def heads(linear):
        return linear(x).view(B, T, H, D // H).transpose(1, 2)

    q, k, v = rope(heads(mha.w_q), 0), rope(heads(mha.w_k), 0), heads(mha.w_v)
    attended, _ = reference_attention(q, k, v, torch.ones(T, T, dtype=torch.bool).tril())
    expected = mha.w_o(attended.transpose(1, 2).reshape(B, T, D))
    full, _ = mha(x, x, x, causal_mask(T))
    torch.testing.assert_close(full, expected, atol=1e-5, rtol=1e-5)
    cache = KVCache()
    first, _ = mha(x[:, :2], x[:, :2], x[:, :2], causal_mask(2), cache=cache)
    steps = [mha(x[:, t : t + 1], x[:, t : t + 1], x[:, t : t + 1], cache=cache)[0] for t in range(2, T)]
    torch.testing.assert_close(torch.cat([first, *steps], 1), expected, atol=1e-5, rtol=1e-5)
