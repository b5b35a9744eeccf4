"""Scaled dot-product and multi-head attention ("Attention Is All You Need", §3.2).

Masks are boolean with True = may attend (see :mod:`seqlab.nn.masks`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .relative import RelativePositions


def is_exporting() -> bool:
    """Whether torch.export is tracing (then no branch may depend on the data); torch before 2.7 has no
    such question, and never exports through here."""
    check = getattr(torch.compiler, "is_exporting", None)
    return bool(check()) if check is not None else False


# Where the attention logits of the calls made with ``need_weights`` go, while ``recording_scores`` is
# open (the explorer's "Q·Kᵀ before softmax"); a ContextVar, so requests served at once keep their own.
_SCORES: ContextVar[list[Tensor] | None] = ContextVar("seqlab_attention_scores", default=None)


@contextmanager
def recording_scores() -> Iterator[list[Tensor]]:
    """Collects, in call order, the logits Q·Kᵀ/√d_k (plus any relative-position term) of every
    attention call made with ``need_weights`` inside the block, each (B, H, Tq, Tk) with -inf where the
    mask forbids: the numbers the softmax turns into the weights.

        with recording_scores() as scores:
            _, weights = model(ids, need_weights=True)
    """
    sink: list[Tensor] = []
    token = _SCORES.set(sink)
    try:
        yield sink
    finally:
        _SCORES.reset(token)


def _fused_kernel_pays(q: Tensor, k: Tensor) -> bool:
    """torch's fused CPU kernel is slower than the plain composite in bf16 up to about 256 keys, and
    faster beyond (measured with benchmarks/attention.py; the figures are in BENCHMARKS.md)."""
    return not (q.dtype == torch.bfloat16 and k.size(-2) <= 256 and q.device.type == "cpu")


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = False,
    is_causal: bool = False,
    relative: RelativePositions | None = None,
    offset: int = 0,
) -> tuple[Tensor, Tensor | None]:
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V  (eq. 1).

    q: (B, H, Tq, d), k and v: (B, H, Tk, d) (other leading axes work too, broadcasting as in torch's
    own F.scaled_dot_product_attention); mask: bool broadcastable to (B, H, Tq, Tk), True = may attend.
    ``is_causal`` (with Tq = Tk and no mask) lets query t see keys ≤ t without building a mask, so the
    fused kernel can skip the masked blocks. Returns out (B, H, Tq, d) and, when ``need_weights``, the
    attention weights (B, H, Tq, Tk). A query row that may attend to no key gives zeros (never NaN).

    ``relative``: relative position representations (Shaw et al., 2018, eqs. 3-4) add q_i · a^K_ij / √d_k
    to the logits and Σ_j α_ij a^V_ij to the output, queries at positions offset … offset + Tq - 1 and
    keys at 0 … Tk - 1. The a^V term needs the weights α, so this runs the composite path, not the
    fused kernel.
    """
    if is_causal and mask is not None:
        raise ValueError("give either a mask or is_causal=True, not both")
    empty_rows = None
    if mask is not None:
        # A softmax over an all -inf row is NaN, and NaN poisons gradients even where the output is
        # later zeroed. So let such rows attend everywhere (finite values), then zero them.
        allowed = mask.any(dim=-1, keepdim=True)
        # An exported or compiled graph cannot branch on the data: it always takes the guarded path.
        if is_exporting() or torch.compiler.is_compiling() or not bool(allowed.all()):
            empty_rows = ~allowed
            mask = mask | empty_rows

    if need_weights or relative is not None or not _fused_kernel_pays(q, k):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, Tq, Tk)
        if relative is not None:
            scores = scores + relative.logits(q, k.size(-2), offset)
        if is_causal:
            mask = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool, device=q.device).tril()
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        if need_weights and (sink := _SCORES.get()) is not None:  # a row that may attend nowhere: all -inf
            sink.append(scores.detach() if empty_rows is None else scores.detach().masked_fill(empty_rows, float("-inf")))
        weights = scores.softmax(dim=-1)
        if empty_rows is not None:
            weights = weights.masked_fill(empty_rows, 0.0)
        attended = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
        out = attended @ v  # (B, H, Tq, d)
        if relative is not None:
            out = out + relative.values(attended, offset)
        weights = weights if need_weights else None
    else:
        weights = None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                             is_causal=is_causal)
    if empty_rows is not None:
        out = out.masked_fill(empty_rows, 0.0)
    return out, weights


class KVCache:
    """Keys and values already projected, kept between decoding steps.

    Self-attention appends each step's new keys and values; cross-attention (``static=True``)
    projects the encoder memory once and reuses it for every step.

    Appending writes in place into a buffer with room to spare, which grows by half when full, so a step
    costs the new positions rather than a copy of all the cached ones (as ``torch.cat`` would); ``key``
    and ``value`` are views of its filled part. Where autograd or ``torch.export`` could see the
    buffer (tensors that need gradients, an export trace) the cache concatenates instead.
    """

    def __init__(self, static: bool = False) -> None:
        self.static = static
        self._key: Tensor | None = None  # (B, H, capacity, d_head); positions ≥ _length unused
        self._value: Tensor | None = None
        self._length = 0
        self._own = False  # whether the buffers are the cache's own, to write in place
        self._spare: tuple[Tensor, Tensor] | None = None  # buffers of the same size that reorder writes into

    @property
    def key(self) -> Tensor | None:
        """(B, H, T_cached, d_head)."""
        return self._filled(self._key)

    @key.setter
    def key(self, key: Tensor | None) -> None:
        self._key, self._length, self._own, self._spare = key, 0 if key is None else key.size(2), False, None

    @property
    def value(self) -> Tensor | None:
        return self._filled(self._value)

    @value.setter
    def value(self, value: Tensor | None) -> None:
        self._value = value

    def _filled(self, buffer: Tensor | None) -> Tensor | None:
        if buffer is None or buffer.size(2) == self._length:
            return buffer
        return buffer.narrow(2, 0, self._length)

    def __len__(self) -> int:
        return int(self.length)

    @property
    def length(self) -> int:
        """The positions cached; unlike ``len``, a symbolic size under ``torch.export`` (so an exported
        decoding step takes any number of past positions)."""
        return 0 if self._key is None else self._length

    def update(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """key, value: (B, H, T_new, d_head) -> all the keys and values, (B, H, T_cached + T_new, d_head)."""
        if self._key is None or self.static:
            self.key, self.value = key, value
        elif key.requires_grad or value.requires_grad or not self._in_place():
            self.key, self.value = torch.cat([self.key, key], dim=2), torch.cat([self.value, value], dim=2)
        else:
            start, new = self._length, key.size(2)
            if start + new > self._key.size(2):
                self._grow(start + new)
            self._key.narrow(2, start, new).copy_(key)
            self._value.narrow(2, start, new).copy_(value)
            self._length = start + new
            return self._key.narrow(2, 0, self._length), self._value.narrow(2, 0, self._length)
        return self.key, self.value

    def _in_place(self) -> bool:
        return not (is_exporting() or self._key.requires_grad or self._value.requires_grad)

    def _grow(self, needed: int) -> None:
        """A buffer for at least ``needed`` positions (half as many again, at least 16 more), holding the
        cached ones; always a new tensor, so a tensor given to the cache is never written to."""
        capacity = needed + max(needed // 2, 16)
        for name in ("_key", "_value"):
            old = getattr(self, name)
            B, H, _, d = old.shape
            new = old.new_empty(B, H, capacity, d)
            new.narrow(2, 0, self._length).copy_(old.narrow(2, 0, self._length))
            setattr(self, name, new)
        self._own, self._spare = True, None

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (beam search re-ranks hypotheses between steps). Where few rows
        change (hypotheses that keep their place, finished ones), only those are copied, in place;
        otherwise the filled positions are gathered into a second buffer kept for the purpose, and the
        two swap: no step allocates (fresh memory costs more than the copy at beam search's sizes)."""
        if self._key is None:
            return
        if self._own and index.size(0) == self._key.size(0) and self._in_place():
            moved = (index != torch.arange(index.size(0), device=index.device)).nonzero().squeeze(1)
            if 2 * moved.size(0) < index.size(0):  # else one copy of all rows is cheaper than two of the moved
                parents = index.index_select(0, moved)
                for buffer in (self._key, self._value):
                    buffer.index_copy_(0, moved, buffer.index_select(0, parents))
                return
            if self._spare is None:
                self._spare = (torch.empty_like(self._key), torch.empty_like(self._value))
            spare_key, spare_value = self._spare
            for source, target in ((self._key, spare_key), (self._value, spare_value)):
                torch.index_select(source.narrow(2, 0, self._length), 0, index, out=target.narrow(2, 0, self._length))
            self._spare = (self._key, self._value)
            self._key, self._value = spare_key, spare_value
            return
        length = self._length
        self._key, self._value = self._key.index_select(0, index), self._value.index_select(0, index)
        self._own, self._spare = True, None
        self._length = length


class StaticKVCache:
    """Keys and values in buffers of a fixed number of positions, each step's written in place at
    ``position``, a (1,) tensor: a decoding step then has the same shapes at every position, which
    ``torch.compile`` turns into one graph. The buffers are returned whole, so attention must mask the
    positions not written yet (``TransformerLM.decode_step`` does)."""

    static = False  # the decoder's own keys and values, not a projected encoder memory

    def __init__(self, key: Tensor, value: Tensor, position: Tensor) -> None:
        self.key, self.value = key, value  # (B, H, capacity, d_head)
        self.position = position  # (1,) long; shared by every layer's cache

    @property
    def length(self) -> Tensor:
        """The positions written so far, as a tensor (an offset rotary or relative positions would need
        as an int; they are not decoded this way)."""
        return self.position

    def update(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """key, value: (B, H, 1, d_head) -> the buffers, (B, H, capacity, d_head), with them written at ``position``."""
        self.key.index_copy_(2, self.position, key)
        self.value.index_copy_(2, self.position, value)
        return self.key, self.value


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, …, head_h) W_O, head_i = Attention(Q W_Q^i, K W_K^i, V W_V^i)
    (§3.2.2). The h heads' projections are stored as one (D, D) matrix each: w_q, w_k, w_v, w_o."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True,
                 rotary: nn.Module | None = None, relative: RelativePositions | None = None) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.rotary = rotary  # RoPE rotates queries and keys by position (decoder-only models)
        self.relative = relative  # relative position representations (Shaw et al., 2018), self-attention only

    def _split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        # -1 heads: under tensor parallelism a rank holds n_heads / ranks of them.
        return x.view(B, T, -1, self.d_head).transpose(1, 2)  # (B, H, T, d_head)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        mask: Tensor | None = None,
        need_weights: bool = False,
        cache: KVCache | None = None,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """query: (B, Tq, D); key, value: (B, Tk, D).
        mask: bool (B, Tq, Tk), (B, 1, Tk) or (Tq, Tk), True = may attend; with a self-attention
        cache, Tk counts the cached positions too. ``is_causal``: self-attention where position t
        sees positions ≤ t, without a mask tensor.
        Returns ``(out, weights)``, as torch's ``nn.MultiheadAttention`` does: out (B, Tq, D), and
        weights (B, H, Tq, Tk) when ``need_weights``, else None (then the fused kernel runs). The
        weights are returned, never kept on the module, so calls served at once cannot see each
        other's."""
        B, Tq, _ = query.shape
        q = self._split_heads(self.w_q(query))  # (B, H, Tq, d_head)
        offset = cache.length if cache is not None and not cache.static else 0  # positions already cached
        if cache is not None and cache.static and cache.key is not None:
            k, v = cache.key, cache.value  # encoder memory, projected at the first step
        else:
            k = self._split_heads(self.w_k(key))  # (B, H, Tk, d_head)
            v = self._split_heads(self.w_v(value))
            if self.rotary is not None:
                q, k = self.rotary(q, offset), self.rotary(k, offset)
            if cache is not None:
                k, v = cache.update(k, v)
        if mask is not None:
            mask = mask.unsqueeze(-3)  # add the head axis: (..., 1, Tq, Tk)
        out, weights = scaled_dot_product_attention(
            q, k, v, mask, self.dropout if self.training else 0.0, need_weights, is_causal, self.relative, offset
        )
        out = out.transpose(1, 2).reshape(B, Tq, -1)  # Concat(head_1, …, head_h)
        return self.w_o(out), weights
