"""The encoder-decoder Transformer of "Attention Is All You Need" (Figure 1), composed from
:mod:`seqlab.nn` blocks.

    src ─ Embedding·√d_model + PE ─ Encoder ──────────────┐ memory
    tgt ─ Embedding·√d_model + PE ─ Decoder (masked self, cross) ─ Linear ─ logits

PE is the sinusoidal table (§3.5) or learned vectors; ``positional="relative"`` adds nothing to the
embeddings and gives the encoder's and the decoder's self-attention relative position
representations instead (Shaw, Uszkoreit & Vaswani, 2018: clipped offsets, per layer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from ..nn import (Decoder, Encoder, LearnedPositionalEmbedding, RelativePositions, SinusoidalPositionalEncoding,
                  causal_mask, decoder_layer, encoder_layer, padding_mask, relative_positions)
from ..nn.dropout import dropped
from ..nn.layers import DecoderCache
from . import pretrained

POSITIONAL = {"sinusoidal", "learned", "relative"}


class TokenEmbedding(nn.Module):
    """Token embedding scaled by √d_model (§3.4; unscaled with ``scale=False``), plus position (none
    when ``positional`` is None: relative positions live in the attention), an optional LayerNorm
    (``norm``: BERT's post-LN embeddings) and dropout."""

    def __init__(self, vocab_size: int, d_model: int, positional: nn.Module | None, dropout: float,
                 scale: bool = True, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positional = positional
        self.norm = norm
        self.dropout = nn.Dropout(dropout)
        self.scale = math.sqrt(d_model) if scale else 1.0

    def forward(self, tokens: Tensor, offset: int = 0) -> Tensor:
        """tokens: (B, T) -> (B, T, D)."""
        x = self.embedding(tokens) * self.scale
        if self.positional is not None:
            x = self.positional(x, offset)
        if self.norm is not None:
            x = self.norm(x)
        return dropped(self.dropout, x)


@dataclass
class TransformerConfig:
    """The encoder-decoder's sizes; the defaults are the paper's base model (Table 3)."""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 512
    n_heads: int = 8
    n_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    max_len: int = 512
    n_decoder_layers: int | None = None  # None = n_layers
    norm_first: bool = False  # the paper's post-LN; True = pre-LN
    positional: str = "sinusoidal"  # or "learned", or "relative" (Shaw et al., 2018)
    max_relative_position: int = 16  # "relative": offsets are clipped to [-k, k], k = this
    activation: str = "relu"
    share_embeddings: bool = False  # one embedding matrix for source and target (one vocabulary)
    tie_output: bool = True  # the output layer is the target embedding (§3.4)
    pad_id: int = 0
    attention_dropout: float | None = None  # None = dropout
    ff_dropout: float | None = None  # None = dropout
    # The source side as a MaskedLM's encoder reads it, to start from one (Rothe et al., 2020 §3):
    # embeddings not scaled by √d_model, and LayerNorm'd when it is post-LN (BERT's)
    src_embedding_scale: bool = True
    src_embedding_norm: bool = False

    def __post_init__(self) -> None:
        if self.positional not in POSITIONAL:
            raise ValueError(f"positional must be one of {sorted(POSITIONAL)}, got {self.positional!r}")
        if self.max_relative_position < 1:
            raise ValueError(f"max_relative_position must be at least 1; got {self.max_relative_position}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError("share_embeddings needs one vocabulary for source and target")


@pretrained.register
class Transformer(pretrained.PretrainedModel):
    config_class = TransformerConfig

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = c = config
        self.pad_id, self.max_len = c.pad_id, c.max_len

        def position() -> nn.Module | None:
            if c.positional == "learned":
                return LearnedPositionalEmbedding(c.max_len, c.d_model)
            if c.positional == "relative":
                return None
            return SinusoidalPositionalEncoding(c.d_model, c.max_len)

        def relative() -> RelativePositions | None:  # one per layer (Shaw et al. §3.3)
            return relative_positions(c.positional, c.d_model // c.n_heads, c.max_relative_position)

        def final_norm() -> nn.Module | None:
            return nn.LayerNorm(c.d_model) if c.norm_first else None

        block = (c.d_model, c.n_heads, c.d_ff, c.dropout, c.norm_first, c.activation, c.attention_dropout,
                 c.ff_dropout)
        self.src_embed = TokenEmbedding(c.src_vocab_size, c.d_model, position(), c.dropout, c.src_embedding_scale,
                                        nn.LayerNorm(c.d_model) if c.src_embedding_norm else None)
        self.tgt_embed = TokenEmbedding(c.tgt_vocab_size, c.d_model, position(), c.dropout)
        self.encoder = Encoder([encoder_layer(*block, relative=relative()) for _ in range(c.n_layers)], final_norm())
        self.decoder = Decoder([decoder_layer(*block, relative=relative())
                                for _ in range(c.n_decoder_layers or c.n_layers)], final_norm())
        self.generator = nn.Linear(c.d_model, c.tgt_vocab_size)  # the final Linear before softmax

        own_init = {id(p) for m in self.modules() if isinstance(m, RelativePositions) for p in m.parameters()}
        for p in self.parameters():
            if p.dim() > 1 and id(p) not in own_init:  # the relative-position tables keep their N(0, 0.02)
                nn.init.xavier_uniform_(p)
        # §3.4: "we share the same weight matrix between the two embedding layers and the
        # pre-softmax linear transformation".
        if c.share_embeddings:
            self.tgt_embed.embedding.weight = self.src_embed.embedding.weight
        if c.tie_output:
            self.generator.weight = self.tgt_embed.embedding.weight

    def encode(self, src: Tensor, need_weights: bool = False):
        """src: (B, S) token ids -> memory (B, S, D) and its padding mask (B, 1, S); with
        ``need_weights`` also {"encoder": per layer (B, H, S, S)}, the encoder's self-attention."""
        src_mask = padding_mask(src, self.pad_id)
        if need_weights:
            memory, maps = self.encoder(self.src_embed(src), src_mask, need_weights=True)
            return memory, src_mask, {"encoder": maps}
        return self.encoder(self.src_embed(src), src_mask), src_mask

    def decode(self, tgt: Tensor, memory: Tensor, memory_mask: Tensor,
               cache: DecoderCache | None = None, need_weights: bool = False):
        """tgt: (B, T) decoder input (starting with <bos>) -> logits (B, T, V).
        With a cache, tgt holds only the new positions and earlier ones come from the cache.
        With ``need_weights``: (logits, {"decoder": per layer (B, H, T, T) masked self-attention,
        "cross": per layer (B, H, T, S)})."""
        offset = cache.offset if cache is not None else 0
        T = tgt.size(1)
        # Position offset+t may see cached positions and new ones up to itself.
        self_mask = causal_mask(offset + T, tgt.device)[offset:] if T > 1 or cache is None else None
        h = self.decoder(self.tgt_embed(tgt, offset), memory, self_mask, memory_mask, need_weights, cache)
        if need_weights:
            h, (self_maps, cross_maps) = h
            return self.generator(h), {"decoder": self_maps, "cross": cross_maps}
        return self.generator(h)

    def forward(self, src: Tensor, tgt: Tensor, need_weights: bool = False):
        """Teacher forcing: src (B, S), tgt (B, T) shifted right -> logits (B, T, V). With
        ``need_weights``: (logits, attention), attention = {"encoder", "decoder", "cross"}: per layer
        (B, H, T_q, T_k) weights of the encoder's self-attention, the decoder's masked
        self-attention and its attention over the source."""
        if not need_weights:
            memory, memory_mask = self.encode(src)
            return self.decode(tgt, memory, memory_mask)
        memory, memory_mask, encoder_maps = self.encode(src, need_weights=True)
        logits, decoder_maps = self.decode(tgt, memory, memory_mask, need_weights=True)
        return logits, {**encoder_maps, **decoder_maps}

    def new_cache(self) -> DecoderCache:
        return self.decoder.new_cache()
