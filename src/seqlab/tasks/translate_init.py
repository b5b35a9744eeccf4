"""Pre-train, then translate: the Transformer's encoder starts from a masked-LM run's — token embedding,
positions, every layer, the final norm — and the source side is read with the run's WordPiece
tokenizer, each sentence as [CLS] sentence [SEP], as the encoder was trained to read it; the decoder
starts at random (Rothe, Narayan & Severyn, 2020: "BERT2RND", a BERT checkpoint for the encoder).

    seqlab train mlm --text source-language.txt --out runs/mlm
    seqlab train translate --src train.de --tgt train.en --init runs/mlm

The target side keeps a tokenizer of its own, trained on the target sentences as without ``--init``.
The encoder's settings (width, heads, layers, feed-forward size, norm placement, activation, positions,
the longest input) replace the translate defaults for the whole model: the decoder is as wide, has as
many layers unless ``model.n_decoder_layers`` says otherwise, and its positions and activation are of
the same kind. The source embeddings are not scaled by √d_model, and a post-LN encoder's are
LayerNorm'd, as the masked LM read them. The whole model trains at one rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer
from torch import Tensor, nn

from ..data.tokenizer import load_tokenizer, with_cls_sep
from ..models import MaskedLM
from . import run_dir as runs
from .init_run import BODY_SETTINGS, read_pretraining_run, with_body

PRETRAINING_TASK = "mlm"
READS = "WordPiece, [CLS] sentence [SEP]"
# Where each part of a MaskedLM's encoder sits in the Transformer (the MLM head has no place there).
ENCODER_NAMES = {"embedding.": "src_embed.embedding.", "position.": "src_embed.positional.",
                 "embedding_norm.": "src_embed.norm.", "layers.": "encoder.layers.", "norm.": "encoder.norm."}


@dataclass
class PretrainedEncoder:
    """A masked-LM run, as the translation model's encoder starts from it."""

    run: Path
    model: MaskedLM
    tokenizer: Tokenizer  # the run's, wrapping each sentence as [CLS] sentence [SEP]


def load_encoder(path: str | Path) -> PretrainedEncoder:
    """The masked-LM run at ``path``; a missing directory, a run of another task or an untrained one is
    a UserError."""
    run, _ = read_pretraining_run(path, {PRETRAINING_TASK: "a masked-language-model run (seqlab train mlm)"},
                                  "encoder")
    _, model = runs.load_trained(run, PRETRAINING_TASK, "a masked-language-model run")
    return PretrainedEncoder(run, model, with_cls_sep(load_tokenizer(run / "tokenizer.json", model.config.vocab_size)))


def with_init(config, encoder: PretrainedEncoder):
    """A TranslateConfig with the encoder's settings in ``model`` and its longest input in
    ``data.max_len`` (:func:`~seqlab.tasks.init_run.with_body`'s UserErrors)."""
    return with_body(config, encoder.model.config, encoder.run, "encoder", READS)


def encoder_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A MaskedLM's state dict -> its encoder's tensors under the Transformer's names."""
    renamed = {}
    for name, tensor in state.items():
        prefix = next((p for p in ENCODER_NAMES if name.startswith(p)), None)
        if prefix is not None:
            renamed[ENCODER_NAMES[prefix] + name[len(prefix):]] = tensor
    return renamed


def load_encoder_into(model: nn.Module, encoder: PretrainedEncoder) -> None:
    """Copy the masked LM's encoder into the Transformer's; a tensor of one without a place (or a
    misshapen one) in the other is a ValueError."""
    state = encoder_state(encoder.model.state_dict())
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"the Transformer has no place for {', '.join(unexpected)}")
    if left := [name for name in missing if name.startswith(("src_embed.", "encoder."))]:
        raise ValueError(f"the pre-trained encoder lacks {', '.join(left)}")


def describe(config, encoder: PretrainedEncoder) -> str:
    """The log line of a run whose encoder starts from a masked LM's."""
    m = config.model
    settings = ", ".join(f"{name}={getattr(m, name)}" for name in BODY_SETTINGS)
    return (f"init: the encoder and WordPiece source tokenizer of {encoder.run} ({settings}, data.max_len="
            f"{config.data.max_len}: these replace the translate model settings, the decoder's too); the source "
            f"read as {READS}; the decoder and the target tokenizer start fresh")

