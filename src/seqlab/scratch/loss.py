"""Softmax cross-entropy, mean over examples, with its gradient."""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """logits: (N, V), targets: (N,) ints -> (mean loss, d loss / d logits)."""
    shifted = logits - logits.max(-1, keepdims=True)  # log-sum-exp trick: no overflow
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    n = logits.shape[0]
    loss = -log_probs[np.arange(n), targets].mean()
    d_logits = np.exp(log_probs)
    d_logits[np.arange(n), targets] -= 1.0
    return float(loss), d_logits / n
