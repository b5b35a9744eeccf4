"""Typed configuration: dataclasses, TOML recipe files and ``--set section.key=value`` overrides,
validated with messages that name the key and what it accepts."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import tomllib
import typing
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

C = TypeVar("C")


def check_model(model: Any, n_heads: int, *sizes: int, rates: tuple[str, ...] = ("dropout",)) -> None:
    """Shared by the tasks' model configs: d_model and every size at least 1, d_model split evenly across
    ``n_heads`` attention heads (pass 1 for a model without attention), and each dropout rate named in
    ``rates`` (None = unset) in [0, 1), and a relative-position clipping distance (where the config has
    one) at least 1."""
    if min(model.d_model, n_heads, *sizes) < 1:
        raise ValueError("model sizes (model.d_model, model.n_heads, model.n_layers, ...) must be at least 1")
    if model.d_model % n_heads:
        raise ValueError(f"model.d_model ({model.d_model}) must be divisible by model.n_heads ({n_heads})")
    for name in rates:
        rate = getattr(model, name)
        if rate is not None and not 0.0 <= rate < 1.0:
            raise ValueError(f"model.{name} must be in [0, 1); got {rate}")
    check_fits_in_memory(model)
    if getattr(model, "max_relative_position", 1) < 1:
        raise ValueError(f"model.max_relative_position must be at least 1; got {model.max_relative_position}")


def estimate_parameters(model: Any) -> int:
    """A lower bound on the parameter count of the model a task's ``[model]`` section describes: the
    weight matrices of its layers (embeddings and output layer left out: the vocabulary is not known yet)."""
    arch = getattr(model, "arch", "transformer")
    d_model, layers = getattr(model, "d_model", 0), getattr(model, "n_layers", 1)
    if arch in ("transformer", "patch"):
        d_ff = getattr(model, "d_ff", 0) or 4 * d_model
        total = layers * (4 * d_model * d_model + 2 * d_model * d_ff)  # W_q, W_k, W_v, W_o + the FFN
        if hasattr(model, "n_decoder_layers"):  # an encoder-decoder: self- and cross-attention per layer
            total += (model.n_decoder_layers or layers) * (8 * d_model * d_model + 2 * d_model * d_ff)
        return total
    if arch in ("lstm", "gru", "rnn", "simple", "context", "attention"):
        rnn = getattr(model, "rnn", model)  # translation keeps its RNN sizes in [model.rnn]
        hidden = getattr(rnn, "hidden_size", 0) or d_model
        inputs = getattr(rnn, "embed_dim", d_model)
        directions = 2 if getattr(rnn, "bidirectional", False) else 1
        return getattr(rnn, "num_layers", layers) * directions * 4 * hidden * (hidden + inputs)
    if arch == "conv" and hasattr(model, "conv"):
        conv = model.conv
        return conv.n_layers * 2 * conv.kernel_size * conv.hidden_size * conv.hidden_size * 2
    return 0


def memory_bytes() -> int | None:
    """This machine's physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_fits_in_memory(model: Any) -> None:
    """Refuse, before anything is allocated, a model whose weights alone (fp32) exceed this machine's
    memory; the message names the largest size and the estimate."""
    ram, params = memory_bytes(), estimate_parameters(model)
    if ram is None or params * 4 <= ram:
        return
    sizes = {f"model.{k}": v for k, v in vars(model).items() if isinstance(v, int) and not isinstance(v, bool)}
    for section in ("rnn", "conv"):
        if dataclasses.is_dataclass(getattr(model, section, None)):
            sizes.update({f"model.{section}.{k}": v for k, v in vars(getattr(model, section)).items()
                          if isinstance(v, int) and not isinstance(v, bool)})
    key = max(sizes, key=sizes.get)
    raise ValueError(f"{key}={sizes[key]} needs ~{params:.2g} parameters ({human_bytes(params * 4)} in fp32), "
                     f"more than this machine's {human_bytes(ram)} of memory; choose smaller model sizes")


def option(default: Any, help: str, *, flag: str | None = None, path: bool = False) -> Any:
    """A config field that is also a command-line flag of its task: ``--NAME`` (or ``--FLAG``) with
    this help text. The task's flags are derived from these (``seqlab.tasks.task.config_flags``).
    ``path=True`` marks a file or folder: :func:`absolute_paths` resolves it when a run starts."""
    return dataclasses.field(default=default, metadata={"help": help, **({"flag": flag} if flag else {}),
                                                        **({"path": True} if path else {})})


def absolute_paths(config: C) -> C:
    """``config`` with every field marked ``path=True`` (in any section) made absolute, relative to the
    working directory now: the run directory's ``run.json`` then resumes from anywhere. Empty ones
    (the task's default data) stay empty."""
    changes = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            changes[f.name] = absolute_paths(value)
        elif f.metadata.get("path") and isinstance(value, str) and value:
            changes[f.name] = os.path.abspath(os.path.expanduser(value))
    return dataclasses.replace(config, **changes)


def input_paths(config) -> list[str]:
    """The value of every non-empty field marked ``path=True`` (in any section): what a run reads."""
    found = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            found += input_paths(value)
        elif f.metadata.get("path") and isinstance(value, str) and value:
            found.append(value)
    return found


def recipe_path(name_or_path: str) -> Path:
    """A TOML file path, or the name of a recipe shipped in ``seqlab/recipes``."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if path.is_dir():
            raise ConfigError(f"{path} is a folder; --config takes a TOML file or a recipe's name")
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    shipped = resources.files("seqlab") / "recipes" / f"{name_or_path}.toml"
    if not shipped.is_file():
        names = sorted(p.name.removesuffix(".toml") for p in (resources.files("seqlab") / "recipes").iterdir()
                       if p.name.endswith(".toml"))
        raise ConfigError(f"no config file or recipe named {name_or_path!r}; recipes: {', '.join(names)}")
    return Path(str(shipped))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))  # an editor's byte-order mark is not TOML
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``model.d_model=256`` -> (["model", "d_model"], 256). Values are TOML values; a bare word
    that isn't one is taken as a string (``--set data.src=train.de``)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def merge_override(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(keys)}: {key} is a value, not a section")
    node[keys[-1]] = value


def build(cls: type[C], tree: dict[str, Any], prefix: str = "") -> C:
    """A dataclass instance from nested dicts, checking every key and type."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key {name!r}; {prefix.rstrip('.') or 'top level'} "
                              f"accepts: {', '.join(fields)}")
        default = fields[key].default_factory
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict) and default is not dataclasses.MISSING:
            # A section given in part keeps the task's own defaults for the rest (the LM's train
            # section defaults differ from TrainConfig's), not the section class's bare defaults.
            merged = dataclasses.asdict(default())
            _deep_update(merged, value)
            value = merged
        values[key] = _coerce(hints[key], value, name)
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {error}") from None


def _coerce(hint: Any, value: Any, name: str) -> Any:
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{name} is a section; set its keys as {name}.KEY=VALUE")
        return build(hint, value, f"{name}.")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        return _coerce(hint, value, name)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {', '.join(map(repr, args))}; got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list; got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:  # a fixed number of values, like betas
            if len(value) != len(args):
                raise ConfigError(f"{name} must be a list of {len(args)} values; got {value!r}")
            return tuple(_coerce(item, v, name) for item, v in zip(args, value))
        item = args[0] if args else Any
        return origin(_coerce(item, v, name) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number; got {value}")
    if hint is float and isinstance(value, float):
        return value
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and
                                               not (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{name} must be {'an' if hint is int else 'a'} {hint.__name__}; got {value!r}")
    return value


def load_config(cls: type[C], config: str | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> C:
    """Defaults <- ``base`` (a nested dict, e.g. a saved run's config) <- the TOML file <- each
    ``--set`` override, in that order."""
    tree: dict[str, Any] = copy.deepcopy(base or {})
    if config:
        _deep_update(tree, read_toml(recipe_path(config)))
    for text in overrides or []:
        merge_override(tree, *parse_override(text))
    return build(cls, tree)


def _deep_update(tree: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            _deep_update(tree[key], value)
        else:
            tree[key] = value


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
