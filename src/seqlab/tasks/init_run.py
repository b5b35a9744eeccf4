"""What starting a task's Transformer from a pre-trained run (``--init RUN``) shares across tasks:
reading the run, and the body's settings replacing the task's defaults — one the user set to another
value is a UserError naming it, as is a longer input than the body reads. Used by
:mod:`~seqlab.tasks.classify_init` and :mod:`~seqlab.tasks.translate_init`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, TypeVar

from ..errors import UserError
from . import run_dir as runs

# The body's settings, named alike in the task model configs (classify's, translate's) and in
# MaskedLMConfig and TransformerLMConfig.
BODY_SETTINGS = ("d_model", "n_heads", "n_layers", "d_ff", "norm_first", "activation", "positional",
                 "max_relative_position")

Config = TypeVar("Config")


def read_pretraining_run(path: str | Path, kinds: Mapping[str, str], part: str) -> tuple[Path, dict[str, Any]]:
    """The run at ``path`` and its ``run.json``; a missing directory, or a run whose task is not a key of
    ``kinds`` (task -> what trains one, "a masked-language-model run (seqlab train mlm)"), is a UserError
    that says which runs it takes and what of them (``part``) is used."""
    run = Path(path)
    if not run.is_dir():
        raise UserError(f"--init {run}: {'a file, not' if run.exists() else 'no such'} run directory")
    info = runs.read_run(run)
    if info["task"] not in kinds:
        raise UserError(f"--init {run} is a {info['task']} run; it takes {' or '.join(kinds.values())}, "
                        f"whose {part} the model starts from")
    return run, info


def too_long_hint(run: str | Path) -> str:
    """The hint of a too-long input's DataError where ``data.max_len`` is the body's own (``with_body``):
    raising it, the usual hint, would only be refused."""
    return f"--init {run} was pre-trained on no more: shorten it, or pre-train with a larger data.block_size"


def with_body(config: Config, body: Any, run: Path, part: str, reads: str) -> Config:
    """``config`` (a task config with ``model`` and ``data.max_len``) with the settings of ``body`` (the
    pre-trained model's config) in ``model`` and its ``max_len`` in ``data.max_len``. A model setting
    that is neither the task's default nor the body's value was set by the user to something the body
    cannot be: a UserError naming it; so is a data.max_len above the body's (``reads``: how the body
    reads an input, for the message)."""
    model_defaults, data_defaults = type(config.model)(), type(config.data)()
    settings = {name: getattr(body, name) for name in BODY_SETTINGS}
    for name, value in settings.items():
        given = getattr(config.model, name)
        if given != getattr(model_defaults, name) and given != value:
            raise UserError(f"model.{name}={given} does not fit --init {run}, whose {part} has {name}={value}; "
                            f"drop the setting (the {part}'s is used)")
    max_len = config.data.max_len
    if max_len == data_defaults.max_len:
        max_len = body.max_len
    elif max_len > body.max_len:
        raise UserError(f"data.max_len={max_len} is longer than --init {run} reads ({body.max_len} tokens, "
                        f"{reads}); drop it or lower it")
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **settings),
                               data=dataclasses.replace(config.data, max_len=max_len))
