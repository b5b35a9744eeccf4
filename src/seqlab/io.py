"""File helpers shared by every layer: crash-safe writes and a run's ``metrics.jsonl``.

The lowest module of seqlab: it imports nothing from the package but its errors, so that models, data,
training and pictures can all use it without importing one another.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import DamagedFileError, UserError

METRICS_FILE = "metrics.jsonl"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename tmp over ``path`` (atomic on POSIX): a crash leaves the old file
    or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_new_file(path: str | Path, flag: str) -> None:
    """A UserError unless ``path`` (given with ``flag``) can be written as a new file: nothing of the
    user's is overwritten, and its folder exists (checked before any work, so that nothing is left
    half-made by a write that fails at the end)."""
    path = Path(path)
    if path.exists():
        raise UserError(f"{path} exists; give {flag} a new file name (nothing is overwritten)")
    if not path.parent.is_dir():
        raise UserError(f"{flag} {path}: the folder {path.parent} does not exist")
    try:  # a file made and removed at once: permissions alone do not tell (read-only mounts, immutable folders)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".seqlab-probe-"):
            pass
    except OSError as error:
        raise UserError(f"{flag} {path}: cannot write in {path.parent} ({error.strerror or error})") from None


def write_json(path: Path, value: Any, **dumps: Any) -> None:
    """``value`` as a JSON file (UTF-8, a final newline), written atomically (:func:`atomic_write`)."""
    text = json.dumps(value, **dumps) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_metrics(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The rows of ``run_dir/metrics.jsonl`` in the order they were logged; none if there is no file. A
    line that is not a JSON object (the last one, cut short by a crash) is skipped, as resuming drops it."""
    path = Path(run_dir) / METRICS_FILE
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                yield row


def read_json_file(path: Path, whole: str = "the checkpoint") -> Any:
    """A JSON file of a run directory; a missing or damaged one is a UserError naming it (and ``whole``,
    what its absence leaves incomplete)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing; {whole} is incomplete: train the run again")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedFileError(path, f"not JSON: {error}") from None


def check_safetensors(path: Path) -> Path:
    """``path`` when its header is whole and its tensors cover the file exactly (so a file cut short by
    a crash or a full disk is caught before torch reads it); a UserError naming it otherwise."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing; the checkpoint is incomplete: train the run again")
    try:
        with safe_open(str(path), "pt"):
            pass
    except (SafetensorError, OSError) as error:
        raise DamagedFileError(path, str(error).removeprefix("Error while deserializing header: ")) from None
    return path
