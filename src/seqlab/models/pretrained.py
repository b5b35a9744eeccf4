"""``save_pretrained(dir)`` / ``from_pretrained(dir)``: weights as safetensors, the model's config
dataclass as JSON — no pickle, loadable in any process that has imported :mod:`seqlab.models`.

``config.json`` is ``{"model_class": "TransformerLM", **asdict(model.config)}``: the class's name picks
the class from :data:`MODEL_CLASSES`, the other keys must be exactly the fields of its config class.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model
from torch import nn

from ..errors import DamagedFileError
from ..io import atomic_write, check_safetensors, read_json_file

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"

MODEL_CLASSES: dict[str, type[nn.Module]] = {}


def register(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: makes a model loadable by ``from_pretrained``. The class names its config
    dataclass in ``config_class`` and is built as ``cls(config)``; the model keeps that config in
    ``self.config``."""
    if not (isinstance(getattr(cls, "config_class", None), type) and is_dataclass(cls.config_class)):
        raise TypeError(f"{cls.__name__}.config_class must be a dataclass")
    MODEL_CLASSES[cls.__name__] = cls
    return cls


class PretrainedModel(nn.Module):
    """What every registered model shares: ``save_pretrained`` and ``from_pretrained``."""

    config_class: type
    config: Any

    def save_pretrained(self, directory: str | Path) -> None:
        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> nn.Module:
        return load_as(cls, directory)


def config_values(config: Any) -> dict[str, Any]:
    """A config dataclass as the JSON values ``config.json`` holds (tuples become lists)."""
    return json.loads(json.dumps(asdict(config)))


def save_pretrained(model: nn.Module, directory: str | Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_class": type(model).__name__, **config_values(model.config)}
    atomic_write(directory / CONFIG_FILE, lambda path: path.write_text(json.dumps(config, indent=2)))
    # save_model de-duplicates tied weights (embedding = output layer) that save_file refuses.
    atomic_write(directory / WEIGHTS_FILE, lambda path: save_model(model, str(path)))


def read_config(directory: str | Path) -> dict[str, Any]:
    """The model's constructor arguments; a missing, truncated or foreign ``config.json`` is a UserError
    naming it."""
    path = Path(directory) / CONFIG_FILE
    config = read_json_file(path)
    if not isinstance(config, dict) or not isinstance(config.get("model_class"), str):
        raise DamagedFileError(path, "not an object with a model_class")
    return config


def build_config(config_class: type, values: dict[str, Any], source: str) -> Any:
    """``config_class(**values)``, or a ValueError naming ``source`` and the first unknown or missing key.
    A missing key that has a default takes it: a setting added to a model after a run was saved has the
    default that computes what the model computed before, so older runs keep loading."""
    names = [f.name for f in fields(config_class)]
    unknown = [key for key in values if key not in names]
    if unknown:
        raise ValueError(f"{source}: unknown key {unknown[0]!r} for {config_class.__name__} "
                         f"(its keys: {', '.join(names)})")
    required = [f.name for f in fields(config_class) if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in values]
    if missing:
        raise ValueError(f"{source}: missing key {missing[0]!r} for {config_class.__name__}")
    return config_class(**values)


def from_pretrained(directory: str | Path) -> nn.Module:
    """The model ``directory`` holds — a ``save_pretrained`` directory, or a run directory (``run.json``
    beside ``checkpoints/``), whose best checkpoint is loaded. The model only: a run's tokenizer or
    scaler comes with ``seqlab.load(run)``. A damaged or foreign ``config.json`` or weights file is a
    UserError (``DamagedFileError``) naming the file and the first thing wrong."""
    if not (Path(directory) / CONFIG_FILE).exists() and (Path(directory) / "run.json").is_file():
        directory = Path(directory) / "checkpoints" / "best"
    source = Path(directory) / CONFIG_FILE
    values = read_config(directory)
    name = values.pop("model_class", None)
    if name not in MODEL_CLASSES:
        raise DamagedFileError(source, f"unknown model_class {name!r} (known: {', '.join(sorted(MODEL_CLASSES))})")
    cls = MODEL_CLASSES[name]
    try:
        model = cls(build_config(cls.config_class, values, str(source)))
    except (TypeError, ValueError) as error:
        raise DamagedFileError(source, str(error).removeprefix(f"{source}: ")) from None
    except (RuntimeError, MemoryError) as error:  # sizes no machine can hold (vocab_size 10**12, say)
        if isinstance(error, RuntimeError) and "negative dimension" in str(error):  # d_model -4, say
            raise DamagedFileError(source, f"describes sizes no model has: {str(error).splitlines()[0]}") from None
        if isinstance(error, RuntimeError) and "allocate" not in str(error):
            raise
        raise DamagedFileError(source, "describes a model too large to build here: its weights could not be "
                                       "allocated") from None
    weights = check_safetensors(Path(directory) / WEIGHTS_FILE)
    try:
        load_model(model, str(weights))
    except RuntimeError as error:  # missing or unexpected tensors, other shapes
        raise DamagedFileError(weights, f"its tensors do not match {CONFIG_FILE}: {error}") from None
    # Bytes changed inside the file keep its header valid; where they make a NaN or an infinity, every
    # output would be NaN (training never saves one: a non-finite loss stops it first).
    bad = next((name for name, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()),
               None)
    if bad is not None:
        raise DamagedFileError(weights, f"{bad} holds NaN or infinite values")
    return model


def load_as(cls: type[nn.Module], directory: str | Path) -> nn.Module:
    """``cls.from_pretrained``: load, and refuse a directory that holds another kind of model."""
    model = from_pretrained(directory)
    if not isinstance(model, cls):
        raise ValueError(f"{directory} holds a {type(model).__name__}, not a {cls.__name__}")
    return model
