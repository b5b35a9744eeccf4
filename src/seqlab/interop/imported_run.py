"""A seqlab run directory made from a model and a tokenizer that came from elsewhere (an imported
checkpoint), laid out by the same writers training uses, so that ``generate``, ``eval``, ``explore`` and
``--init`` read it as they read a trained run:

    RUN/run.json                   the task and its full config (as ``seqlab train`` writes it)
    RUN/tokenizer.json             the tokenizer (Hugging Face ``tokenizers`` JSON)
    RUN/checkpoints/best/          the model (``save_pretrained``) and a state naming where it came from
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from torch import nn

from ..config import to_dict
from ..data.tokenizer import save_tokenizer
from ..tasks import run_dir as runs
from ..train.checkpoint import save_checkpoint


def write_imported_run(run: Path, task: str, config: Any, model: nn.Module, tokenizer: Tokenizer,
                       source: str) -> None:
    """Writes ``run`` (an existing, empty directory) as a ``task`` run whose best checkpoint is ``model``:
    ``config`` is the task's config dataclass, ``source`` says where the weights came from. The checkpoint
    holds no optimizer state: the run can be used, or started from with ``--init``, not resumed."""
    runs.write_run(run, task, to_dict(config))
    save_tokenizer(tokenizer, run / "tokenizer.json")
    save_checkpoint(run / "checkpoints" / "best", model, {"imported_from": source})
