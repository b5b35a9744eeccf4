"""Run directories: everything a run needs to be evaluated, used or resumed later.

    RUN_DIR/run.json          task name and the full config
    RUN_DIR/checkpoints/      best/ and last/ (weights, optimizer, RNG, data position)
    RUN_DIR/metrics.jsonl     training curve; metrics.json: final figures
    RUN_DIR/example.json      one held-out input the explorer opens on (runs of some tasks)
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import DamagedFileError, UserError
from ..io import read_json_file, write_json

RUN_FILE = "run.json"
EXAMPLE_FILE = "example.json"


def default_run_dir(task: str) -> Path:
    return Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_run_dir(path: Path, overwrite: bool, inputs: Iterable[str | Path] = (), *, resumable: bool = False) -> None:
    """A UserError unless ``path`` may become a fresh run directory: it does not exist, or it is a
    seqlab run (never a directory of the user's own files) and ``overwrite`` was given, and none of the
    ``inputs`` (the files and runs the new run reads) lies in it, where replacing it would delete them.
    ``resumable``: the command has a --resume (train, for a task that resumes), which the message names."""
    resume = f", or --resume {path} to continue it" if resumable else ""
    check_replaceable(path, overwrite, RUN_FILE, inputs,
                      exists=f"run directory {path} already exists; pass --overwrite to replace it{resume}",
                      not_ours="is not a seqlab run directory")


def check_replaceable(path: Path, overwrite: bool, mark: str, inputs: Iterable[str | Path], *,
                      exists: str, not_ours: str) -> None:
    """A UserError unless the directory ``path`` may be (re)written: it does not exist, or it is a
    directory, ``overwrite`` was given, and it is empty or holds ``mark`` (what seqlab wrote there before),
    none of ``inputs`` in it. ``exists``: the message without ``overwrite``; ``not_ours``: how a folder
    of the user's own files is described."""
    path = Path(path)
    if path.exists():
        if Path.cwd().resolve().is_relative_to(path.resolve()):  # --out "" or ".": replacing it removes the cwd
            raise UserError(f"--out {str(path)!r} is the current directory or holds it; give --out a new directory")
        if not path.is_dir():
            raise UserError(f"{path} is a file, not a directory seqlab wrote; give --out a new directory")
        empty = not any(path.iterdir())  # an empty folder (made for the run, say) is used as it is
        if not overwrite and not empty:
            raise UserError(exists)
        if not (path / mark).is_file() and not empty:
            raise UserError(f"{path} exists and {not_ours}; refusing to overwrite it")
        check_outside(path, inputs)


def check_outside(path: Path, inputs: Iterable[str | Path]) -> None:
    """A UserError if one of ``inputs`` is ``path`` or lies in it: replacing ``path`` would delete it."""
    replaced = Path(path).resolve()
    for source in map(Path, inputs):
        if source.resolve().is_relative_to(replaced):
            raise UserError(f"--overwrite would delete {source}, which this command reads, with {path}; "
                            f"choose another --out")


def check_not_paused(config, command: str) -> None:
    """A command whose runs cannot be resumed (demo, compare) refuses ``train.stop_at_step``: its run
    would stop half-trained and be told to continue with a ``--resume`` the command does not have."""
    if config.train.stop_at_step:
        raise UserError(f"train.stop_at_step pauses a run to go on with seqlab train --resume; {command} cannot "
                        f"resume its runs: leave it out")


def create_run_dir(path: Path, overwrite: bool, inputs: Iterable[str | Path] = (), *, resumable: bool = False) -> Path:
    """A fresh run directory; an existing one is replaced only as :func:`check_run_dir` allows. The run
    it replaces is not deleted yet but set aside (:func:`replaced`), so that a command that fails before
    its new run holds anything can put it back (:func:`discard_unfinished`); :func:`drop_replaced`
    deletes it once the new run stands."""
    path = Path(path)
    if replaced(path).is_dir():  # a command killed outright while it made ``path`` anew: settled as its failure
        discard_unfinished(path)  # would have been (the run it replaced put back), never the old run deleted
    check_run_dir(path, overwrite, inputs, resumable=resumable)
    if path.exists():
        try:
            path.rename(replaced(path))
        except OSError as error:
            raise UserError(f"cannot replace the run directory {path}: {error.strerror}") from None
    try:
        path.mkdir(parents=True)
    except OSError as error:
        raise UserError(f"cannot create the run directory {path}: {error.strerror}") from None
    return path


def replaced(path: Path) -> Path:
    """Where :func:`create_run_dir` keeps the run it replaces until the new one stands: a hidden sibling."""
    return Path(path).parent / f".{Path(path).name}.replaced"


def drop_replaced(path: Path) -> None:
    """Delete the run that ``path``'s new run replaced (--overwrite), if any: the new one stands."""
    shutil.rmtree(replaced(path), ignore_errors=True)


@contextlib.contextmanager
def filling(path: Path) -> Iterator[Path]:
    """``with filling(create_run_dir(...)) as run:`` the block writes the new run; if it fails (or is
    interrupted) the run is discarded as :func:`discard_unfinished` says, else the one it replaced goes."""
    try:
        yield path
    except BaseException:
        discard_unfinished(path)
        raise
    drop_replaced(path)


def discard_unfinished(path: Path) -> bool:
    """Remove a fresh run that failed: nothing half-made stays, unless it already holds a good
    checkpoint (a loss that turned NaN later, say). The run it replaced, if any, is put back when the new
    one goes, and deleted when the new one stays. -> whether the new run was removed."""
    path = Path(path)
    if (path / "checkpoints").is_dir():
        drop_replaced(path)
        return False
    shutil.rmtree(path, ignore_errors=True)
    if replaced(path).is_dir() and not path.exists():
        replaced(path).rename(path)
    return True


def write_run(path: Path, task: str, config: dict[str, Any]) -> None:
    write_json(Path(path) / RUN_FILE, {"task": task, "config": config}, indent=2)


def read_run(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not (path / RUN_FILE).is_file():
        raise UserError(f"{path} is not a seqlab run directory (no {RUN_FILE})")
    info = read_json(path / RUN_FILE)
    if not isinstance(info, dict) or not isinstance(info.get("task"), str) or not isinstance(info.get("config", {}), dict):
        raise DamagedFileError(path / RUN_FILE, 'not an object with a "task" name and its "config"')
    info.setdefault("config", {})
    return info


def read_json(path: Path) -> Any:
    """A JSON file of a run directory; a missing, truncated or non-JSON one is a UserError naming it."""
    return read_json_file(path, "the run directory")


def write_example(path: Path, example: dict[str, Any]) -> None:
    """One input the run held out (a validation sentence, a test text, an image as a data: URL), for
    the explorer to open on: ``{"text": ..., "image": ..., "source": what it is}``."""
    write_json(Path(path) / EXAMPLE_FILE, example, ensure_ascii=False)


def read_example(path: Path) -> dict[str, Any] | None:
    """The run's ``example.json``, or None for a run trained before runs kept one."""
    if not (Path(path) / EXAMPLE_FILE).is_file():
        return None
    example = read_json(Path(path) / EXAMPLE_FILE)
    return example if isinstance(example, dict) else None


def read_classes(run: str | Path, n_classes: int | None) -> list:
    """A run's ``classes.json``: distinct class names (text or whole numbers), as many as its model's
    ``n_classes`` outputs when given; else a DamagedFileError (a wrong list would name the classes wrongly)."""
    path = Path(run) / "classes.json"
    classes = read_json(path)
    if not (isinstance(classes, list) and classes
            and all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in classes)
            and len(set(classes)) == len(classes) and (n_classes is None or len(classes) == n_classes)):
        count = f"{n_classes} " if n_classes is not None else ""
        raise DamagedFileError(path, f"not a list of {count}distinct class names, as the run wrote it")
    return classes


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    write_json(Path(path) / "metrics.json", metrics, indent=2)


def check_fits(run: str | Path, info: dict[str, Any], key: str, fixed: int, *, at_most: bool = False) -> None:
    """A setting of ``run.json`` (``key``, dotted: "data.image_size") that the checkpoint fixes too
    (``fixed``): missing, or other than it (larger, ``at_most``), run.json is damaged. Used as it was, it
    gave a traceback, or answers made with other settings than the model's."""
    section = info.get("config", {}).get(key.split(".")[0])
    value = section.get(key.split(".")[1]) if isinstance(section, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise DamagedFileError(Path(run) / "run.json", f"it lacks {key}, which the checkpoint fixes at {fixed}")
    if value > fixed or (value != fixed and not at_most):
        raise DamagedFileError(Path(run) / "run.json", f"{key} is {value}; the checkpoint's model takes "
                                                       f"{'at most ' if at_most else ''}{fixed}")


def load_trained(run: str | Path, task: str, what: str, device: str = "cpu"):
    """The run's ``run.json`` contents and its best checkpoint's model (on ``device``, in eval mode);
    a run of another task, or one not trained yet, is a UserError naming what was expected."""
    from ..models import from_pretrained
    from ..train.checkpoint import existing_checkpoint, missing_files
    from ..train.device import resolve_device
    from .task import get

    run = Path(run)
    info = read_run(run)
    if info["task"] != task:
        raise UserError(f"{run} is a {info['task']} run, not {what}")
    directory = run / "checkpoints" / "best"
    best = existing_checkpoint(directory)
    if best is None and directory.is_dir():  # a file of it deleted or never copied
        raise DamagedFileError(directory, f"{' and '.join(missing_files(directory))} missing")
    if best is None:
        raise UserError(f"{run} has no trained checkpoint yet (checkpoints/best is missing)")
    model = from_pretrained(best)  # a damaged config.json or weights file is named here
    models = get(task).models  # a run.json whose task was edited by hand names another task than trained it
    if models and type(model).__name__ not in models:
        raise DamagedFileError(run / "run.json", f"it says task {task!r}, but the checkpoint holds a "
                                                 f"{type(model).__name__}, which {task} runs never hold")
    return info, model.to(resolve_device(device)).eval()
