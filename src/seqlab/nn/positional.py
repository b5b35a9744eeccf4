"""Positional information (§3.5): attention alone is order-blind, so position is added to the
token embeddings."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_table(n_positions: int, d_model: int, offset: int = 0) -> Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model)).
    -> (n_positions, d_model) for positions offset … offset + n_positions - 1."""
    position = torch.arange(offset, offset + n_positions, dtype=torch.float64).unsqueeze(1)
    inverse_wavelength = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model)
    )
    table = torch.zeros(n_positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * inverse_wavelength)
    table[:, 1::2] = torch.cos(position * inverse_wavelength[: d_model // 2])
    return table.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table to x: (B, T, D). Positions past ``max_len`` are computed on
    the fly, so any length works; ``offset`` is the first position (for cached decoding)."""

    def __init__(self, d_model: int, max_len: int = 1024) -> None:
        super().__init__()
        self.d_model = d_model
        self.register_buffer("table", sinusoidal_table(max_len, d_model), persistent=False)

    def encoding(self, length: int, offset: int = 0) -> Tensor:
        if offset + length <= self.table.size(0):
            return self.table[offset : offset + length]
        return sinusoidal_table(length, self.d_model, offset).to(self.table.device)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        return x + self.encoding(x.size(1), offset).to(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """A trained vector per position (as in BERT, GPT and ViT), added to x: (B, T, D)."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        end = offset + x.size(1)
        if end > self.max_len:
            raise ValueError(f"sequence of length {end} is longer than max_len={self.max_len}")
        return x + self.embedding.weight[offset:end]  # the rows embedding(arange(offset, end)) looks up


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE, Su et al., 2021): each pair of channels (i, i + d/2) of a
    query or key at position p is rotated by the angle p·θ_i, θ_i = 10000^(-2i/d), so that q·k
    depends on the positions only through their difference. Applied to (B, H, T, d_head) after the
    heads are split; nothing is added to the embeddings."""

    def __init__(self, d_head: int, max_len: int = 1024, base: float = 10000.0) -> None:
        super().__init__()
        if d_head % 2:
            raise ValueError(f"rotary embeddings need an even head width; got {d_head}")
        self.d_head, self.base = d_head, base
        cos, sin = self._table(max_len)
        self.register_buffer("cos", cos, persistent=False)  # (max_len, d_head / 2)
        self.register_buffer("sin", sin, persistent=False)

    def _table(self, end: int, start: int = 0) -> tuple[Tensor, Tensor]:
        theta = self.base ** (-torch.arange(0, self.d_head, 2, dtype=torch.float64) / self.d_head)
        angle = torch.arange(start, end, dtype=torch.float64).unsqueeze(1) * theta
        return angle.cos().float(), angle.sin().float()

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        T = x.size(-2)
        if offset + T <= self.cos.size(0):
            cos, sin = self.cos[offset : offset + T], self.sin[offset : offset + T]
        else:
            cos, sin = (t.to(x.device) for t in self._table(offset + T, offset))
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
