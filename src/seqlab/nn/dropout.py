"""Dropout (Srivastava et al., 2014) called only where it does something."""

from __future__ import annotations

from torch import Tensor, nn


def dropped(dropout: nn.Dropout, x: Tensor) -> Tensor:
    """``dropout(x)`` in training with a rate above 0; otherwise ``x`` itself, without the call (which
    would return ``x`` too, after a module call and an operator a decoding step pays for every layer)."""
    return dropout(x) if dropout.training and dropout.p > 0 else x
