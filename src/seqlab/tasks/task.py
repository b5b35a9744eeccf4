"""The one interface every task implements, and the registry the command line, ``compare`` and the
explorer dispatch through.

A task is one module with one registry entry: a :class:`Task` subclass that names its config class,
reads and checks its data before a run directory exists, trains with one signature, summarises the
result in one line, and loads a trained run as a *predictor* (the object ``predict``, ``eval`` and
``explore`` use). Its command-line flags are not kept in a table: they are the config fields marked
with :func:`seqlab.config.option`. ``docs/architecture.md`` walks through adding one.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

from ..errors import UserError
from ..parallel.runtime import SingleProcess, launched_by_torchrun, runtime_for_config


@dataclass(frozen=True)
class Flag:
    """A command-line flag: ``--NAME`` (underscores typed as dashes), and the config key it sets (None
    for a flag the task reads itself, like ``eval --ref``)."""

    name: str
    help: str
    key: str | None = None
    type: Callable[[str], Any] = str
    choices: tuple[Any, ...] | None = None
    required: bool = False


def config_flags(config_class: type) -> dict[str, Flag]:
    """The flags a task's config declares: every field of its sections (``data``, ``model``, …) made
    with ``option(...)``, typed from its annotation (a ``Literal`` gives the choices)."""
    flags = {}
    for section in dataclasses.fields(config_class):
        section_class = typing.get_type_hints(config_class)[section.name]
        if not dataclasses.is_dataclass(section_class):
            continue
        hints = typing.get_type_hints(section_class)
        for f in dataclasses.fields(section_class):
            if "help" not in f.metadata:
                continue
            hint = hints[f.name]
            choices = typing.get_args(hint) if typing.get_origin(hint) is Literal else None
            kind = hint if hint in (int, float) else str
            name = f.metadata.get("flag") or f.name
            flags[name] = Flag(name, f.metadata["help"], f"{section.name}.{f.name}", kind, choices)
    return flags


@dataclass(frozen=True)
class Request:
    """What the explorer's page asks of a run: a text (or a date, for a forecast), or an image."""

    text: str = ""
    beam: int | None = None
    max_new_tokens: int = 40
    image: bytes | None = None


class Task:
    """What seqlab asks of a task. Subclasses set the class attributes and override the methods their
    task supports; the defaults say in one line what the task cannot do."""

    name: str = ""  # the word after ``seqlab train``
    description: str = ""  # one line for --help
    example: str = ""  # a command for --help
    config_class: type = object  # data / model / train (/ parallel) sections
    compare_recipe: str | None = None  # the recipe ``compare`` starts from when none is given (see compare_config)
    data_in_run: bool = False  # the run directory holds the data it trains on (ids): --resume reads no input
    # Shipped recipes that train a bigger model than the defaults (which finish in minutes on a laptop's
    # CPU), named in ``seqlab train TASK --help``.
    bigger_recipes: tuple[str, ...] = ()
    eval_flags: tuple[Flag, ...] = ()  # what ``seqlab eval`` scores a run of this task on
    predict_flags: tuple[Flag, ...] = ()
    predict_needs_input = True  # predict reads inputs (arguments or standard input's lines)
    predict_inputs = "texts"  # what they are, as an error asking for them names them
    no_resume: str = ""  # why ``--resume`` is refused, before anything is read, by a task whose runs do not resume
    models: tuple[str, ...] = ()  # the model classes (seqlab.models' names) this task's checkpoints hold

    # --- training ------------------------------------------------------------------------------

    def flags(self) -> dict[str, Flag]:
        return config_flags(self.config_class)

    def read_data(self, config) -> Any:
        """Read and check the data; runs before a run directory exists, so bad input leaves nothing."""
        raise NotImplementedError

    def check_new_run(self, config) -> None:
        """For a new run only (not ``--resume``), before its directory is made: a UserError for what the
        data cannot show is wrong (a pre-trained run to start from that is missing or does not fit)."""

    def runtime(self, config) -> SingleProcess:
        """This process's place in the job: one process, or its rank of the job torchrun started
        (data parallel by default; the config's ``[parallel]`` section says how). A config without a
        ``parallel`` section trains on one process."""
        if hasattr(config, "parallel"):
            return runtime_for_config(config)
        if launched_by_torchrun():
            raise UserError(f"train {self.name} runs on one process")
        return SingleProcess()

    def check_processes(self, config, n: int) -> None:
        """Before ``--nproc N`` starts anything: a UserError if the config cannot run on N processes."""
        if not hasattr(config, "check_layout"):
            raise UserError(f"--nproc: train {self.name} runs on one process")
        config.check_layout(n)

    def train(self, config, run: Path, data, *, resume: bool = False, parallel: SingleProcess | None = None,
              log=print) -> dict[str, Any]:
        """Train into ``run`` (a new, empty directory, or the run being resumed): the task writes its
        ``run.json``, checkpoints and ``metrics.json``; -> those metrics."""
        raise NotImplementedError

    def summary(self, config, metrics: dict[str, Any]) -> str:
        """The line ``seqlab train`` prints when training ends."""
        raise NotImplementedError

    # --- a trained run -------------------------------------------------------------------------

    def load(self, run: Path, device: str = "cpu") -> Any:
        """The trained run as a predictor."""
        raise NotImplementedError

    def evaluate(self, predictor, options: dict[str, Any]) -> dict[str, Any]:
        """Scores on new data; ``options`` holds the ``eval_flags`` given (None where not given)."""
        raise UserError(f"seqlab eval cannot score a {self.name} run")

    def predict(self, predictor, inputs: list[str], options: dict[str, Any]) -> Iterable[str]:
        """Lines to print for ``seqlab predict RUN INPUT...``."""
        raise UserError(f"seqlab predict cannot run a {self.name} run")

    # --- the explorer -------------------------------------------------------------------------

    def explorable(self, predictor, run: Path):
        """The model the explorer looks inside (a UserError for a run with nothing to show)."""
        return predictor.model

    def input_limit(self, predictor) -> int:
        """The longest input the explorer may send, in tokens (0: not a token sequence)."""
        return 0

    def explore_example(self, predictor, run: Path) -> dict[str, Any]:
        """The input the explorer's page opens on: a dict with ``text`` (or ``image``, a data: URL),
        ``source`` (where it comes from) and optionally ``max_new_tokens``. By default the run's
        ``example.json``, written at training time, else a generic one (a run trained before runs kept it)."""
        from . import run_dir

        return run_dir.read_example(run) or {"text": "hello", "source": "a generic example (this run keeps none)"}

    def explore(self, predictor, request: Request) -> dict[str, Any]:
        """``{"output": str, "views": {name: {"queries", "keys", "weights"}}, ...}`` for one request,
        from one call of the model (``seqlab.tasks.views``)."""
        raise UserError(f"the explorer cannot show a {self.name} run")

    def next_tokens(self, predictor, text: str, temperature: float, top_k: int,
                    append: int | None = None, ids: list[int] | None = None) -> dict[str, Any]:
        """A language model's top-k next tokens at every position of ``text`` (``seqlab.tasks.views``)."""
        raise UserError(f"a {self.name} run predicts no next tokens")

    # --- compare -------------------------------------------------------------------------------

    @property
    def architectures(self) -> tuple[str, ...]:
        """What ``compare`` may train: the choices of the config's ``model.arch``, in their declared
        order (the order of the table); () for a task with one architecture, which has no compare."""
        model = typing.get_type_hints(self.config_class).get("model")
        hints = typing.get_type_hints(model) if dataclasses.is_dataclass(model) else {}
        return typing.get_args(hints["arch"]) if typing.get_origin(hints.get("arch")) is Literal else ()

    def compare_data(self, config, options: dict[str, Any]) -> Any:
        """The data every compared model trains on (``options``: this task's own compare flags)."""
        return self.read_data(config)

    def compare_flags(self) -> tuple[Flag, ...]:
        return ()

    not_compared: tuple[str, ...] = ("model.arch",)  # config keys whose train flags compare has no use for

    def compared_flags(self) -> list[Flag]:
        """The train flags ``compare`` takes too: all but those of :attr:`not_compared` (``--models``
        replaces ``--model``)."""
        return [f for f in self.flags().values() if f.key not in self.not_compared]

    def compare_config(self, options: dict[str, Any]) -> str | None:
        """The recipe ``compare`` starts from when no --config is given (``options``: as for compare_data)."""
        return self.compare_recipe

    def compare_columns(self, config) -> list[str]:
        raise NotImplementedError

    def compare_row(self, config, data, run: Path, metrics: dict[str, Any]) -> dict[str, Any]:
        """One model's figures for the table (by default its metrics)."""
        return metrics

    def has_curves(self, config) -> bool:
        """Whether a trained run of this config drew training curves (linear baselines do not)."""
        return True

    validation_metric: str = "val_loss"  # what ``compare``'s curves.png shows beside the training loss


# --- the registry ----------------------------------------------------------------------------------

BUILT_IN = {"translate": "translate", "lm": "language_model", "forecast": "forecast", "classify": "classify",
            "vision": "vision", "mlm": "masked_lm", "detect": "detect"}  # task name -> its module in seqlab.tasks
_TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task (a module does this for itself on import; a test may register its own)."""
    _TASKS[task.name] = task
    return task


def tasks() -> dict[str, Task]:
    """Every registered task, the built-in ones imported on first use."""
    for module in BUILT_IN.values():
        importlib.import_module(f"{__package__}.{module}")
    return dict(_TASKS)


def get(name: str) -> Task:
    known = tasks()
    if name not in known:
        raise UserError(f"unknown task {name!r}; tasks: {', '.join(known)}")
    return known[name]
