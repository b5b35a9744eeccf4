"""DETR's positional encodings and its two Transformer layers (Carion et al., 2020, §3.2 and Fig. 10 of
the supplement).

Unlike the Transformer of Vaswani et al., DETR does not add positions to the input once: the spatial
positions are added to the queries and keys (never the values) of the encoder self-attention in every
layer and to the keys of every decoder cross-attention, and the object queries' positional part to the
queries and keys of the decoder self-attention and to the queries of its cross-attention. Post-LN, as
the paper: LayerNorm(x + Dropout(Sublayer(x))).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..nn import DecoderLayer, EncoderLayer


def sine_encoding(coords: Tensor, n_features: int, temperature: float = 10000.0) -> Tensor:
    """Each coordinate in [0, 1] to ``n_features`` sines and cosines of coordinate·2π / temperature^(2i/n),
    sin on the even features and cos on the odd ones, as DETR's ``PositionEmbeddingSine`` (normalised
    coordinates, scale 2π); the coordinates' encodings are concatenated in their order.
    coords: (..., n) -> (..., n · n_features)."""
    if n_features % 2:
        raise ValueError(f"n_features must be even, got {n_features}")
    i = torch.arange(n_features, dtype=torch.float32, device=coords.device)
    frequencies = temperature ** (2 * (i // 2) / n_features)  # (n_features,)
    angles = coords.float()[..., None] * (2 * math.pi) / frequencies  # (..., n, n_features)
    encoded = torch.stack([angles[..., 0::2].sin(), angles[..., 1::2].cos()], dim=-1)  # (..., n, n_features/2, 2)
    return encoded.flatten(-3)  # (..., n · n_features), sin/cos interleaved


def grid_positions(height: int, width: int, d_model: int, device: torch.device | None = None) -> Tensor:
    """The 2-D sine encoding of an h×w feature map (DETR §3.2, "fixed positional encodings"): d_model/2
    features for the row y, then d_model/2 for the column x, each of the normalised coordinate
    (row + 1) / h, (column + 1) / w as the paper's code. -> (h·w, d_model), positions row-major."""
    eps = 1e-6  # the paper's code divides by the last cumulative index + 1e-6
    y = torch.arange(1, height + 1, dtype=torch.float32, device=device) / (height + eps)
    x = torch.arange(1, width + 1, dtype=torch.float32, device=device) / (width + eps)
    yx = torch.stack(torch.meshgrid(y, x, indexing="ij"), dim=-1).view(height * width, 2)  # (S, 2) as (y, x)
    return sine_encoding(yx, d_model // 2)  # (S, d_model)


def _with(x: Tensor, position: Tensor | None) -> Tensor:
    return x if position is None else x + position


class DETREncoderLayer(EncoderLayer):
    """Self-attention whose queries and keys see the spatial positions, then the feed-forward network,
    each with post-LN Add & Norm: :class:`seqlab.nn.EncoderLayer`'s parts, with the positions added in
    ``forward``."""

    def forward(self, x: Tensor, position: Tensor | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x: (B, S, D) image features; position: (S, D) or (B, S, D).
        Returns (x (B, S, D), weights (B, H, S, S) with ``need_weights``, else None)."""
        q = k = _with(x, position)
        attended, weights = self.self_attn(q, k, x, need_weights=need_weights)
        x = self.norm1(x + self.dropout(attended))
        x = self.norm2(x + self.dropout(self.ff(x)))
        return x, weights


class DETRDecoderLayer(DecoderLayer):
    """Self-attention among the object queries, cross-attention from the queries to the image features,
    then the feed-forward network, each with post-LN Add & Norm: :class:`seqlab.nn.DecoderLayer`'s
    parts. The queries' positional part goes into the queries and keys of the self-attention and the
    queries of the cross-attention; the image positions into the cross-attention's keys."""

    def forward(self, x: Tensor, memory: Tensor, query_position: Tensor | None = None,
                memory_position: Tensor | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x: (B, Q, D) the queries' content; memory: (B, S, D) encoder output; query_position: (B, Q, D);
        memory_position: (S, D) or (B, S, D). Returns (x (B, Q, D), cross-attention weights (B, H, Q, S)
        with ``need_weights``, else None)."""
        q = k = _with(x, query_position)
        attended, _ = self.self_attn(q, k, x)
        x = self.norm1(x + self.dropout(attended))
        attended, weights = self.cross_attn(_with(x, query_position), _with(memory, memory_position), memory,
                                            need_weights=need_weights)
        x = self.norm2(x + self.dropout(attended))
        x = self.norm3(x + self.dropout(self.ff(x)))
        return x, weights
