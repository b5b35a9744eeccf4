"""Scaled dot-product attention in NumPy, forward and backward.

q: (B, H, Tq, d), k and v: (B, H, Tk, d); mask: bool broadcastable to (B, H, Tq, Tk), True = may attend.
"""

from __future__ import annotations

import numpy as np


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None):
    """softmax(Q Kᵀ / √d) V. Rows with no allowed key give zeros."""
    scale = 1.0 / np.sqrt(q.shape[-1])
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    row_max = scores.max(-1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    e = np.exp(scores - row_max)  # exp(-inf) = 0 for masked keys
    total = e.sum(-1, keepdims=True)
    weights = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    return weights @ v, (q, k, v, weights, scale)


def attention_backward(d_out: np.ndarray, cache):
    """Gradients for q, k, v. The softmax Jacobian: dS = P ⊙ (dP − Σ_j dP_j P_j)."""
    q, k, v, weights, scale = cache
    d_v = np.swapaxes(weights, -1, -2) @ d_out
    d_weights = d_out @ np.swapaxes(v, -1, -2)
    d_scores = weights * (d_weights - (d_weights * weights).sum(-1, keepdims=True))
    d_q = d_scores @ k * scale
    d_k = np.swapaxes(d_scores, -1, -2) @ q * scale
    return d_q, d_k, d_v
