"""A recurrent language model (Mikolov et al., 2010; Zaremba et al., 2014): embedding → RNN, LSTM or
GRU layers → Linear. The Transformer LM's equal in ``seqlab compare lm``, with the same interface:
``forward(ids, cache)`` and ``new_cache()``, the cache being the recurrent state."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..nn import GRU, LSTM, RNN, init_recurrent
from . import generation, pretrained

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class RecurrentState:
    """The hidden (and, for an LSTM, cell) state after the positions fed so far."""

    def __init__(self) -> None:
        self.state = None
        self.offset = 0


@dataclass
class RecurrentLMConfig:
    vocab_size: int
    d_model: int = 256  # embedding and hidden width
    n_layers: int = 2
    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    dropout: float = 0.0
    tie_weights: bool = True

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {self.cell!r}")


@pretrained.register
class RecurrentLM(pretrained.PretrainedModel):
    config_class = RecurrentLMConfig

    def __init__(self, config: RecurrentLMConfig) -> None:
        super().__init__()
        self.config = c = config
        vocab_size, d_model = c.vocab_size, c.d_model
        self.vocab_size, self.max_len = vocab_size, None  # any length: the state carries the past
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.rnn = init_recurrent(CELLS[c.cell](d_model, d_model, c.n_layers, dropout=c.dropout))
        self.dropout = nn.Dropout(c.dropout)
        self.lm_head = nn.Linear(d_model, vocab_size)
        nn.init.normal_(self.embedding.weight, std=0.02)
        if c.tie_weights:
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
