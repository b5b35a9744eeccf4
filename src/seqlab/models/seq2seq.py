"""RNN encoder-decoders: the lineage attention grew out of (Sutskever et al. 2014; Cho et al.
2014; Bahdanau et al. 2015; Luong et al. 2015).

- ``simple``:    the encoder's final state starts the decoder, and is all it knows of the source
                 (Sutskever et al., 2014).
- ``context``:   that summary, as a fixed context vector c, is also fed to every decoder step and to
                 the output layer (Cho et al., 2014).
- ``attention``: a fresh context c_t = Σ_s α_ts h_s over all encoder states at every step (Bahdanau
                 et al., 2015); scores ``additive`` (Bahdanau), ``dot`` or ``general`` (Luong et al.,
                 2015); ``window=D`` makes it local: only source positions within D of a predicted
                 centre p_t, weighted by a Gaussian around it (Luong's local-p).

Same decoding interface as :class:`~seqlab.models.Transformer` (``encode`` / ``decode`` / ``new_cache``),
so greedy and beam search work unchanged. The query of every score is the decoder's previous top-layer
state h_{t-1}, as in Bahdanau's formulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..nn import GRU, LSTM, GRUCell, LSTMCell, init_recurrent, padding_mask
from . import pretrained

KINDS = ("simple", "context", "attention")
SCORES = ("additive", "dot", "general")


class Alignment(nn.Module):
    """α_t = softmax(score(h_{t-1}, h_s)) over the source, masked over padding; c_t = Σ_s α_ts h_s."""

    def __init__(self, query_size: int, key_size: int, score: str = "additive", window: int | None = None) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"attention score must be one of {', '.join(SCORES)}; got {score!r}")
        if score == "dot" and query_size != key_size:
            raise ValueError(f"dot scores need equal sizes: decoder state {query_size} vs encoder output {key_size}; "
                             f"use score='general' or 'additive'")
        if window is not None and window < 1:
            raise ValueError(f"local attention needs a window of at least 1; got {window}")
        self.score, self.window = score, window
        if score == "additive":  # vᵀ tanh(W_q q + W_k k)
            self.w_query = nn.Linear(query_size, key_size, bias=False)
            self.w_key = nn.Linear(key_size, key_size)
            self.v = nn.Linear(key_size, 1, bias=False)
        elif score == "general":  # qᵀ W k
            self.w_key = nn.Linear(key_size, query_size, bias=False)
        if window is not None:  # p_t = S · σ(v_pᵀ tanh(W_p q))
            self.position = nn.Sequential(nn.Linear(query_size, query_size), nn.Tanh(), nn.Linear(query_size, 1))

    def project_keys(self, keys: Tensor) -> Tensor:
        """The part of the score that depends on the source alone, computed once per sentence."""
        return self.w_key(keys) if self.score in ("additive", "general") else keys

    def forward(self, query: Tensor, keys: Tensor, projected: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, Q), keys (B, S, K), projected (B, S, ·), mask (B, S) True = real token
        -> context (B, K), weights (B, S)."""
        if self.score == "additive":
            scores = self.v(torch.tanh(self.w_query(query).unsqueeze(1) + projected)).squeeze(-1)
        else:
            scores = (projected @ query.unsqueeze(-1)).squeeze(-1)  # (B, S)
        allowed = mask
        if self.window is not None:
            lengths = mask.sum(-1, keepdim=True).to(query.dtype)  # (B, 1)
            centre = (lengths - 1) * torch.sigmoid(self.position(query))  # (B, 1)
            positions = torch.arange(mask.size(-1), device=query.device, dtype=query.dtype)
            distance = positions.unsqueeze(0) - centre
            allowed = mask & (distance.abs() <= self.window)
            allowed = allowed | (~allowed.any(-1, keepdim=True) & mask)  # never an empty window
        weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
        if self.window is not None:
            sigma = self.window / 2
            weights = weights * torch.exp(-(distance**2) / (2 * sigma**2))
        return (weights.unsqueeze(1) @ keys).squeeze(1), weights


class RecurrentCache:
    """The decoder's state between steps: hidden (and cell) state of every layer."""

    def __init__(self) -> None:
        self.h: list[Tensor] | None = None
        self.c: list[Tensor] | None = None

    def reorder(self, index: Tensor) -> None:
        if self.h is not None:
            self.h = [h.index_select(0, index) for h in self.h]
            self.c = [c.index_select(0, index) for c in self.c] if self.c is not None else None


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    kind: str = "attention"  # "simple", "context" or "attention"
    cell: str = "lstm"  # "lstm" or "gru"
    embed_dim: int = 256
    hidden_size: int = 512
    num_layers: int = 1
    bidirectional: bool = True  # the encoder's
    dropout: float = 0.1
    score: str = "additive"  # attention: "additive", "dot" or "general"
    window: int | None = None  # attention: local, within this distance of p_t; None = global
    pad_id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"seq2seq kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru'; got {self.cell!r}")
        if self.window is not None and self.kind != "attention":
            raise ValueError("a local attention window needs kind='attention'")


@pretrained.register
class Seq2Seq(pretrained.PretrainedModel):
    config_class = Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        kind, cell, pad_id, num_layers, embed_dim, hidden_size = (c.kind, c.cell, c.pad_id, c.num_layers,
                                                                  c.embed_dim, c.hidden_size)
        self.kind, self.cell, self.pad_id, self.num_layers = kind, cell, pad_id, num_layers
        directions = 2 if c.bidirectional else 1
        encoder_size = hidden_size * directions
        self.src_embed = nn.Embedding(c.src_vocab_size, embed_dim, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, embed_dim, padding_idx=pad_id)
        self.encoder = init_recurrent((LSTM if cell == "lstm" else GRU)(
            embed_dim, hidden_size, num_layers, c.bidirectional, c.dropout if num_layers > 1 else 0.0))
        # The encoder's final state (both directions) -> the decoder's initial state, layer by layer.
        self.bridge = nn.Linear(encoder_size, hidden_size)
        self.bridge_cell = nn.Linear(encoder_size, hidden_size) if cell == "lstm" else None
        context_size = 0 if kind == "simple" else (encoder_size if kind == "attention" else hidden_size)
        cell_class = LSTMCell if cell == "lstm" else GRUCell
        self.decoder = nn.ModuleList(
            init_recurrent(cell_class(embed_dim + context_size if layer == 0 else hidden_size, hidden_size))
            for layer in range(num_layers))
        self.alignment = Alignment(hidden_size, encoder_size, c.score, c.window) if kind == "attention" else None
        self.output = nn.Linear(hidden_size + context_size + (embed_dim if context_size else 0), c.tgt_vocab_size)
        self.dropout = nn.Dropout(c.dropout)

    # --- encoder ----------------------------------------------------------------------------

    def encode(self, src: Tensor):
        """src (B, S) -> memory (outputs (B, S, dirs·H), projected keys, h0 (B, L, H), c0 (B, L, H))
        and the source padding mask (B, 1, S)."""
        mask = padding_mask(src, self.pad_id)
        lengths = mask.sum(-1).squeeze(1).clamp(min=1)
        outputs, state = self.encoder(self.dropout(self.src_embed(src)), lengths)
        h_n, c_n = state if self.cell == "lstm" else (state, state)

        def per_layer(final: Tensor) -> Tensor:  # (L·dirs, B, H) -> (B, L, dirs·H)
            L = self.num_layers
            return final.view(L, -1, final.size(1), final.size(2)).permute(2, 0, 1, 3).flatten(2)

        h0 = torch.tanh(self.bridge(per_layer(h_n)))
        c0 = self.bridge_cell(per_layer(c_n)) if self.bridge_cell is not None else torch.zeros_like(h0)
        keys = self.alignment.project_keys(outputs) if self.alignment is not None else outputs
        return (outputs, keys, h0, c0), mask

    # --- decoder ----------------------------------------------------------------------------

    def new_cache(self) -> RecurrentCache:
        return RecurrentCache()

    def decode(self, tgt: Tensor, memory, memory_mask: Tensor, cache: RecurrentCache | None = None,
               need_weights: bool = False, teacher_forcing: float = 1.0):
        """tgt (B, T) decoder input, starting with <bos> -> logits (B, T, V). With a cache, tgt holds
        only new positions. ``teacher_forcing`` < 1 feeds the model's own previous prediction instead
        of the reference with probability 1 − ratio (scheduled sampling, Bengio et al., 2015).
        With ``need_weights``: (logits, {"cross": [α (B, 1, T, S)]}), the alignment as one layer of
        one head; {} for the kinds without attention."""
        outputs, keys, h0, c0 = memory
        mask = memory_mask.squeeze(1)  # (B, S)
        if cache is not None and cache.h is not None:
            h, c = list(cache.h), list(cache.c) if cache.c is not None else None
        else:
            h = [h0[:, layer] for layer in range(self.num_layers)]
            c = [c0[:, layer] for layer in range(self.num_layers)] if self.cell == "lstm" else None
        fixed_context = h0[:, -1] if self.kind == "context" else None
        logits, attention = [], []
        token = tgt[:, 0]
        for t in range(tgt.size(1)):
            if t > 0:
                token = tgt[:, t]
                if teacher_forcing < 1.0:
                    own = logits[-1].argmax(-1)
                    use_own = torch.rand(token.shape, device=token.device) >= teacher_forcing
                    token = torch.where(use_own, own, token)
            embedded = self.dropout(self.tgt_embed(token))  # (B, E)
            if self.kind == "attention":
                context, weights = self.alignment(h[-1], outputs, keys, mask)
                attention.append(weights)
            else:
                context = fixed_context
            x = embedded if context is None else torch.cat([embedded, context], -1)
            for layer, cell in enumerate(self.decoder):
                if self.cell == "lstm":
                    h[layer], c[layer] = cell(x, (h[layer], c[layer]))
                else:
                    h[layer] = cell(x, h[layer])
                x = self.dropout(h[layer])
            features = x if context is None else torch.cat([x, context, embedded], -1)
            logits.append(self.output(features))
        if cache is not None:
            cache.h, cache.c = h, c
        logits = torch.stack(logits, 1)
        if need_weights:
            return logits, ({"cross": [torch.stack(attention, 1).unsqueeze(1)]} if attention else {})
        return logits

    def forward(self, src: Tensor, tgt: Tensor, teacher_forcing: float = 1.0, need_weights: bool = False):
        """Training: src (B, S), tgt (B, T) shifted right -> logits (B, T, V); with ``need_weights``,
        (logits, attention) as :meth:`decode` returns them."""
        memory, memory_mask = self.encode(src)
        return self.decode(tgt, memory, memory_mask, teacher_forcing=teacher_forcing, need_weights=need_weights)


def teacher_forcing_ratio(step: int, schedule: str = "constant", start: float = 1.0, end: float = 0.5,
                          steps: int = 10_000) -> float:
    """Scheduled sampling's ratio at ``step``: ``constant`` (start), ``linear`` (start -> end over
    ``steps``) or ``inverse_sigmoid`` (Bengio et al., 2015: k / (k + exp(step / k)), k = steps / 10)."""
    if schedule == "constant":
        return start
    if schedule == "linear":
        return start + (end - start) * min(step / max(steps, 1), 1.0)
    if schedule == "inverse_sigmoid":
        k = max(steps / 10, 1.0)
        return max(end, start * k / (k + float(torch.tensor(step / k).exp())))
    raise ValueError(f"teacher forcing schedule must be constant, linear or inverse_sigmoid; got {schedule!r}")


