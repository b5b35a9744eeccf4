"""``save_pretrained(dir)`` / ``from_pretrained(dir)``: weights as safetensors, constructor
arguments as JSON — no pickle, loadable anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model
from torch import nn

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"

MODEL_CLASSES: dict[str, type[nn.Module]] = {}


def register(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: makes a model loadable by ``from_pretrained``. The model keeps the keyword
    arguments it was built with in ``self.config`` (a dict of JSON values)."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def save_pretrained(model: nn.Module, directory: str | Path) -> None:
    from ..train.checkpoint import atomic_write  # deferred: train imports models

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_class": type(model).__name__, **model.config}
    atomic_write(directory / CONFIG_FILE, lambda path: path.write_text(json.dumps(config, indent=2)))
    # save_model de-duplicates tied weights (embedding = output layer) that save_file refuses.
    atomic_write(directory / WEIGHTS_FILE, lambda path: save_model(model, str(path)))


def read_config(directory: str | Path) -> dict[str, Any]:
    """The model's constructor arguments; a missing, truncated or foreign ``config.json`` is a UserError
    naming it."""
    from ..errors import DamagedFileError
    from ..train.checkpoint import read_json_file

    path = Path(directory) / CONFIG_FILE
    config = read_json_file(path)
    if not isinstance(config, dict) or not isinstance(config.get("model_class"), str):
        raise DamagedFileError(path, "not an object with a model_class")
    return config


def from_pretrained(directory: str | Path, **overrides: Any) -> nn.Module:
    from ..errors import DamagedFileError
    from ..train.checkpoint import check_safetensors

    config = read_config(directory)
    name = config.pop("model_class")
    if name not in MODEL_CLASSES:
        raise DamagedFileError(Path(directory) / CONFIG_FILE, f"unknown model class {name!r}")
    try:
        model = MODEL_CLASSES[name](**{**config, **overrides})
    except (TypeError, ValueError) as error:
        raise DamagedFileError(Path(directory) / CONFIG_FILE, f"{name} cannot be built from it: {error}") from None
    weights = check_safetensors(Path(directory) / WEIGHTS_FILE)
    try:
        load_model(model, str(weights))
    except RuntimeError as error:  # missing or unexpected tensors, other shapes
        raise DamagedFileError(weights, f"its tensors do not match {CONFIG_FILE}: {error}") from None
    return model


def load_as(cls: type[nn.Module], directory: str | Path) -> nn.Module:
    """``cls.from_pretrained``: load, and refuse a directory that holds another kind of model."""
    model = from_pretrained(directory)
    if not isinstance(model, cls):
        raise ValueError(f"{directory} holds a {type(model).__name__}, not a {cls.__name__}")
    return model
