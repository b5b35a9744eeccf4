"""An encoder-only Transformer trained as a masked language model (BERT, Devlin et al., 2019), composed
from :mod:`seqlab.nn` blocks: the encoder of Figure 1 with no mask but padding — every position reads
the whole sequence, to its left and to its right.

    ids ─ Embedding (+ learned / sinusoidal position) ─ N × [self-attention, FFN]
        ─ MLM head: Linear, GELU, LayerNorm ─ Linear (tied to the embedding, + bias) ─ logits

``positional="relative"`` adds nothing to the embeddings and gives each layer's self-attention relative
position representations instead (Shaw, Uszkoreit & Vaswani, 2018: clipped offsets, per layer).

BERT's choices by default (learned positions, GELU, the output layer tied to the embedding, the head's
transform of its pre-training code); pre-LN rather than BERT's post-LN unless ``norm_first=False``, as
it trains small models without tuning the warmup (Xiong et al., 2020). BERT's segment embeddings are
left out: the pre-training here reads single segments.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..nn import LearnedPositionalEmbedding, SinusoidalPositionalEncoding, encoder_layer, relative_positions
from ..nn.attention import is_exporting
from . import pretrained
from .language_model import check_positional

POSITIONAL = ("learned", "sinusoidal", "relative")


@dataclass
class MaskedLMConfig:
    """The encoder's sizes; the defaults are a small BERT."""

    vocab_size: int
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None  # None = 4 · d_model
    max_len: int = 130  # the longest input, [CLS] and [SEP] included: the learned position table's size
    dropout: float = 0.1
    attention_dropout: float | None = None  # None = dropout
    ff_dropout: float | None = None  # None = dropout
    norm_first: bool = True
    activation: str = "gelu"
    positional: str = "learned"  # "learned" (BERT's), "sinusoidal" (Vaswani et al. §3.5) or "relative"
    max_relative_position: int = 16  # "relative": offsets are clipped to [-k, k], k = this
    pad_id: int = 0
    layer_norm_eps: float = 1e-5  # every LayerNorm's ε (torch's default; BERT's checkpoints use 1e-12)

    def __post_init__(self) -> None:
        check_positional(self.positional, POSITIONAL, self.max_relative_position)
        self.d_ff = self.d_ff or 4 * self.d_model


def position_module(positional: str, d_model: int, max_len: int) -> nn.Module:
    """What adds position to the token embeddings (B, T, D) -> (B, T, D): nothing for "relative" and
    "rotary", whose positions enter each layer's attention instead."""
    return {
        "learned": lambda: LearnedPositionalEmbedding(max_len, d_model),
        "sinusoidal": lambda: SinusoidalPositionalEncoding(d_model, max_len),
        "rotary": nn.Identity,
        "relative": nn.Identity,
    }[positional]()


@pretrained.register
class MaskedLM(pretrained.PretrainedModel):
    config_class = MaskedLMConfig

    def __init__(self, config: MaskedLMConfig) -> None:
        super().__init__()
        self.config = c = config
        self.vocab_size, self.max_len, self.pad_id = c.vocab_size, c.max_len, c.pad_id
        self.embedding = nn.Embedding(c.vocab_size, c.d_model)
        self.position = position_module(c.positional, c.d_model, c.max_len)
        # Post-LN normalises the embeddings before the first layer (BERT); pre-LN normalises at the end.
        self.embedding_norm = nn.Identity() if c.norm_first else nn.LayerNorm(c.d_model)
        self.dropout = nn.Dropout(c.dropout)

        self.layers = nn.ModuleList(
            encoder_layer(c.d_model, c.n_heads, c.d_ff, c.dropout, c.norm_first, c.activation, c.attention_dropout,
                          c.ff_dropout,
                          relative=relative_positions(c.positional, c.d_model // c.n_heads, c.max_relative_position))
            for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.head_transform = nn.Sequential(nn.Linear(c.d_model, c.d_model), nn.GELU(), nn.LayerNorm(c.d_model))
        self.lm_head = nn.Linear(c.d_model, c.vocab_size)
        for module in self.modules():  # BERT's initialisation: N(0, 0.02), biases zero
            if isinstance(module, nn.LayerNorm):
                module.eps = c.layer_norm_eps
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        self.lm_head.weight = self.embedding.weight  # the output layer is the embedding (Press & Wolf, 2017)

    def encode(self, ids: Tensor, need_weights: bool = False):
        """ids: (B, T), [PAD] where a row is shorter -> hidden states (B, T, D); with ``need_weights``
        (hidden, per layer the (B, H, T, T) self-attention weights). Padding is never attended to."""
        if ids.size(1) > self.max_len:
            raise ValueError(f"sequence of length {ids.size(1)} is longer than max_len={self.max_len}")
        padded = is_exporting() or bool((ids == self.pad_id).any())  # a graph cannot branch on data
        mask = (ids != self.pad_id).unsqueeze(1) if padded else None  # (B, 1, T)
        x = self.dropout(self.embedding_norm(self.position(self.embedding(ids))))  # (B, T, D)
        maps = []
        for layer in self.layers:
            x = layer(x, mask, need_weights)
            if need_weights:
                x, weights = x
                maps.append(weights)
        x = self.norm(x)
        return (x, maps) if need_weights else x

    def forward(self, ids: Tensor, need_weights: bool = False, chosen: Tensor | None = None):
        """ids: (B, T) -> logits (B, T, V) over the vocabulary at every position; with ``chosen``, a (B, T)
        boolean mask, only the chosen positions go through the head -> (N, V) in row-major order (training
        reads no other: the head's V-wide output layer then costs N/(B·T) of the full one, ~15 % under
        BERT's masking). With ``need_weights``: (logits, attention maps) as :meth:`encode`."""
        out = self.encode(ids, need_weights)
        hidden, maps = out if need_weights else (out, None)
        if chosen is not None:
            hidden = hidden[chosen]  # (N, D)
        logits = self.lm_head(self.head_transform(hidden))  # (B, T, V), or (N, V)
        return (logits, maps) if need_weights else logits
