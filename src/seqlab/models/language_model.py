"""A decoder-only Transformer language model (GPT, Radford et al., 2018), composed from
:mod:`seqlab.nn` blocks: the encoder layer of Figure 1 run under a causal mask is the GPT block.

    ids ─ Embedding (+ learned / sinusoidal position) ─ N × [causal self-attention, FFN] ─ LayerNorm
        ─ Linear (tied to the embedding) ─ logits

Pre-LN by default, as in GPT-2; rotary position embeddings (RoPE) or relative position
representations (Shaw, Uszkoreit & Vaswani, 2018: clipped offsets, per layer) as options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from ..nn.dropout import dropped
from ..nn import (KVCache, LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding,
                  causal_mask, encoder_layer, relative_positions)
from . import generation, pretrained

POSITIONAL = ("learned", "sinusoidal", "rotary", "relative")


class LMCache(list):
    """Per layer, the keys and values of the positions generated so far."""

    @property
    def offset(self) -> int:
        return self[0].length if self else 0


@dataclass
class TransformerLMConfig:
    """The decoder-only model's sizes; the defaults are a small GPT (pre-LN, GELU, tied output)."""

    vocab_size: int
    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 6
    d_ff: int | None = None  # None = 4 · d_model
    max_len: int = 256  # the longest context: the learned position table's size
    dropout: float = 0.0
    norm_first: bool = True
    activation: str = "gelu"
    positional: str = "learned"  # "learned", "sinusoidal", "rotary" or "relative" (Shaw et al., 2018)
    max_relative_position: int = 16  # "relative": offsets are clipped to [-k, k], k = this
    tie_weights: bool = True  # the output layer is the embedding (Press & Wolf, 2017)
    attention_dropout: float | None = None  # None = dropout
    ff_dropout: float | None = None  # None = dropout
    # Multiply the token embeddings by √d_model before the positions are added (Vaswani et al. 2017,
    # §3.4): with GPT's N(0, 0.02) embeddings, an unscaled sinusoidal table (entries ±1) swamps them.
    embedding_scale: bool = False

    def __post_init__(self) -> None:
        check_positional(self.positional, POSITIONAL, self.max_relative_position)
        self.d_ff = self.d_ff or 4 * self.d_model


def check_positional(positional: str, choices: tuple[str, ...], max_relative_position: int) -> None:
    """A ValueError unless ``positional`` is one of ``choices`` and the relative clipping distance is at least 1."""
    if positional not in choices:
        raise ValueError(f"positional must be one of {', '.join(choices)}; got {positional!r}")
    if max_relative_position < 1:
        raise ValueError(f"max_relative_position must be at least 1; got {max_relative_position}")


@pretrained.register
class TransformerLM(pretrained.PretrainedModel):
    config_class = TransformerLMConfig

    def __init__(self, config: TransformerLMConfig) -> None:
        super().__init__()
        self.config = c = config
        vocab_size, d_model, n_heads, max_len = c.vocab_size, c.d_model, c.n_heads, c.max_len
        self.vocab_size, self.max_len = vocab_size, max_len

        self.embedding = nn.Embedding(vocab_size, d_model)
        self.position: nn.Module | None = {
            "learned": lambda: LearnedPositionalEmbedding(max_len, d_model),
            "sinusoidal": lambda: SinusoidalPositionalEncoding(d_model, max_len),
            "rotary": lambda: None,
            "relative": lambda: None,
        }[c.positional]()
        rotary = RotaryEmbedding(d_model // n_heads, max_len) if c.positional == "rotary" else None

        self.dropout = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(
            encoder_layer(d_model, n_heads, c.d_ff, c.dropout, c.norm_first, c.activation, c.attention_dropout,
                         c.ff_dropout, rotary,
                         relative_positions(c.positional, d_model // n_heads, c.max_relative_position))
            for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(d_model) if c.norm_first else nn.Identity()
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self._init_weights(c.n_layers)
        if c.tie_weights:  # one matrix for input embedding and output projection (Press & Wolf, 2017)
            self.lm_head.weight = self.embedding.weight

    def _init_weights(self, n_layers: int) -> None:
        """GPT-2's: N(0, 0.02) everywhere, and the projections that write into the residual stream
        scaled by 1/√(2·n_layers) so that its variance does not grow with depth."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for layer in self.layers:
            for residual in (layer.self_attn.w_o, layer.ff.linear2):
                nn.init.normal_(residual.weight, std=0.02 / math.sqrt(2 * n_layers))

    def forward(self, ids: Tensor, cache: LMCache | None = None, need_weights: bool = False):
        """ids: (B, T) -> logits (B, T, V). With a cache, ids are the new positions only and the
        keys and values of earlier ones come from (and are appended to) the cache. With
        ``need_weights``: (logits, per layer the (B, H, T, T_k) causal self-attention weights)."""
        offset = cache.offset if cache is not None else 0
        T = ids.size(1)
        x = self.embedding(ids)  # (B, T, D)
        if self.config.embedding_scale:
            x = x * math.sqrt(self.config.d_model)
        if self.position is not None:
            x = self.position(x, offset)
        x = dropped(self.dropout, x)
        # Without a cache every position sees itself and those before it; one new position sees all
        # the cache; several new positions after a cache need the lower-right part of the mask.
        is_causal = cache is None and T > 1 and not need_weights
        mask = None
        if not is_causal and T > 1:
            mask = causal_mask(offset + T, ids.device)[offset:]
        maps = []
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, need_weights, is_causal, cache[i] if cache is not None else None)
            if need_weights:
                x, weights = x
                maps.append(weights)
        logits = self.lm_head(self.norm(x))  # (B, T, V)
        return (logits, maps) if need_weights else logits

    # model.generate(ids, max_new_tokens, temperature, top_k, top_p, eos_id) and model.stream(...)
    generate = generation.generate
    stream = generation.stream

    def new_cache(self) -> LMCache:
        return LMCache(KVCache() for _ in self.layers)

    def num_parameters(self, embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if not embedding and isinstance(self.position, LearnedPositionalEmbedding):
            n -= self.position.embedding.weight.numel()
        return n
