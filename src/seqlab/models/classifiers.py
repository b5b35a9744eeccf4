"""Text classifiers over token ids (B, T) with padding (id 0): an encoder-only Transformer, a
bidirectional LSTM and a convolutional network (Kim, 2014). Each returns class logits (B, K); each
takes an optional pre-trained embedding matrix (word2vec, GloVe), frozen or fine-tuned. The Transformer's
positions are learned or sinusoidal vectors, rotary embeddings (Su et al., 2021) or relative position
representations (Shaw, Uszkoreit & Vaswani, 2018); run causally, it is a GPT body classifying from its
last token (Radford et al., 2018 §3.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import LSTM, RotaryEmbedding, causal_mask, encoder_layer, relative_positions
from . import pretrained
from .masked_lm import position_module


def masked_mean(x: Tensor, keep: Tensor) -> Tensor:
    """Mean over the positions where keep (B, T) is True: x (B, T, D) -> (B, D). Padding never counts."""
    keep = keep.unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)


def masked_max(x: Tensor, keep: Tensor) -> Tensor:
    """Max over the kept positions: (B, T, D) -> (B, D)."""
    return x.masked_fill(~keep.unsqueeze(-1), float("-inf")).amax(1)


def embedding(vocab_size: int, d_model: int, pad_id: int) -> nn.Embedding:
    layer = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
    nn.init.normal_(layer.weight, std=0.1)
    with torch.no_grad():
        layer.weight[pad_id].zero_()
    return layer


class TextClassifier(pretrained.PretrainedModel):
    """What the three share: the token embedding, loading word vectors into it, save/load."""

    def load_vectors(self, vectors: Tensor, freeze: bool) -> None:
        """Copy (V, D) vectors into the embedding; rows that are all zero (words without a vector)
        keep their random start."""
        weight = self.embedding.weight
        if vectors.shape != weight.shape:
            raise ValueError(f"word vectors are {tuple(vectors.shape)}; the embedding is {tuple(weight.shape)}")
        with torch.no_grad():
            known = vectors.abs().sum(-1) > 0
            weight[known] = vectors[known].to(weight.dtype)
        weight.requires_grad_(not freeze)


POOLS = ("mean", "cls", "first", "last")
POSITIONAL = ("learned", "sinusoidal", "rotary", "relative")


@dataclass
class TransformerClassifierConfig:
    vocab_size: int
    n_classes: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    max_len: int = 256
    # "mean" over real tokens, "cls": a learned vector put in front, its output; "first": the first
    # token's output, the ids beginning with a [CLS] token of the tokenizer's (BERT's fine-tuning, §4);
    # "last": the last real token's output (GPT's fine-tuning, Radford et al., 2018 §3.2), with ``causal``
    pool: str = "mean"
    pad_id: int = 0
    # "learned", "sinusoidal", "rotary" (Su et al., 2021) or "relative" (Shaw et al., 2018): the last two
    # add nothing to the embeddings
    positional: str = "learned"
    max_relative_position: int = 16  # "relative": offsets are clipped to [-k, k], k = this
    norm_first: bool = True  # pre-LN; False: post-LN, the embeddings normalised (BERT's) — MaskedLM's body
    activation: str = "gelu"
    # Position t attends to positions <= t only, as in a decoder-only LM (TransformerLM's body)
    causal: bool = False
    # A LayerNorm on the embeddings; None = post-LN's (not norm_first), as BERT. GPT's post-LN has none.
    embedding_norm: bool | None = None
    # BERT's pooler (Devlin et al., 2019 §4; its code): a Linear and tanh on the pooled state before the head,
    # as in BertForSequenceClassification
    pooler: bool = False
    layer_norm_eps: float = 1e-5  # every LayerNorm's ε: a pre-trained body's (BERT's checkpoints use 1e-12)

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}; got {self.pool!r}")
        if (self.pool == "last") != self.causal:  # a causal state summarises only what came before it
            raise ValueError("pool='last' goes with causal=True, and causal=True with pool='last'")
        if self.positional not in POSITIONAL:
            raise ValueError(f"positional must be one of {', '.join(POSITIONAL)}; got {self.positional!r}")
        if self.max_relative_position < 1:
            raise ValueError(f"max_relative_position must be at least 1; got {self.max_relative_position}")
        if self.embedding_norm is None:
            self.embedding_norm = not self.norm_first


@pretrained.register
class TransformerClassifier(TextClassifier):
    """An encoder (pre-LN by default) over the tokens, pooled by a [CLS] token (``pool="cls"``: one
    learned vector in front, its output classified; ``pool="first"``: the ids' own first token) or by
    the mean over real tokens (``pool="mean"``). ``positional="relative"``: each layer's self-attention
    gets relative position representations instead of positions added to the embeddings (the [CLS]
    token is position 0). ``causal=True``, ``pool="last"``: position t attends to positions <= t and the
    last real token is classified, as GPT fine-tunes (Radford et al., 2018 §3.2). Its body
    (``embedding``, ``position``, ``embedding_norm``, ``layers``, ``norm``) has the parameter names and
    shapes of :class:`~seqlab.models.masked_lm.MaskedLM` and of
    :class:`~seqlab.models.language_model.TransformerLM`, so that a masked LM's encoder or a causal LM's
    decoder loads into it (:meth:`load_body`)."""

    config_class = TransformerClassifierConfig

    def __init__(self, config: TransformerClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        pool, pad_id, d_model, dropout = c.pool, c.pad_id, c.d_model, c.dropout
        self.pool, self.pad_id, self.causal = pool, pad_id, c.causal
        self.embedding = embedding(c.vocab_size, d_model, pad_id)
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        # one more position than max_len for a [CLS] vector put in front ("first" and "last" read the ids' own)
        length = c.max_len + (pool not in ("first", "last"))
        self.position = position_module(c.positional, d_model, length)
        rotary = RotaryEmbedding(d_model // c.n_heads, length) if c.positional == "rotary" else None
        self.embedding_norm = nn.LayerNorm(d_model) if c.embedding_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            encoder_layer(d_model, c.n_heads, c.d_ff, dropout, norm_first=c.norm_first, activation=c.activation,
                          rotary=rotary,
                          relative=relative_positions(c.positional, d_model // c.n_heads, c.max_relative_position))
            for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(d_model) if c.norm_first else nn.Identity()
        self.pooler = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh()) if c.pooler else nn.Identity()
        self.head = nn.Linear(d_model, c.n_classes)
        for module in self.modules():
            if isinstance(module, nn.LayerNorm):
                module.eps = c.layer_norm_eps

    BODY = ("embedding.", "position.", "embedding_norm.", "layers.", "norm.")

    def body_parameters(self) -> list[nn.Parameter]:
        """The encoder's parameters (what a masked LM pre-trains): all but the head and the [CLS] vector."""
        return [p for name, p in self.named_parameters() if name.startswith(self.BODY)]

    def load_body(self, state: dict[str, Tensor]) -> None:
        """Copy a pre-trained body (a masked LM's or a causal LM's state dict; the LM head's entries are
        left out) into the body; a missing or misshapen tensor is a ValueError."""
        body = {name: tensor for name, tensor in state.items() if name.startswith(self.BODY)}
        missing, _ = self.load_state_dict(body, strict=False)
        if left := [name for name in missing if name.startswith(self.BODY)]:
            raise ValueError(f"the pre-trained encoder lacks {', '.join(left)}")

    def freeze(self, n_layers: int) -> None:
        """Stop training the embeddings (token and position) and the first ``n_layers`` layers."""
        if n_layers > len(self.layers):
            raise ValueError(f"cannot freeze {n_layers} layers of {len(self.layers)}")
        frozen = [self.embedding, self.position, self.embedding_norm, *self.layers[:n_layers]] if n_layers else []
        for module in frozen:
            module.requires_grad_(False)

    def forward(self, ids: Tensor, need_weights: bool = False):
        """ids (B, T), right-padded -> logits (B, K); with ``need_weights``, (logits, per layer the
        (B, H, T', T') self-attention weights), T' = T + 1 with the [CLS] token in front."""
        keep = ids != self.pad_id  # (B, T)
        x = self.embedding(ids)
        if self.pool == "cls":
            x = torch.cat([self.cls.expand(ids.size(0), -1, -1), x], dim=1)
            keep = torch.cat([keep.new_ones(ids.size(0), 1), keep], dim=1)
        x = self.dropout(self.embedding_norm(self.position(x)))  # (B, T', D)
        # Padding is never attended to; causally, the right padding comes after every real token, so
        # the causal mask alone keeps it out of their states (and the LM's own fast path applies).
        mask, is_causal = keep.unsqueeze(1), False  # (B, 1, T)
        if self.causal:
            mask, is_causal = (causal_mask(x.size(1), ids.device), False) if need_weights else (None, True)
        maps = []
        for layer in self.layers:
            if need_weights:
                x, weights = layer(x, mask, need_weights=True)
                maps.append(weights)
            else:
                x = layer(x, mask, is_causal=is_causal)
        x = self.norm(x)
        if self.pool == "mean":
            pooled = masked_mean(x, keep)
        elif self.pool == "last":  # the last real token's state, which has read the whole text
            positions = torch.arange(ids.size(1), device=ids.device)
            last = torch.where(keep, positions, 0).amax(1)  # (B,)
            pooled = x[torch.arange(ids.size(0), device=ids.device), last]
        else:
            pooled = x[:, 0]
        logits = self.head(self.dropout(self.pooler(pooled)))
        return (logits, maps) if need_weights else logits


@dataclass
class LSTMClassifierConfig:
    vocab_size: int
    n_classes: int
    d_model: int = 128  # embedding width
    hidden_size: int = 128  # each direction's
    n_layers: int = 1
    dropout: float = 0.5
    pad_id: int = 0


@pretrained.register
class LSTMClassifier(TextClassifier):
    """A bidirectional LSTM over the real tokens (packed, so padding never enters the state), max-pooled
    over time."""

    config_class = LSTMClassifierConfig

    def __init__(self, config: LSTMClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        pad_id, d_model, hidden_size, n_layers, dropout = c.pad_id, c.d_model, c.hidden_size, c.n_layers, c.dropout
        self.pad_id = pad_id
        self.embedding = embedding(c.vocab_size, d_model, pad_id)
        self.lstm = LSTM(d_model, hidden_size, n_layers, bidirectional=True, dropout=dropout if n_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, c.n_classes)

    def forward(self, ids: Tensor) -> Tensor:
        keep = ids != self.pad_id
        lengths = keep.sum(1).clamp(min=1)
        out, _ = self.lstm(self.dropout(self.embedding(ids)), lengths)  # (B, T, 2·hidden)
        keep = keep | (torch.arange(ids.size(1), device=ids.device) == 0)  # an empty row keeps position 0
        return self.head(self.dropout(masked_max(out, keep)))


@dataclass
class ConvClassifierConfig:
    vocab_size: int
    n_classes: int
    d_model: int = 128  # embedding width
    widths: tuple[int, ...] = (3, 4, 5)  # the filters' widths, n_filters of each
    n_filters: int = 100
    dropout: float = 0.5
    pad_id: int = 0

    def __post_init__(self) -> None:
        self.widths = tuple(self.widths)  # config.json holds a list


@pretrained.register
class ConvClassifier(TextClassifier):
    """Kim (2014): filters of several widths over the word vectors, ReLU, max over time, dropout 0.5."""

    config_class = ConvClassifierConfig

    def __init__(self, config: ConvClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        pad_id, d_model, widths, n_filters = c.pad_id, c.d_model, c.widths, c.n_filters
        self.pad_id, self.max_width = pad_id, max(widths)
        self.embedding = embedding(c.vocab_size, d_model, pad_id)
        self.convs = nn.ModuleList(nn.Conv1d(d_model, n_filters, w) for w in widths)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(n_filters * len(widths), c.n_classes)

    def forward(self, ids: Tensor) -> Tensor:
        if ids.size(1) < self.max_width:  # every filter needs at least its width
            ids = F.pad(ids, (0, self.max_width - ids.size(1)), value=self.pad_id)
        lengths = (ids != self.pad_id).sum(1, keepdim=True)  # (B, 1)
        x = self.embedding(ids).transpose(1, 2)  # (B, D, T)
        features = []
        for conv in self.convs:
            h = F.relu(conv(x))  # (B, n_filters, T - width + 1)
            # Max over the windows inside the text (the first one if the text is shorter than the
            # filter), so that padding after a text never changes its prediction.
            last = (lengths - conv.kernel_size[0]).clamp(min=0)
            inside = torch.arange(h.size(-1), device=ids.device) <= last  # (B, T - width + 1)
            features.append(h.masked_fill(~inside.unsqueeze(1), float("-inf")).amax(dim=-1))
        return self.head(self.dropout(torch.cat(features, dim=-1)))
