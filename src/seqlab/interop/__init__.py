"""Out of seqlab and into it: a trained run written in another library's layout (Hugging Face
``transformers``, ONNX), and another library's checkpoint read into a seqlab run.

One registry, as for tasks: a converter is a function in a module of this package, registered with
``@exporter(format, task)`` or ``@importer(model_type)``; ``seqlab export`` and ``seqlab import``
dispatch through it.

    seqlab export runs/shakespeare --format hf --out hf/shakespeare
    seqlab import hf hf/gpt2-small --out runs/gpt2

An export is written to a temporary directory beside ``--out`` and renamed into place when complete, so
a failure leaves nothing half-made; an existing ``--out`` is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import UserError
from ..tasks import run_dir as runs

# The modules that register converters, imported when a conversion is asked for (they import
# transformers or onnx, which ``import seqlab`` should not pay for).
MODULES = ("gpt2", "bert", "marian", "pegasus", "onnx_export")
FORMATS = ("hf", "onnx")
EXPORT_MARK = "seqlab-export.json"  # written beside an export: the run it came from

Exporter = Callable[[Path, Path], str]  # (run directory, output directory) -> one line saying what was written
Importer = Callable[[Path, Path], str]  # (HF checkpoint directory, new run directory) -> one line

_EXPORTERS: dict[tuple[str, str], Exporter] = {}
_IMPORTERS: dict[str, Importer] = {}


def exporter(fmt: str, task: str) -> Callable[[Exporter], Exporter]:
    """Registers ``function`` as the way to write a ``task`` run in ``fmt``."""
    def register(function: Exporter) -> Exporter:
        _EXPORTERS[(fmt, task)] = function
        return function
    return register


def importer(model_type: str) -> Callable[[Importer], Importer]:
    """Registers ``function`` as the reader of HF checkpoints whose config.json says ``model_type``."""
    def register(function: Importer) -> Importer:
        _IMPORTERS[model_type] = function
        return function
    return register


def _load_converters() -> None:
    for name in MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name and error.name.startswith(f"{__name__}."):
                continue  # a converter not written yet
            raise


def exporters() -> dict[tuple[str, str], Exporter]:
    _load_converters()
    return dict(_EXPORTERS)


def importers() -> dict[str, Importer]:
    _load_converters()
    return dict(_IMPORTERS)


def export(run: Path, fmt: str, out: Path, overwrite: bool = False) -> str:
    """Writes the trained ``run`` in ``fmt`` to ``out``; returns what was written, in one line."""
    if not run.is_dir():
        raise UserError(f"{run}: {'a file, not' if run.exists() else 'no such'} run directory")
    out = out.resolve()  # "." has no name to put a temporary directory beside
    _check_out(out, overwrite, EXPORT_MARK, run)
    task = runs.read_run(run)["task"]
    convert = exporters().get((fmt, task))
    if convert is None:
        can = sorted(t for f, t in exporters() if f == fmt)
        raise UserError(f"{run} is a {task} run; --format {fmt} exports {', '.join(can) or 'no task yet'} runs")

    def write(tmp: Path) -> str:
        said = convert(run, tmp)
        (tmp / EXPORT_MARK).write_text(json.dumps({"run": str(run.resolve()), "format": fmt}) + "\n")
        return said

    return _write_atomically(out, write)


def import_hf(source: Path, out: Path, overwrite: bool = False) -> str:
    """Reads the Hugging Face checkpoint directory ``source`` into a new seqlab run at ``out``."""
    out = out.resolve()
    config = source / "config.json"
    if not config.is_file():
        raise UserError(f"{source}: not a Hugging Face checkpoint directory (no config.json)")
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise UserError(f"{config} is not a JSON object") from None
    _check_out(out, overwrite, runs.RUN_FILE, source)
    convert = importers().get(model_type)
    if model_type is None:
        raise UserError(f"{config} has no model_type; seqlab imports {', '.join(sorted(importers()))} checkpoints")
    if convert is None:
        raise UserError(f"{source} holds a {model_type!r} model; seqlab imports "
                        f"{', '.join(sorted(importers())) or 'none yet'}")

    def read(tmp: Path) -> str:
        try:
            return convert(source, tmp)
        except UserError:
            raise
        except Exception as error:  # a foreign file malformed in a way no check foresaw: still one line
            said = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            raise UserError(f"{source} cannot be read as a {model_type} checkpoint "
                            f"({type(error).__name__}{': ' + said if said else ''})") from None

    return _write_atomically(out, read)


def _check_out(out: Path, overwrite: bool, mark: str, source: Path) -> None:
    """An existing ``out`` is replaced only with ``overwrite``, only if it holds ``mark`` (what seqlab
    wrote there before): never a directory of the user's own files, and never one holding ``source``."""
    what = "export" if mark == EXPORT_MARK else "run"
    runs.check_replaceable(out, overwrite, mark, [source], exists=f"{out} already exists; pass --overwrite to "
                           f"replace it", not_ours=f"is no {what} of seqlab's (it holds no {mark})")


def _write_atomically(out: Path, write: Callable[[Path], str]) -> str:
    """``write`` into a temporary directory beside ``out`` (which ``_check_out`` has allowed), renamed to
    ``out`` when it returns."""
    made = [folder for folder in [out.parent, *out.parent.parents] if not folder.exists()]  # removed on failure
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the result from the user's group, unlike a run
    try:
        said = write(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        return f"{said}: {out}"
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        for folder in made:  # deepest first: the folders made above, if the result is not in them
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
