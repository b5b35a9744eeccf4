"""A character language model trained entirely in NumPy: one-hot characters -> LSTM -> softmax."""

from __future__ import annotations

import numpy as np

from .loss import softmax_cross_entropy
from .optim import Adam, clip_by_global_norm
from .recurrent import init_params, lstm_backward, lstm_forward


def train_char_lm(text: str, hidden_size: int = 64, seq_len: int = 32, batch_size: int = 16,
                  steps: int = 200, lr: float = 1e-2, clip: float = 5.0, seed: int = 0):
    """Trains on random windows of ``text``; returns (params, vocabulary, losses per step)."""
    if len(text) < seq_len + 2:
        raise ValueError(f"text has {len(text)} characters; need more than seq_len + 1 = {seq_len + 1}")
    rng = np.random.default_rng(seed)
    vocab = sorted(set(text))
    ids = np.array([vocab.index(ch) for ch in text])
    V = len(vocab)
    params = {f"lstm.{k}": v for k, v in init_params("lstm", V, hidden_size, rng).items()}
    params["out.weight"] = rng.normal(0, 1 / np.sqrt(hidden_size), (V, hidden_size))
    params["out.bias"] = np.zeros(V)
    optimizer = Adam(params, lr)
    eye = np.eye(V)
    losses = []
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - seq_len - 1, batch_size)
        window = np.stack([ids[s : s + seq_len + 1] for s in starts])  # (B, T+1)
        x, y = eye[window[:, :-1]], window[:, 1:]
        lstm = {k.removeprefix("lstm."): v for k, v in params.items() if k.startswith("lstm.")}
        zeros = np.zeros((batch_size, hidden_size))
        hs, _, cache = lstm_forward(x, zeros, zeros, lstm)
        logits = hs @ params["out.weight"].T + params["out.bias"]  # (B, T, V)
        loss, d_logits = softmax_cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        d_logits = d_logits.reshape(batch_size, seq_len, V)
        grads = {"out.weight": np.einsum("btv,bth->vh", d_logits, hs), "out.bias": d_logits.sum((0, 1))}
        _, _, _, lstm_grads = lstm_backward(d_logits @ params["out.weight"], zeros, zeros, cache)
        grads.update({f"lstm.{k}": v for k, v in lstm_grads.items()})
        clip_by_global_norm(grads, clip)
        optimizer.step(grads)
        losses.append(loss)
    return params, vocab, losses
