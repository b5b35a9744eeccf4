"""Position-wise feed-forward network (§3.3): FFN(x) = max(0, x W1 + b1) W2 + b2, applied to every
position separately and identically.

Activations: ``relu`` (the paper's), ``gelu`` (Hendrycks & Gimpel, 2016: x·Φ(x), exact), ``gelu_tanh``,
the same with Φ approximated through tanh (their §2), which GPT-2 and its checkpoints use, and ``silu``,
x·σ(x) (Elfwing, Uchibe & Doya, 2018; "swish" in Ramachandran et al., 2017), which the OPUS-MT
translation models use.
"""

from __future__ import annotations

from functools import partial

import torch.nn.functional as F
from torch import Tensor, nn

from .dropout import dropped

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": partial(F.gelu, approximate="tanh"), "silu": F.silu}


class PositionwiseFeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = ACTIVATIONS[activation]
        self.linear1 = nn.Linear(d_model, d_ff)  # W1: d_model -> d_ff
        self.linear2 = nn.Linear(d_ff, d_model)  # W2: d_ff -> d_model
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, d_model) -> (B, T, d_model)."""
        return self.linear2(dropped(self.dropout, self.activation(self.linear1(x))))
