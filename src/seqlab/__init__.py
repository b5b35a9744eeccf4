"""seqlab: Transformer and recurrent sequence models, written to read like the papers.

``seqlab.load(RUN_DIR)`` gives a trained run's predictor (docs/python.md); the model classes are in
:mod:`seqlab.models`, their blocks in :mod:`seqlab.nn`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(run: str | Path, device: str = "cpu") -> Any:
    """The predictor of a trained run, whatever its task (run.json names it): a ``Translator``,
    ``LanguageModel``, ``MaskedLanguageModel``, ``TextClassifierRun``, ``Forecast`` or ``ImageClassifier``
    holding the model, its tokenizer (or scaler) and its config. A directory that is not a trained run is a
    ``seqlab.errors.UserError`` saying why."""
    from .errors import UserError
    from .tasks import run_dir, task

    name = run_dir.read_run(run)["task"]
    if name not in task.tasks():
        raise UserError(f"{run} is a {name} directory, not a trained model's run")
    return task.get(name).load(Path(run), device)
