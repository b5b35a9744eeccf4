"""Pre-train, then fine-tune: a text classifier whose Transformer starts from a pre-trained run's body —
token embedding, positions, every layer, the final norm — and reads its tokenizer, with a new head.

    seqlab train mlm --text unlabelled.txt --out runs/mlm
    seqlab train classify --csv labelled.csv --init runs/mlm
    seqlab train lm --text unlabelled.txt --out runs/lm
    seqlab train classify --csv labelled.csv --init runs/lm

Two kinds of run, one entry each in :data:`SOURCES`, dispatched on the run's task:

- a masked-LM run (BERT, Devlin et al., 2019 §4): its WordPiece tokenizer wraps each text as
  [CLS] text [SEP], the encoder reads the whole text, and the [CLS] token's final state is classified;
- a causal LM run (GPT, Radford et al., 2018 §3.2), a Transformer's: the body runs causally, as the LM
  was trained, over the text in the LM's own tokenizer (char or byte-level BPE) with no special token
  added (GPT appends a new "extract" token; here the text's own last token stands in for it, so no
  untrained embedding enters), and the last real token's final state — the only one that has read the
  whole text — is classified.

The body's settings (width, heads, layers, feed-forward size, norm placement, activation, positions,
the longest input) are the pre-trained run's: they replace the classify defaults, and one set to
another value is a UserError. The body trains at ``train.body_lr_scale`` times the head's rate;
``train.freeze_layers`` keeps the embeddings and the first layers as pre-trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tokenizers import Tokenizer

from ..data.tokenizer import PAD_ID, load_tokenizer, with_cls_sep
from ..errors import UserError
from ..models import MaskedLM, TransformerLM
from . import run_dir as runs
from .classify_config import ClassifyConfig
from .init_run import BODY_SETTINGS, read_pretraining_run, with_body


@dataclass(frozen=True)
class Source:
    """A kind of pre-training run the classifier starts from: how its run is read and how the
    classifier reads a text as the body was trained to."""

    what: str  # the run, in words
    command: str  # what trains one
    body: str  # its pre-trained part, in words
    reads: str  # how the classifier reads a text with it, for the log and the errors
    tokenizer: Callable[[Tokenizer], Tokenizer]  # the run's tokenizer -> the classifier's
    classifier: dict[str, Any]  # TransformerClassifierConfig settings beyond the body's
    check: Callable[[Path, dict[str, Any]], None] | None = None  # the run's run.json -> a UserError if no body


def _transformer_lm(run: Path, info: dict[str, Any]) -> None:
    arch = info["config"].get("model", {}).get("arch", "transformer")
    if arch != "transformer":
        raise UserError(f"--init {run} is a {arch} language model; the classifier starts from a Transformer's "
                        f"layers (seqlab train lm with model.arch=transformer)")
    if runs.read_json(run / "checkpoints" / "best" / "config.json").get("embedding_scale"):
        raise UserError(f"--init {run} scales its embeddings by √d_model (sinusoidal positions); the classifier "
                        f"starts from LMs with learned, rotary or relative positions")


# What id 0, which the classifier pads its batches with, may be in the body's tokenizer: seqlab's
# padding tokens, or GPT-2's end of text (a common stand-in for padding) where an import put it first.
PADDING_TOKENS = ("<pad>", "[PAD]", "<|endoftext|>")

SOURCES: dict[str, Source] = {
    "mlm": Source("a masked-language-model run", "seqlab train mlm", "encoder", "WordPiece, [CLS] text [SEP]",
                  with_cls_sep, {"pool": "first"}),
    # GPT's body has no LayerNorm on the embeddings, pre-LN or post-LN (TransformerLM's neither)
    "lm": Source("a language-model run", "seqlab train lm", "decoder", "causally, no special tokens",
                 lambda tokenizer: tokenizer, {"pool": "last", "causal": True, "embedding_norm": False},
                 _transformer_lm),
}


@dataclass
class Pretrained:
    """A pre-trained run, as the classifier starts from it."""

    run: Path
    source: Source
    model: MaskedLM | TransformerLM
    tokenizer: Tokenizer  # the run's, wrapping each text as the body reads it

    @property
    def max_len(self) -> int:
        """The longest input the body reads, special tokens included."""
        return self.model.config.max_len


def load_pretrained(path: str | Path) -> Pretrained:
    """The run at ``path``; a missing directory, a run of a task :data:`SOURCES` lacks, one whose model
    cannot be a Transformer's body or an untrained one is a UserError."""
    run, info = read_pretraining_run(path, {task: f"{s.what} ({s.command})" for task, s in SOURCES.items()}, "body")
    source = SOURCES[info["task"]]
    if source.check:
        source.check(run, info)
    _, model = runs.load_trained(run, info["task"], source.what)
    tokenizer = load_tokenizer(run / "tokenizer.json", model.config.vocab_size)
    if (first := tokenizer.id_to_token(PAD_ID)) not in PADDING_TOKENS:  # e.g. an imported GPT-2's "!"
        raise UserError(f"--init {run}: its tokenizer has {first!r} at id {PAD_ID}, where the classifier pads "
                        f"its batches; it needs a padding token there ({', '.join(PADDING_TOKENS)})")
    return Pretrained(run, source, model, source.tokenizer(tokenizer))


def with_init(config: ClassifyConfig, pretrained: Pretrained) -> ClassifyConfig:
    """``config`` with the body's settings in ``model`` and its longest input in ``data.max_len``
    (:func:`~seqlab.tasks.init_run.with_body`'s UserErrors), and no more layers frozen than it has."""
    body = pretrained.model.config
    if config.train.freeze_layers > body.n_layers:
        raise UserError(f"train.freeze_layers={config.train.freeze_layers}, but --init {pretrained.run} has "
                        f"{body.n_layers} layers")
    return with_body(config, body, pretrained.run, pretrained.source.body, pretrained.source.reads)


def describe(config: ClassifyConfig, pretrained: Pretrained) -> str:
    """The log line of a run started from a pre-trained body."""
    c, t, source = config.model, config.train, pretrained.source
    settings = ", ".join(f"{name}={getattr(c, name)}" for name in BODY_SETTINGS)
    frozen = f"; embeddings and first {t.freeze_layers} layer(s) frozen" if t.freeze_layers else ""
    pooled = "the last token's state" if source.classifier["pool"] == "last" else "the [CLS] state"
    return (f"init: the {source.body} and tokenizer of {c.init} ({settings}, data.max_len={config.data.max_len}: "
            f"these replace the classify model settings), read {source.reads}; {pooled} pooled by a new head; "
            f"body learning rate × {t.body_lr_scale:g}{frozen}")
