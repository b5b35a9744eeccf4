"""The NumPy engine: finite-difference gradient checks in float64 for every parameter, and forward
outputs and gradients equal to PyTorch's given the same weights."""

import numpy as np
import pytest
import torch
from torch import nn

from seqlab.scratch import (Adam, attention_backward, attention_forward, clip_by_global_norm, gru_backward,
                            gru_forward, init_params, lstm_backward, lstm_forward, rnn_backward, rnn_forward,
                            softmax_cross_entropy, train_char_lm)

B, T, I, H = 2, 4, 3, 5


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-30))


def numeric_gradient(f, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = f()
        array[index] = saved - eps
        minus = f()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def run(kind, x, h0, c0, params):
    """Forward, then a scalar loss mixing every output, and the analytic gradients of everything."""
    rng = np.random.default_rng(1)
    weights_out, weights_h = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    weights_c = rng.standard_normal((B, H))
    if kind == "lstm":
        hs, cs, cache = lstm_forward(x, h0, c0, params)
        loss = (hs * weights_out).sum() + (hs[:, -1] * weights_h).sum() + (cs[:, -1] * weights_c).sum()
        dx, dh0, dc0, grads = lstm_backward(weights_out, weights_h, weights_c, cache)
        return loss, {"x": dx, "h0": dh0, "c0": dc0, **grads}
    forward, backward = {"rnn": (rnn_forward, rnn_backward), "gru": (gru_forward, gru_backward)}[kind]
    hs, cache = forward(x, h0, params)
    loss = (hs * weights_out).sum() + (hs[:, -1] * weights_h).sum()
    dx, dh0, grads = backward(weights_out, weights_h, cache)
    return loss, {"x": dx, "h0": dh0, **grads}


def make(kind, seed=0):
    rng = np.random.default_rng(seed)
    params = init_params(kind, I, H, rng)
    for v in params.values():  # non-zero biases so that every term is exercised
        v += 0.1 * rng.standard_normal(v.shape)
    return rng.standard_normal((B, T, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H)), params


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_gradient_check_every_parameter(kind):
    x, h0, c0, params = make(kind)
    _, analytic = run(kind, x, h0, c0, params)
    arrays = {"x": x, "h0": h0, **params}
    if kind == "lstm":
        arrays["c0"] = c0
    for name, array in arrays.items():
        numeric = numeric_gradient(lambda: run(kind, x, h0, c0, params)[0], array)
        assert relative_error(analytic[name], numeric) < 1e-6, name


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_forward_and_gradients_equal_torch(kind):
    x, h0, c0, params = make(kind, seed=2)
    ref = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](I, H, batch_first=True).double()
    ref.load_state_dict({f"{k}_l0": torch.from_numpy(v) for k, v in params.items()})
    tx = torch.from_numpy(x).requires_grad_()
    th0 = torch.from_numpy(h0)[None].requires_grad_()
    tc0 = torch.from_numpy(c0)[None].requires_grad_()
    rng = np.random.default_rng(1)
    weights_out, weights_h = torch.from_numpy(rng.standard_normal((B, T, H))), torch.from_numpy(rng.standard_normal((B, H)))
    weights_c = torch.from_numpy(rng.standard_normal((B, H)))
    if kind == "lstm":
        out, (hn, cn) = ref(tx, (th0, tc0))
        loss = (out * weights_out).sum() + (hn[0] * weights_h).sum() + (cn[0] * weights_c).sum()
    else:
        out, hn = ref(tx, th0)
        loss = (out * weights_out).sum() + (hn[0] * weights_h).sum()
    loss.backward()
    ours_loss, ours = run(kind, x, h0, c0, params)
    assert ours_loss == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(ours["x"], tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours["h0"], th0.grad[0].numpy(), rtol=1e-10, atol=1e-12)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(ours[name.removesuffix("_l0")], p.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_attention_forward_backward_equal_torch_and_gradcheck():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 2, 3, 4)) for _ in range(3))
    mask = np.array([[True, True, False], [True, False, False], [False, False, False]])  # last row: nothing
    out, cache = attention_forward(q, k, v, mask)
    assert np.all(out[..., 2, :] == 0)
    d_out = rng.standard_normal(out.shape)
    dq, dk, dv = attention_backward(d_out, cache)
    tq, tk, tv = (torch.from_numpy(a).requires_grad_() for a in (q, k, v))
    scores = (tq @ tk.transpose(-1, -2) / 2.0).masked_fill(~torch.from_numpy(mask), float("-inf"))
    weights = torch.nan_to_num(scores.softmax(-1))
    reference = weights @ tv
    (reference * torch.from_numpy(d_out)).sum().backward()
    np.testing.assert_allclose(out, reference.detach().numpy(), atol=1e-12)
    for ours, theirs in ((dq, tq), (dk, tk), (dv, tv)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), atol=1e-12)
    for array, analytic in ((q, dq), (k, dk), (v, dv)):
        numeric = numeric_gradient(lambda: (attention_forward(q, k, v, mask)[0] * d_out).sum(), array)
        assert relative_error(analytic, numeric) < 1e-6


def test_softmax_cross_entropy_equals_torch_and_is_stable():
    rng = np.random.default_rng(0)
    logits, targets = rng.standard_normal((6, 5)) * 50, rng.integers(0, 5, 6)
    loss, grad = softmax_cross_entropy(logits, targets)
    t = torch.from_numpy(logits).requires_grad_()
    ref = nn.functional.cross_entropy(t, torch.from_numpy(targets))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-12)


def test_adam_and_clipping_equal_torch():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2))
    params = {"w": w.copy()}
    tw = torch.nn.Parameter(torch.from_numpy(w.copy()))
    ours, theirs = Adam(params, lr=0.1), torch.optim.Adam([tw], lr=0.1)
    for step in range(5):
        g = rng.standard_normal((3, 2)) * 10
        grads = {"w": g.copy()}
        norm = clip_by_global_norm(grads, 1.0)
        tw.grad = torch.from_numpy(g.copy())
        assert norm == pytest.approx(torch.nn.utils.clip_grad_norm_([tw], 1.0).item())
        ours.step(grads)
        theirs.step()
    np.testing.assert_allclose(params["w"], tw.detach().numpy(), rtol=1e-10)


def test_char_lm_learns():
    text = "the quick brown fox jumps over the lazy dog. " * 40
    _, vocab, losses = train_char_lm(text, hidden_size=32, seq_len=16, batch_size=8, steps=150, lr=2e-2)
    assert len(vocab) == len(set(text))
    start, end = np.mean(losses[:10]), np.mean(losses[-10:])
    assert end < 0.5 * start, (start, end)
