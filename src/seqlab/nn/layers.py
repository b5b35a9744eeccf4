"""The encoder and decoder layers of Figure 1, and their stacks (§3.1).

Each sub-layer is wrapped as LayerNorm(x + Dropout(Sublayer(x))) — "Add & Norm", post-LN as in the
paper, whose §5.4 "residual dropout" is ``dropout`` here. Dropout on the attention weights and inside
the feed-forward network (tensor2tensor's additions, which torch's layers also apply) default to the
same rate; set ``attention_dropout`` / ``ff_dropout`` to 0 to skip them: on a CPU their random masks
cost more time than the layer's matrix products. ``norm_first=True`` gives pre-LN, x + Dropout(Sublayer(LayerNorm(x))), which trains more
stably in deep stacks and without warmup (Xiong et al., 2020).

Attention weights come back from the call that computed them: with ``need_weights=True`` a layer or a
stack returns ``(x, weights)`` instead of ``x``, each weight tensor (B, H, T_q, T_k). Nothing of a
call is kept on the module.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from .attention import KVCache, MultiHeadAttention
from .dropout import dropped
from .feedforward import PositionwiseFeedForward
from .relative import RelativePositions


def _or(rate: float | None, default: float) -> float:
    return default if rate is None else rate


def _add_and_norm(x: Tensor, sublayer: Callable[[Tensor], Tensor], norm: nn.LayerNorm,
                  dropout: nn.Dropout, norm_first: bool) -> Tensor:
    if norm_first:
        return x + dropped(dropout, sublayer(norm(x)))
    return norm(x + dropped(dropout, sublayer(x)))


class EncoderLayer(nn.Module):
    """Multi-head self-attention, then the position-wise feed-forward network, each with Add & Norm.

    Run under a causal mask it is also the block of a decoder-only language model (GPT): the decoder
    layer without cross-attention.

    The layer is composed from the parts it is given: ``self_attn`` (a :class:`MultiHeadAttention`),
    ``ff`` (the position-wise feed-forward network, any (B, T, D) -> (B, T, D) module), ``norm1`` and
    ``norm2`` (the Add & Norm of each sub-layer); ``dropout`` is the residual dropout (§5.4).
    :func:`encoder_layer` builds the paper's."""

    def __init__(self, self_attn: MultiHeadAttention, ff: nn.Module, norm1: nn.Module, norm2: nn.Module,
                 dropout: float = 0.1, norm_first: bool = False) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = self_attn
        self.ff = ff
        self.norm1 = norm1
        self.norm2 = norm2
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None, need_weights: bool = False,
                is_causal: bool = False, cache: KVCache | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """x: (B, T, D); mask: (B, 1, T), (B, T, T) or (T, T) bool, True = may attend;
        is_causal: position t sees positions ≤ t (no mask tensor); cache: keys and values of
        earlier positions, for incremental decoding. Returns x (B, T, D), or with ``need_weights``
        (x, weights), weights (B, H, T, T_k) (T_k counts cached positions too)."""
        weights = None

        def self_attention(h: Tensor) -> Tensor:
            nonlocal weights
            out, weights = self.self_attn(h, h, h, mask, need_weights, cache, is_causal)
            return out

        x = _add_and_norm(x, self_attention, self.norm1, self.dropout, self.norm_first)
        x = _add_and_norm(x, self.ff, self.norm2, self.dropout, self.norm_first)
        return (x, weights) if need_weights else x


class DecoderLayer(nn.Module):
    """Masked self-attention over the output so far, cross-attention over the encoder memory
    (queries from the decoder, keys and values from the encoder), then the feed-forward network.

    Composed from the parts it is given, as :class:`EncoderLayer`, with ``cross_attn`` and a third norm;
    :func:`decoder_layer` builds the paper's."""

    def __init__(self, self_attn: MultiHeadAttention, cross_attn: MultiHeadAttention, ff: nn.Module,
                 norm1: nn.Module, norm2: nn.Module, norm3: nn.Module, dropout: float = 0.1,
                 norm_first: bool = False) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = self_attn
        self.cross_attn = cross_attn
        self.ff = ff
        self.norm1 = norm1
        self.norm2 = norm2
        self.norm3 = norm3
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, self_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, need_weights: bool = False,
                cache: tuple[KVCache, KVCache] | None = None
                ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        """x: (B, T, D) decoder input; memory: (B, S, D) encoder output.
        self_mask: (T, T) causal and/or (B, 1, T) padding, True = may attend;
        memory_mask: (B, 1, S), True = may attend; cache: (self, cross) for incremental decoding.
        Returns x (B, T, D), or with ``need_weights`` (x, (self-attention (B, H, T, T),
        cross-attention (B, H, T, S)))."""
        self_cache, cross_cache = cache if cache is not None else (None, None)
        self_weights = cross_weights = None

        def self_attention(h: Tensor) -> Tensor:
            nonlocal self_weights
            out, self_weights = self.self_attn(h, h, h, self_mask, need_weights, self_cache)
            return out

        def cross_attention(h: Tensor) -> Tensor:
            nonlocal cross_weights
            out, cross_weights = self.cross_attn(h, memory, memory, memory_mask, need_weights, cross_cache)
            return out

        x = _add_and_norm(x, self_attention, self.norm1, self.dropout, self.norm_first)
        x = _add_and_norm(x, cross_attention, self.norm2, self.dropout, self.norm_first)
        x = _add_and_norm(x, self.ff, self.norm3, self.dropout, self.norm_first)
        return (x, (self_weights, cross_weights)) if need_weights else x


def encoder_layer(d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1, norm_first: bool = False,
                  activation: str = "relu", attention_dropout: float | None = None,
                  ff_dropout: float | None = None, rotary: nn.Module | None = None,
                  relative: RelativePositions | None = None) -> EncoderLayer:
    """The encoder layer of Figure 1 (torch's ``TransformerEncoderLayer(d_model, n_heads, d_ff)``):
    multi-head self-attention (``rotary``: RoPE on its queries and keys; ``relative``: this layer's
    relative position representations, Shaw et al. 2018), the feed-forward network, LayerNorms.
    ``attention_dropout`` / ``ff_dropout``: None = ``dropout``."""
    return EncoderLayer(MultiHeadAttention(d_model, n_heads, _or(attention_dropout, dropout), rotary=rotary,
                                           relative=relative),
                        PositionwiseFeedForward(d_model, d_ff, _or(ff_dropout, dropout), activation),
                        nn.LayerNorm(d_model), nn.LayerNorm(d_model), dropout, norm_first)


def decoder_layer(d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1, norm_first: bool = False,
                  activation: str = "relu", attention_dropout: float | None = None,
                  ff_dropout: float | None = None, relative: RelativePositions | None = None) -> DecoderLayer:
    """The decoder layer of Figure 1 (torch's ``TransformerDecoderLayer(d_model, n_heads, d_ff)``);
    ``relative``: relative position representations in its masked self-attention (Shaw et al. 2018;
    cross-attention has no relative order between target and source)."""
    return DecoderLayer(MultiHeadAttention(d_model, n_heads, _or(attention_dropout, dropout), relative=relative),
                        MultiHeadAttention(d_model, n_heads, _or(attention_dropout, dropout)),
                        PositionwiseFeedForward(d_model, d_ff, _or(ff_dropout, dropout), activation),
                        nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model), dropout, norm_first)


class Encoder(nn.Module):
    """N identical encoder layers, given as built modules; ``norm`` is the final LayerNorm that a
    pre-LN stack needs (its last residual sum is otherwise never normalised)."""

    def __init__(self, layers: list[EncoderLayer], norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm

    def forward(self, x: Tensor, mask: Tensor | None = None,
                need_weights: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """x: (B, T, D) -> (B, T, D), or with ``need_weights`` (x, per layer (B, H, T, T))."""
        maps = []
        for layer in self.layers:
            if need_weights:
                x, weights = layer(x, mask, need_weights=True)
                maps.append(weights)
            else:
                x = layer(x, mask)
        x = self.norm(x) if self.norm is not None else x
        return (x, maps) if need_weights else x


class Decoder(nn.Module):
    """N identical decoder layers and an optional final LayerNorm."""

    def __init__(self, layers: list[DecoderLayer], norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm

    def forward(self, x: Tensor, memory: Tensor, self_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, need_weights: bool = False,
                cache: list[tuple[KVCache, KVCache]] | None = None
                ) -> Tensor | tuple[Tensor, tuple[list[Tensor], list[Tensor]]]:
        """x: (B, T, D) -> (B, T, D), or with ``need_weights`` (x, (self-attention per layer
        (B, H, T, T), cross-attention per layer (B, H, T, S)))."""
        self_maps, cross_maps = [], []
        for i, layer in enumerate(self.layers):
            layer_cache = cache[i] if cache is not None else None
            if need_weights:
                x, (self_weights, cross_weights) = layer(x, memory, self_mask, memory_mask, True, layer_cache)
                self_maps.append(self_weights)
                cross_maps.append(cross_weights)
            else:
                x = layer(x, memory, self_mask, memory_mask, cache=layer_cache)
        x = self.norm(x) if self.norm is not None else x
        return (x, (self_maps, cross_maps)) if need_weights else x

    def new_cache(self) -> "DecoderCache":
        return DecoderCache((KVCache(), KVCache(static=True)) for _ in self.layers)


class DecoderCache(list):
    """Per layer, the (self-attention, cross-attention) caches of incremental decoding."""

    @property
    def offset(self) -> int:
        """Positions decoded so far."""
        return len(self[0][0]) if self else 0

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (beam search). The cross-attention memory is the same for every
        hypothesis of a sentence, so it moves only when rows leave the batch (a sentence whose search
        has ended): ``index`` must never give a row another sentence's place (a permutation of the
        sentences would leave their memory where it was; beam search picks parents within a sentence)."""
        for self_cache, cross_cache in self:
            self_cache.reorder(index)
            if cross_cache.key is not None and cross_cache.key.size(0) != index.size(0):
                cross_cache.reorder(index)
