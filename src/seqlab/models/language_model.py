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

import torch
from torch import Tensor, nn

from ..nn.dropout import dropped
from ..nn import (KVCache, LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding,
                  StaticKVCache, causal_mask, encoder_layer, relative_positions)
from . import generation, pretrained

POSITIONAL = ("learned", "sinusoidal", "rotary", "relative")


class LMCache(list):
    """Per layer, the keys and values of the positions generated so far."""

    @property
    def offset(self) -> int:
        return self[0].length if self else 0


class StaticLMCache(list):
    """Per layer, a :class:`StaticKVCache`; all share ``position``, the next position to write (a (1,)
    tensor, for the compiled step), which ``offset`` mirrors as an int (for the loop around it)."""

    def __init__(self, caches: list[StaticKVCache], offset: int) -> None:
        super().__init__(caches)
        self.position, self.offset = caches[0].position, offset

    @property
    def capacity(self) -> int:
        return self[0].key.size(2)

    def advance(self) -> None:
        self.position += 1
        self.offset += 1


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

    # Decoding through fixed-size buffers, one token a step: the shapes never change, so torch.compile
    # makes one graph of the whole step (generate(..., compile=True)). Learned and sinusoidal positions.
    STATIC_POSITIONAL = ("learned", "sinusoidal")

    def check_static_decoding(self) -> None:
        if self.config.positional not in self.STATIC_POSITIONAL:
            raise ValueError(f"compiled decoding supports {' and '.join(self.STATIC_POSITIONAL)} positions; "
                             f"this model's are {self.config.positional!r}")

    def static_cache(self, cache: LMCache, capacity: int) -> StaticLMCache:
        """The keys and values of ``cache`` (a prompt read by ``forward``) copied into buffers of
        ``capacity`` positions, for :meth:`decode_step`."""
        self.check_static_decoding()
        if not cache.offset < capacity <= self.max_len:
            raise ValueError(f"capacity must be in ({cache.offset}, {self.max_len}]; got {capacity}")
        position = torch.tensor([cache.offset], device=cache[0].key.device)
        layers = []
        for layer in cache:
            B, H, T, d_head = layer.key.shape
            key, value = layer.key.new_zeros(B, H, capacity, d_head), layer.value.new_zeros(B, H, capacity, d_head)
            key[:, :, :T], value[:, :, :T] = layer.key, layer.value
            layers.append(StaticKVCache(key, value, position))
        return StaticLMCache(layers, cache.offset)

    def decode_step(self, ids: Tensor, cache: StaticLMCache) -> Tensor:
        """ids: (B, 1), the tokens at position ``cache.position`` -> logits (B, 1, V); their keys and
        values are written into the cache (which the caller then advances). The same arithmetic as
        ``forward`` with a cache; each query sees the positions up to its own."""
        position = cache.position  # (1,)
        x = self.embedding(ids)  # (B, 1, D)
        if self.config.embedding_scale:
            x = x * math.sqrt(self.config.d_model)
        rows = (self.position.embedding.weight if isinstance(self.position, LearnedPositionalEmbedding)
                else self.position.table)
        x = dropped(self.dropout, x + rows.index_select(0, position).to(x.dtype))
        mask = (torch.arange(cache.capacity, device=ids.device) <= position).unsqueeze(0)  # (Tq = 1, Tk)
        for layer, layer_cache in zip(self.layers, cache):
            x = layer(x, mask, False, False, layer_cache)
        return self.lm_head(self.norm(x))  # (B, 1, V)

    def new_cache(self) -> LMCache:
        return LMCache(KVCache() for _ in self.layers)

    def num_parameters(self, embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if not embedding and isinstance(self.position, LearnedPositionalEmbedding):
            n -= self.position.embedding.weight.numel()
        return n
