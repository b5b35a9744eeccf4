"""Pre-train, then fine-tune (BERT, Devlin et al., 2019 §4): a text classifier whose Transformer starts
from a masked-LM run's encoder — token embedding, positions, every layer, the final norm — and reads
its WordPiece tokenizer, each text as [CLS] text [SEP], classifying the [CLS] token's final state
with a new head.

    seqlab train mlm --text unlabelled.txt --out runs/mlm
    seqlab train classify --csv labelled.csv --init runs/mlm

The encoder's settings (width, heads, layers, feed-forward size, norm placement, activation,
positions, the longest input) are the masked LM's: they replace the classify defaults, and one set
to another value is a UserError. The body trains at ``train.body_lr_scale`` times the head's rate;
``train.freeze_layers`` keeps the embeddings and the first layers as pre-trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from ..data.tokenizer import load_tokenizer, with_cls_sep
from ..errors import UserError
from ..models import MaskedLM
from . import run_dir as runs
from .classify_config import ClassifyConfig, ClassifyDataConfig, ClassifyModelConfig

PRETRAINING_TASK = "mlm"
# The encoder's settings, named alike in ClassifyModelConfig and MaskedLMConfig.
BODY_SETTINGS = ("d_model", "n_heads", "n_layers", "d_ff", "norm_first", "activation", "positional",
                 "max_relative_position")


@dataclass
class Pretrained:
    """A masked-LM run, as the classifier starts from it."""

    run: Path
    model: MaskedLM
    tokenizer: Tokenizer  # the run's, wrapping each text as [CLS] text [SEP]

    @property
    def max_len(self) -> int:
        """The longest input the encoder reads, [CLS] and [SEP] included."""
        return self.model.config.max_len


def load_pretrained(path: str | Path) -> Pretrained:
    """The run at ``path``; a missing directory, a run of another task or an untrained one is a UserError."""
    run = Path(path)
    if not run.is_dir():
        raise UserError(f"--init {run}: no such run directory")
    info = runs.read_run(run)
    if info["task"] != PRETRAINING_TASK:
        raise UserError(f"--init {run} is a {info['task']} run; it takes a masked-LM run (seqlab train mlm), "
                        f"whose encoder the classifier starts from")
    _, model = runs.load_trained(run, PRETRAINING_TASK, "a masked-language-model run")
    return Pretrained(run, model, with_cls_sep(load_tokenizer(run / "tokenizer.json")))


def with_init(config: ClassifyConfig, pretrained: Pretrained) -> ClassifyConfig:
    """``config`` with the encoder's settings in ``model`` and its longest input in ``data.max_len``.
    A model setting that is neither the classify default nor the encoder's value was set by the user
    to something the encoder cannot be: a UserError naming it; so is a data.max_len above the encoder's."""
    model_defaults, data_defaults = ClassifyModelConfig(), ClassifyDataConfig()
    body = {name: getattr(pretrained.model.config, name) for name in BODY_SETTINGS}
    for name, value in body.items():
        given = getattr(config.model, name)
        if given != getattr(model_defaults, name) and given != value:
            raise UserError(f"model.{name}={given} does not fit --init {pretrained.run}, whose encoder has "
                            f"{name}={value}; drop the setting (the encoder's is used)")
    if config.train.freeze_layers > body["n_layers"]:
        raise UserError(f"train.freeze_layers={config.train.freeze_layers}, but --init {pretrained.run} has "
                        f"{body['n_layers']} layers")
    max_len = config.data.max_len
    if max_len == data_defaults.max_len:
        max_len = pretrained.max_len
    elif max_len > pretrained.max_len:
        raise UserError(f"data.max_len={max_len} is longer than --init {pretrained.run} reads "
                        f"({pretrained.max_len} tokens with [CLS] and [SEP]); drop it or lower it")
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **body),
                               data=dataclasses.replace(config.data, max_len=max_len))


def describe(config: ClassifyConfig) -> str:
    """The log line of a run started from a pre-trained encoder."""
    c, t = config.model, config.train
    settings = ", ".join(f"{name}={getattr(c, name)}" for name in BODY_SETTINGS)
    frozen = f"; embeddings and first {t.freeze_layers} layer(s) frozen" if t.freeze_layers else ""
    return (f"init: the encoder and WordPiece tokenizer of {c.init} ({settings}, data.max_len="
            f"{config.data.max_len}: these replace the classify model settings); the [CLS] state pooled by a new "
            f"head; body learning rate × {t.body_lr_scale:g}{frozen}")
