"""Crash-safe checkpoints.

A checkpoint is a directory: ``model.safetensors`` (the whole model's weights) and its ``config.json``,
``state.safetensors`` + ``state.json`` (scheduler, RNG, data position and progress: tensors in
safetensors, everything else in JSON), and in ``last`` the weights and optimizer state keyed by
parameter name, so that they load on any number of ranks: ``training_state.safetensors`` +
``training_state.json`` from one process, or a ``training_state/`` directory written by
``torch.distributed.checkpoint`` (DCP) from several, as the ranks held them. Nothing a one-process run
writes is read back with pickle; DCP's ``.metadata`` is, so a run saved on several ranks must be resumed
only from a trusted source. Every file is written under a temporary name and renamed, and the directory
itself is assembled under a temporary name and swapped in, so a crash never leaves a broken "last".
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import DamagedFileError, UserError
from ..io import atomic_write, check_safetensors, read_json_file
from ..models.pretrained import config_values, read_config, save_pretrained


# --- nested state <-> (JSON, tensors) ---------------------------------------------------------

def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], _seen: dict | None = None) -> Any:
    """Replace every tensor in a nested structure by a reference into ``tensors``; the rest must be
    JSON values. Dicts with non-string keys (optimizer state is keyed by int) become item lists. A
    tensor met twice (a tied embedding and output layer) is stored once and referenced twice."""
    seen = {} if _seen is None else _seen
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        identity = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
        if identity not in seen:
            seen[identity] = f"t{len(tensors)}"
            tensors[seen[identity]] = tensor
        return {"__tensor__": seen[identity]}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": flatten_state(torch.from_numpy(obj.copy()), tensors, seen)}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: flatten_state(v, tensors, seen) for k, v in obj.items()}
        return {"__items__": [[k, flatten_state(v, tensors, seen)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, tensors, seen) for v in obj]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, seen) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot checkpoint a value of type {type(obj).__name__}")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return unflatten_state(obj["__ndarray__"], tensors).numpy()
        if "__items__" in obj:
            return {k: unflatten_state(v, tensors) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def save_state(directory: Path, state: dict[str, Any], name: str = "state") -> None:
    """``NAME.safetensors`` (the tensors) + ``NAME.json`` (the rest, with references to them)."""
    tensors: dict[str, torch.Tensor] = {}
    tree = flatten_state(state, tensors)
    atomic_write(directory / f"{name}.safetensors", lambda p: save_file(tensors, str(p)))
    atomic_write(directory / f"{name}.json", lambda p: p.write_text(json.dumps(tree)))


def load_state(directory: Path, name: str = "state") -> dict[str, Any]:
    """``NAME.safetensors`` + ``NAME.json`` read back; a damaged one is a UserError naming it."""
    directory = Path(directory)
    tensors = load_file(str(check_safetensors(directory / f"{name}.safetensors")))
    tree = read_json_file(directory / f"{name}.json")
    try:
        return unflatten_state(tree, tensors)
    except (KeyError, TypeError, ValueError) as error:
        raise DamagedFileError(directory / f"{name}.json",
                               f"it names a tensor that {name}.safetensors lacks: {error}") from None


# --- reading back: every damaged file named ---------------------------------------------------

def check_training_state(directory: Path) -> None:
    """The torch.distributed.checkpoint directory's ``.metadata`` readable and every ``*.distcp`` file
    as long as the byte ranges it lists. (DCP's metadata is a pickle: only multi-process runs have it.)"""
    import torch.distributed.checkpoint as dcp

    directory = Path(directory)
    try:
        metadata = dcp.FileSystemReader(str(directory)).read_metadata()
        ranges = list(metadata.storage_data.values())
    except Exception as error:  # unpickling a truncated file raises anything from EOFError to UnpicklingError
        raise DamagedFileError(directory / ".metadata", f"{type(error).__name__}: {error}") from None
    needed: dict[str, int] = {}
    for item in ranges:
        needed[item.relative_path] = max(needed.get(item.relative_path, 0), item.offset + item.length)
    for name, size in sorted(needed.items()):
        path = directory / name
        have = path.stat().st_size if path.is_file() else None
        if have is None or have < size:
            raise DamagedFileError(path, "missing" if have is None else f"truncated: {have:,} of {size:,} bytes")


def check_checkpoint(directory: Path) -> None:
    """A UserError naming the first file of checkpoint ``directory`` that cannot be read back."""
    from ..models.pretrained import CONFIG_FILE, WEIGHTS_FILE

    directory = Path(directory)
    config = read_json_file(directory / CONFIG_FILE)
    if not isinstance(config, dict) or "model_class" not in config:
        raise DamagedFileError(directory / CONFIG_FILE, "no model_class")
    check_safetensors(directory / WEIGHTS_FILE)
    load_state(directory)
    if has_sharded_training_state(directory):
        check_training_state(directory / TRAINING_STATE)
    elif (directory / f"{TRAINING_STATE}.json").is_file():
        load_state(directory, TRAINING_STATE)


# --- random number generators ---------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- whole checkpoints ------------------------------------------------------------------------

# Weights + optimizer: TRAINING_STATE.safetensors/.json (one process) or the TRAINING_STATE/ DCP directory
TRAINING_STATE = "training_state"


def has_sharded_training_state(directory: Path) -> bool:
    return (Path(directory) / TRAINING_STATE).is_dir()


def has_training_state(directory: Path) -> bool:
    directory = Path(directory)
    return has_sharded_training_state(directory) or (directory / f"{TRAINING_STATE}.json").is_file()


def staging_dir(directory: Path) -> Path:
    """An empty directory beside ``directory`` to assemble its next version in."""
    directory = Path(directory)
    staging = directory.with_name(f".{directory.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def write_checkpoint(staging: Path, model: torch.nn.Module, state: dict[str, Any]) -> None:
    save_pretrained(model, staging)
    save_state(staging, state)


def swap_in(staging: Path, directory: Path) -> None:
    """Replace ``directory`` by ``staging`` with two renames; a crash between them leaves ``.NAME.old``,
    which :func:`existing_checkpoint` falls back to."""
    directory = Path(directory)
    old = directory.with_name(f".{directory.name}.old")
    if directory.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(directory, old)
    os.replace(staging, directory)
    if old.exists():
        shutil.rmtree(old)


def save_checkpoint(directory: Path, model: torch.nn.Module, state: dict[str, Any]) -> None:
    """Write model + state to ``directory`` so that it is replaced all at once."""
    staging = staging_dir(directory)
    write_checkpoint(staging, model, state)
    swap_in(staging, directory)


def missing_files(directory: Path) -> list[str]:
    """The files of a usable checkpoint that ``directory`` lacks: the weights and the step's state."""
    return [name for name in ("model.safetensors", "state.json") if not (Path(directory) / name).is_file()]


def existing_checkpoint(directory: Path) -> Path | None:
    """``directory``, or its previous version when a crash fell between the two renames of
    :func:`save_checkpoint`; None when neither exists."""
    directory = Path(directory)
    for candidate in (directory, directory.with_name(f".{directory.name}.old")):
        if not missing_files(candidate):
            return candidate
    return None


def resumable_checkpoint(checkpoints: Path) -> tuple[Path | None, list[str]]:
    """The newest intact checkpoint under ``checkpoints`` to resume from — ``last``, its previous version
    (a crash between two renames), then ``best`` — and why each newer one was passed over. When every
    one that exists is damaged, the newest's error is raised; (None, []) when there are none."""
    from ..errors import UserError

    from ..errors import DamagedFileError

    checkpoints = Path(checkpoints)
    candidates = [checkpoints / name for name in ("last", ".last.old", "best", ".best.old")]
    skipped: list[str] = []
    first_error: UserError | None = None
    for candidate in candidates:
        if not candidate.is_dir():
            continue
        try:
            check_checkpoint(candidate)
        except UserError as error:
            first_error = first_error or error
            skipped.append(f"{error.path} is damaged ({error.reason})" if isinstance(error, DamagedFileError)
                           else str(error))
            continue
        return candidate, skipped
    if first_error is not None:
        raise first_error
    return None, []


# Settings a finished run adds to its model config that no weight depends on (a forecaster's conformal
# offsets): a checkpoint with or without them resumes into the same model.
NOT_COMPARED = ("calibration",)


def _compared(value: Any) -> Any:
    """``value`` without the NOT_COMPARED keys, at every depth (a wrapped or ensembled model's config)."""
    if isinstance(value, dict):
        return {k: _compared(v) for k, v in value.items() if k not in NOT_COMPARED}
    if isinstance(value, list):
        return [_compared(v) for v in value]
    return value


def check_compatible(directory: Path, model: torch.nn.Module) -> None:
    """A clear error, not a shape mismatch deep in torch, when a checkpoint is for another model."""
    saved, now = read_config(directory), config_values(model.config)
    saved.pop("model_class", None)
    for f in fields(model.config):  # a setting added since the checkpoint was saved: its default, as loading does
        if f.name not in saved and (f.default is not MISSING or f.default_factory is not MISSING):
            default = f.default if f.default is not MISSING else f.default_factory()
            saved[f.name] = json.loads(json.dumps(default))
    saved, now = _compared(saved), _compared(now)
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if differ:
        shown = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {now.get(k)!r}" for k in differ)
        raise UserError(f"checkpoint {directory} was made by another model config ({shown})")
