"""A recurrent language model (Mikolov et al., 2010; Zaremba et al., 2014): embedding → RNN, LSTM or
GRU layers → Linear. The Transformer LM's equal in ``seqlab compare lm``, with the same interface:
``forward(ids, cache)`` and ``new_cache()``, the cache being the recurrent state."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from ..nn import GRU, LSTM, RNN, init_recurrent
from . import generation, pretrained

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class RecurrentState:
    """The hidden (and, for an LSTM, cell) state after the positions fed so far."""

    def __init__(self) -> None:
        self.state = None
        self.offset = 0


@pretrained.register
class RecurrentLM(nn.Module):
    def __init__(self, vocab_size: int, d_model: int = 256, n_layers: int = 2, cell: str = "lstm",
                 dropout: float = 0.0, tie_weights: bool = True) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {cell!r}")
        self.config = dict(vocab_size=vocab_size, d_model=d_model, n_layers=n_layers, cell=cell,
                           dropout=dropout, tie_weights=tie_weights)
        self.vocab_size, self.max_len = vocab_size, None  # any length: the state carries the past
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.rnn = init_recurrent(CELLS[cell](d_model, d_model, n_layers, dropout=dropout))
        self.dropout = nn.Dropout(dropout)
        self.lm_head = nn.Linear(d_model, vocab_size)
        nn.init.normal_(self.embedding.weight, std=0.02)
        if tie_weights:
            self.lm_head.weight = self.embedding.weight

    def forward(self, ids: Tensor, cache: RecurrentState | None = None) -> Tensor:
        """ids: (B, T) -> logits (B, T, V); with a cache, continue from its state."""
        x = self.dropout(self.embedding(ids))  # (B, T, D)
        out, state = self.rnn(x, state=cache.state if cache is not None else None)
        if cache is not None:
            cache.state, cache.offset = state, cache.offset + ids.size(1)
        return self.lm_head(self.dropout(out))

    # model.generate(ids, max_new_tokens, temperature, top_k, top_p, eos_id) and model.stream(...)
    generate = generation.generate
    stream = generation.stream

    def new_cache(self) -> RecurrentState:
        return RecurrentState()

    def num_parameters(self, embedding: bool = True) -> int:
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, directory: str | Path) -> None:
        pretrained.save_pretrained(self, directory)
