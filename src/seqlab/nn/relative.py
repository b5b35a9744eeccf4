"""Relative position representations (Shaw, Uszkoreit & Vaswani, 2018, "Self-Attention with Relative
Position Representations").

Self-attention sees the distance between two positions instead of their absolute places: the edge
from query i to key j carries two learned vectors a^K_ij and a^V_ij of width d_head (§3.1), chosen by
the clipped offset clip(j - i, -k, k), so that 2k + 1 vectors of each kind serve every length (§3.2):

    e_ij = q_i · (k_j + a^K_ij) / √d_head      (eq. 4)
    z_i  = Σ_j α_ij (v_j + a^V_ij)             (eq. 3)

The vectors are per layer and shared across the heads (§3.3). Nothing is added to the embeddings.

Neither term builds the (T_q, T_k, d_head) table of the paper's §3.3: q · a^K_r is computed once for
each of the 2k + 1 offsets r, (B, H, T_q, 2k + 1), and gathered into the (T_q, T_k) logits; the
weights α_ij are summed per offset, (B, H, T_q, 2k + 1), before meeting the a^V vectors.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def relative_positions(positional: str, d_head: int, max_distance: int) -> "RelativePositions | None":
    """One attention layer's tables when ``positional`` is "relative" (each layer its own, shared by its
    heads: §3.3), else None — what every Transformer of seqlab passes to its self-attention."""
    return RelativePositions(d_head, max_distance) if positional == "relative" else None


class RelativePositions(nn.Module):
    """The tables a^K and a^V, (2k + 1, d_head) each, of one attention layer; ``max_distance`` is k (16 unless given).

    Queries are at positions offset … offset + T_q - 1 (``offset``: positions already cached in
    incremental decoding) and keys at 0 … T_k - 1."""

    def __init__(self, d_head: int, max_distance: int = 16) -> None:
        super().__init__()
        if max_distance < 1:
            raise ValueError(f"the clipping distance k must be at least 1; got {max_distance}")
        self.d_head, self.max_distance = d_head, max_distance
        self.key = nn.Embedding(2 * max_distance + 1, d_head)  # a^K, row k + r for offset r
        self.value = nn.Embedding(2 * max_distance + 1, d_head)  # a^V
        nn.init.normal_(self.key.weight, std=0.02)
        nn.init.normal_(self.value.weight, std=0.02)

    def offsets(self, T_q: int, T_k: int, offset: int = 0, device: torch.device | None = None) -> Tensor:
        """(T_q, T_k) row indices into the tables: clip(j - i, -k, k) + k."""
        i = torch.arange(offset, offset + T_q, device=device).unsqueeze(1)
        j = torch.arange(T_k, device=device).unsqueeze(0)
        k = self.max_distance
        return (j - i).clamp(-k, k) + k

    def logits(self, q: Tensor, T_k: int, offset: int = 0) -> Tensor:
        """The term q_i · a^K_ij / √d_head of eq. 4: q (B, H, T_q, d_head) -> (B, H, T_q, T_k)."""
        B, H, T_q, _ = q.shape
        per_offset = q @ self.key.weight.to(q.dtype).t()  # (B, H, T_q, 2k + 1)
        index = self.offsets(T_q, T_k, offset, q.device).expand(B, H, T_q, T_k)
        return per_offset.gather(-1, index) / math.sqrt(q.size(-1))

    def values(self, weights: Tensor, offset: int = 0) -> Tensor:
        """The term Σ_j α_ij a^V_ij of eq. 3: weights (B, H, T_q, T_k) -> (B, H, T_q, d_head)."""
        B, H, T_q, T_k = weights.shape
        index = self.offsets(T_q, T_k, offset, weights.device).expand(B, H, T_q, T_k)
        per_offset = weights.new_zeros(B, H, T_q, 2 * self.max_distance + 1)
        per_offset = per_offset.scatter_add(-1, index, weights)  # the weight on each clipped offset
        return per_offset @ self.value.weight.to(weights.dtype)

    def extra_repr(self) -> str:
        return f"d_head={self.d_head}, max_distance={self.max_distance}"
