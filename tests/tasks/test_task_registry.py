"""The Task interface: a task defined only here — fit a line to (x, y) rows — registers itself and
runs ``train``, ``eval``, ``predict`` and ``compare`` through the real command line, with flags derived
from its config. If the CLI still dispatched on task names, none of this would reach it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqlab.cli.main import main
from seqlab.config import option, to_dict
from seqlab.data.batching import ShuffledBatches
from seqlab.errors import DataError, UserError
from seqlab.models.pretrained import PretrainedModel, register as register_model
from seqlab.tasks import run_dir as runs
from seqlab.tasks import task as registry
from seqlab.train.config import TrainConfig
from seqlab.train.loop import Trainer


@dataclass
class LineModelSizes:
    hidden: int = 0  # 0: y = a·x + b


@register_model
class LineModel(PretrainedModel):
    """y = a·x + b (``linear``), or through a small hidden layer (``mlp``)."""

    config_class = LineModelSizes

    def __init__(self, config: LineModelSizes) -> None:
        super().__init__()
        self.config, hidden = config, config.hidden
        self.net = nn.Linear(1, 1) if not hidden else nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class LineData:
    csv: str = option("", "x,y rows")


@dataclass
class LineModelConfig:
    arch: Literal["linear", "mlp"] = option("linear", "the model", flag="model")
    hidden: int = 8


def _train_defaults() -> TrainConfig:
    return TrainConfig(lr=0.1, max_steps=60, batch_size=16, warmup_steps=0, eval_every=20, label_smoothing=0.0,
                       progress=False, tensorboard=False, curves=False, schedule="constant")


@dataclass
class LineConfig:
    data: LineData = field(default_factory=LineData)
    model: LineModelConfig = field(default_factory=LineModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)


def read_rows(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not path:
        raise UserError("no data: give --csv FILE")
    frame = pd.read_csv(path)
    if list(frame.columns) != ["x", "y"]:
        raise DataError(f"{path} must have the columns x,y")
    values = torch.tensor(frame.to_numpy(), dtype=torch.float32)
    return values[:, :1], values[:, 1:]


class LinePredictor:
    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x)


class LineTask(registry.Task):
    name = "line"
    description = "fit a line to x,y rows (a task defined in the tests)"
    example = "seqlab train line --csv rows.csv"
    config_class = LineConfig
    eval_flags = (registry.Flag("csv", "line: x,y rows", required=True),)
    validation_metric = "val_mse"

    def read_data(self, config):
        return read_rows(config.data.csv)

    def train(self, config, run, data, *, resume=False, parallel=None, log=print):
        x, y = data
        if not resume:
            runs.write_run(run, self.name, to_dict(config))
        model = LineModel(LineModelSizes(config.model.hidden if config.model.arch == "mlp" else 0))
        batches = ShuffledBatches(len(x), config.train.batch_size, config.train.seed,
                                  lambda rows: {"x": x[torch.from_numpy(rows)], "y": y[torch.from_numpy(rows)]})
        trainer = Trainer(model, config.train, run, loss_fn=lambda m, b: (F.mse_loss(m(b["x"]), b["y"]), len(b["y"])),
                          batches=batches, evaluate=lambda m: {"val_mse": F.mse_loss(m(x), y).item()},
                          select="val_mse", parallel=parallel)
        progress = trainer.fit(resume=resume)
        metrics = {"val_mse": F.mse_loss(LinePredictor(trainer.model)(x), y).item(), "steps": progress.step,
                   "parameters": sum(p.numel() for p in model.parameters())}
        runs.write_metrics(run, metrics)
        return metrics

    def summary(self, config, metrics):
        return f"val MSE {metrics['val_mse']:.4f}"

    def load(self, run, device="cpu"):
        return LinePredictor(runs.load_trained(run, self.name, "a line run", device)[1])

    def evaluate(self, predictor, options):
        x, y = read_rows(options["csv"])
        return {"mse": F.mse_loss(predictor(x), y).item(), "rows": len(x)}

    def predict(self, predictor, inputs, options):
        try:
            x = torch.tensor([[float(value)] for value in inputs])
        except ValueError:
            raise UserError("each input must be a number") from None
        return [f"{value}\t{y:.3f}" for value, y in zip(inputs, predictor(x)[:, 0].tolist())]

    def compare_columns(self, config):
        return ["model", "parameters", "val_mse"]


@pytest.fixture()
def line_task():
    task = registry.register(LineTask())
    yield task
    registry._TASKS.pop(task.name)


@pytest.fixture()
def rows(tmp_path) -> Path:
    x = np.linspace(-1, 1, 64)
    path = tmp_path / "rows.csv"
    pd.DataFrame({"x": x, "y": 2 * x + 1}).to_csv(path, index=False)
    return path


def test_a_task_registered_outside_seqlab_trains_evaluates_predicts_and_compares(tmp_path, rows, line_task, capsys):
    run = tmp_path / "run"
    assert main(["train", "line", "--csv", str(rows), "--out", str(run)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    trained = json.loads((run / "metrics.json").read_text())
    assert f"val MSE {trained['val_mse']:.4f}; run: {run}" in out
    assert trained["steps"] == 60 and trained["val_mse"] < 0.05  # y = 2x + 1 is learned

    assert main(["eval", str(run), "--csv", str(rows)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["rows"] == 64 and scores["mse"] == pytest.approx(trained["val_mse"], rel=1e-5)

    assert main(["predict", str(run), "0.5", "-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["0.5", "-1"]
    assert [float(line.split("\t")[1]) for line in lines] == pytest.approx([2.0, -1.0], abs=0.3)

    out = tmp_path / "cmp"
    assert main(["compare", "line", "--csv", str(rows), "--out", str(out)]) == 0, capsys.readouterr().err
    table = pd.read_csv(out / "compare.csv")
    assert list(table["model"]) == ["linear", "mlp"]  # the config's model.arch choices, in order
    assert list(table["parameters"]) == [2, 8 + 8 + 8 + 1]
    assert json.loads((out / "run.json").read_text())["task"] == "compare-line"


def test_its_flags_come_from_its_config_and_bad_input_is_one_line(tmp_path, rows, line_task, capsys):
    assert set(line_task.flags()) == {"csv", "model"}
    assert line_task.flags()["model"].key == "model.arch" and line_task.flags()["model"].choices == ("linear", "mlp")
    with pytest.raises(SystemExit) as exit_info:  # a flag of another task
        main(["train", "line", "--csv", str(rows), "--horizon", "4"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "--horizon: not a flag of train line" in err
    with pytest.raises(SystemExit):
        main(["train", "line", "--model", "cubic"])
    assert "invalid choice: 'cubic'" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    out = tmp_path / "never"
    assert main(["train", "line", "--csv", str(bad), "--out", str(out)]) == 2
    assert "must have the columns x,y" in capsys.readouterr().err and not out.exists()  # read before the run dir
    assert main(["train", "line", "--csv", str(rows), "--nproc", "2", "--out", str(out)]) == 2  # no [parallel]
    assert "train line runs on one process" in capsys.readouterr().err and not out.exists()


def test_every_built_in_task_is_registered_with_its_flags():
    tasks = registry.tasks()
    assert {"translate", "lm", "forecast", "classify", "vision"} <= set(tasks)
    assert tasks["forecast"].flags()["horizon"].key == "data.horizon"
    assert tasks["classify"].flags()["model"].key == "model.arch"
    assert "transformer" in tasks["classify"].architectures and tasks["vision"].architectures == ()


def test_every_model_class_belongs_to_one_task():
    """``load_trained`` refuses a checkpoint whose class its task does not list: a class no task lists
    could never be loaded, one two tasks list could be loaded as either. CenterNet is only the detection
    benchmark's baseline."""
    from seqlab.models.pretrained import MODEL_CLASSES

    seqlabs = [name for name, cls in MODEL_CLASSES.items() if cls.__module__.startswith("seqlab.")]  # not this file's
    holders = {name: [task.name for task in registry.tasks().values() if name in task.models] for name in seqlabs}
    assert {name: tasks for name, tasks in holders.items() if len(tasks) != 1} == {"CenterNet": []}
