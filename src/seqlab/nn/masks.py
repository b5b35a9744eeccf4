"""Attention masks. Convention throughout seqlab: a boolean mask where **True = may attend**,
the same meaning as a boolean ``attn_mask`` in ``torch.nn.functional.scaled_dot_product_attention``
(and the opposite of ``torch.nn.MultiheadAttention``'s ``key_padding_mask``)."""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(tokens: Tensor, pad_id: int) -> Tensor:
    """Keys that are real tokens. tokens: (B, T) -> (B, 1, T) bool, broadcasts over queries."""
    return (tokens != pad_id).unsqueeze(1)


def causal_mask(size: int, device: torch.device | str | None = None) -> Tensor:
    """Position t may attend to positions <= t (the decoder's "subsequent" mask). -> (T, T) bool,
    lower triangle True."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()
