"""Which encoder-decoder a translation run trains: ``model.arch`` and its settings.

    transformer                      the paper's model ([model] keys)
    simple, context, attention       RNN encoder-decoders ([model.rnn] keys)
    conv                             convolutional seq2seq ([model.conv] keys)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

from torch import nn

from ..config import check_model, option
from ..data.tokenizer import PAD_ID
from ..models import ConvSeq2Seq, ConvSeq2SeqConfig, Seq2Seq, Seq2SeqConfig, Transformer, TransformerConfig
from ..models.seq2seq import teacher_forcing_ratio

ARCHITECTURES = ("transformer", "simple", "context", "attention", "conv")


@dataclass
class RNNConfig:
    cell: Literal["lstm", "gru"] = "lstm"
    embed_dim: int = 256
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = True
    score: Literal["additive", "dot", "general"] = "additive"
    window: int | None = None  # local attention's half-width; none = global
    teacher_forcing: float = 1.0  # ratio at the start of training ...
    teacher_forcing_end: float = 1.0  # ... and at train.max_steps (scheduled sampling when lower)
    teacher_forcing_schedule: Literal["constant", "linear", "inverse_sigmoid"] = "constant"


@dataclass
class ConvConfig:
    embed_dim: int = 256
    hidden_size: int = 256
    n_layers: int = 4
    kernel_size: int = 3


@dataclass
class ModelConfig:
    arch: Literal["simple", "context", "attention", "conv", "transformer"] = "transformer"  # in their history's order
    # Small enough to train in minutes on a laptop's CPU; the paper's base model is --config multi30k-de-en's size
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    n_decoder_layers: int | None = None  # default: n_layers
    d_ff: int = 512
    dropout: float = 0.1  # residual dropout (§5.4), also on embeddings + positions; every arch uses it
    attention_dropout: float = 0.0  # on attention weights; costly on CPU, off by default
    ff_dropout: float = 0.0  # inside the feed-forward network; likewise
    norm_first: bool = True
    positional: Literal["sinusoidal", "learned", "relative"] = "sinusoidal"  # relative: Shaw et al. (2018)
    max_relative_position: int = 16  # positional="relative": offsets clipped to [-k, k], k = this
    activation: Literal["relu", "gelu", "silu"] = "relu"
    tie_output: bool = True
    # A masked-LM run (seqlab train mlm) whose encoder and WordPiece tokenizer the Transformer's encoder and
    # source side start from (seqlab.tasks.translate_init): its model settings replace the ones above
    init: str = option("", "start the Transformer's encoder from this seqlab train mlm run's encoder, and read the "
                           "source with its WordPiece tokenizer", path=True, flag="init")
    rnn: RNNConfig = field(default_factory=RNNConfig)
    conv: ConvConfig = field(default_factory=ConvConfig)

    def sizes(self) -> dict[str, int]:
        """The size settings ``arch`` builds its model from -> the least each may be."""
        if self.arch == "transformer":
            return {"n_layers": 1, "d_ff": 1, **({"n_decoder_layers": 1} if self.n_decoder_layers is not None else {})}
        if self.arch == "conv":
            return {"conv.embed_dim": 1, "conv.hidden_size": 1, "conv.n_layers": 1, "conv.kernel_size": 2}
        return {"rnn.embed_dim": 1, "rnn.hidden_size": 1, "rnn.num_layers": 1}

    def __post_init__(self) -> None:
        check_model(self, self.n_heads, rates=("dropout", "attention_dropout", "ff_dropout"))
        for name, least in self.sizes().items():
            if (value := attrgetter(name)(self)) < least:
                raise ValueError(f"model.{name} must be at least {least}; got {value}")
        if self.init and self.arch != "transformer":
            raise ValueError(f"model.init (--init) starts a Transformer's encoder from a masked LM's; "
                             f"model.arch={self.arch} cannot take one")
        if self.rnn.window is not None and self.rnn.window < 0:
            raise ValueError(f"model.rnn.window (local attention's half-width) must be at least 0; got {self.rnn.window}")
        if self.rnn.window is not None and self.arch != "attention":
            raise ValueError("model.rnn.window (local attention) needs model.arch='attention'")
        if self.rnn.score == "dot" and self.rnn.bidirectional and self.arch == "attention":
            raise ValueError("model.rnn.score='dot' needs equal encoder and decoder sizes: "
                             "set model.rnn.bidirectional=false or use 'general'/'additive'")


def build_model(config, src_vocab: int, tgt_vocab: int) -> nn.Module:
    m, max_len = config.model, config.data.max_len
    if m.arch == "transformer":
        return Transformer(TransformerConfig(
            src_vocab, tgt_vocab, d_model=m.d_model, n_heads=m.n_heads, n_layers=m.n_layers,
            n_decoder_layers=m.n_decoder_layers, d_ff=m.d_ff, dropout=m.dropout, max_len=max_len,
            norm_first=m.norm_first, positional=m.positional, activation=m.activation, tie_output=m.tie_output,
            pad_id=PAD_ID, attention_dropout=m.attention_dropout, ff_dropout=m.ff_dropout,
            max_relative_position=m.max_relative_position,
            # started from a masked LM's encoder: its source side read as the MLM read its input
            src_embedding_scale=not m.init, src_embedding_norm=bool(m.init) and not m.norm_first))
    if m.arch == "conv":
        c = m.conv
        return ConvSeq2Seq(ConvSeq2SeqConfig(
            src_vocab, tgt_vocab, embed_dim=c.embed_dim, hidden_size=c.hidden_size, n_layers=c.n_layers,
            kernel_size=c.kernel_size, dropout=m.dropout, max_len=max_len, pad_id=PAD_ID))
    r = m.rnn
    return Seq2Seq(Seq2SeqConfig(
        src_vocab, tgt_vocab, kind=m.arch, cell=r.cell, embed_dim=r.embed_dim, hidden_size=r.hidden_size,
        num_layers=r.num_layers, bidirectional=r.bidirectional, dropout=m.dropout, score=r.score, window=r.window,
        pad_id=PAD_ID))


def teacher_forcing_at(model: ModelConfig, step: int, total_steps: int | None = None) -> dict[str, Any]:
    """Forward options for a training step: RNN decoders get scheduled sampling's current ratio."""
    r = model.rnn
    if model.arch not in ("simple", "context", "attention") or (r.teacher_forcing == 1.0 and r.teacher_forcing_end == 1.0):
        return {}
    return {"teacher_forcing": teacher_forcing_ratio(step, r.teacher_forcing_schedule, r.teacher_forcing,
                                                     r.teacher_forcing_end, total_steps or 10_000)}
