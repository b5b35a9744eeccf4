import json
import math

import pytest
import torch
from safetensors.torch import load_file

from seqlab.train.precision import choose_precision, holds_accuracy

from test_engine import losses, make_trainer  # pytest puts this directory on sys.path

FAST, SLOW = [0.05, 0.05, 0.06], [0.10, 0.11, 0.10]


def test_the_faster_precision_is_chosen_when_its_losses_hold():
    same = {"fp32": [2.50, 2.40], "bf16": [2.51, 2.39]}
    assert choose_precision({"fp32": SLOW, "bf16": FAST}, same)[0] == "bf16"
    assert choose_precision({"fp32": FAST, "bf16": SLOW}, same)[0] == "fp32"


def test_a_lead_within_the_margin_keeps_fp32():
    same = {"fp32": [2.5], "bf16": [2.5]}
    assert choose_precision({"fp32": [0.100] * 3, "bf16": [0.095] * 3}, same, margin=0.1)[0] == "fp32"
    assert choose_precision({"fp32": [0.100] * 3, "bf16": [0.085] * 3}, same, margin=0.1)[0] == "bf16"


def test_the_median_decides_not_one_outlier():
    same = {"fp32": [2.5], "bf16": [2.5]}
    assert choose_precision({"fp32": [0.10, 0.10, 0.01], "bf16": [0.05, 0.05, 0.05]}, same)[0] == "bf16"


@pytest.mark.parametrize("bf16_losses", [[math.nan, 2.4], [2.5, math.inf], [3.5, 2.4], [2.5, 1.0]])
def test_a_fast_precision_whose_loss_is_off_or_not_finite_falls_back_to_fp32(bf16_losses):
    choice, reason = choose_precision({"fp32": SLOW, "bf16": FAST}, {"fp32": [2.5, 2.4], "bf16": bf16_losses})
    assert choice == "fp32" and "bf16" in reason


def test_holds_accuracy_tolerance():
    assert holds_accuracy([1.04], [1.0], rtol=0.05, atol=0.0)
    assert not holds_accuracy([1.06], [1.0], rtol=0.05, atol=0.0)
    assert not holds_accuracy([1.0], [1.0, 1.0])


class AutocastClock:
    """Moves only inside the loss: ``seconds`` per step, by whether bf16 autocast is on."""

    def __init__(self, fp32: float, bf16: float) -> None:
        self.now, self.cost = 0.0, {False: fp32, True: bf16}
        self.steps_in = {False: 0, True: 0}

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        on = torch.is_autocast_enabled("cpu")
        self.now += self.cost[on]
        self.steps_in[on] += 1


def auto_trainer(run_dir, clock, poison_bf16=False, **overrides):
    trainer = make_trainer(run_dir, clock=clock, precision="auto", **overrides)
    loss_fn = trainer.loss_fn

    def ticking(model, batch):
        clock.tick()
        loss, n = loss_fn(model, batch)
        if poison_bf16 and torch.is_autocast_enabled("cpu"):
            loss = loss * math.nan
        return loss, n

    trainer.loss_fn = ticking
    return trainer


def test_auto_picks_bf16_when_faster_logs_it_and_trains_in_it(tmp_path, capsys):
    clock = AutocastClock(fp32=2.0, bf16=1.0)
    progress = auto_trainer(tmp_path, clock).fit()
    chosen = json.loads((tmp_path / "precision.json").read_text())
    assert chosen["precision"] == progress.precision == "bf16"
    assert chosen["median_step_ms"] == {"fp32": 2000.0, "bf16": 1000.0}
    assert len(chosen["trial_losses"]["bf16"]) == 2
    assert "precision auto: bf16" in capsys.readouterr().out
    # The trial: 2 + 3·2 steps in each precision; then the run's 12 steps, all in bf16.
    assert clock.steps_in == {False: 8, True: 8 + 12}


def test_auto_refuses_a_faster_precision_whose_loss_is_not_finite(tmp_path):
    clock = AutocastClock(fp32=2.0, bf16=1.0)
    progress = auto_trainer(tmp_path, clock, poison_bf16=True).fit()
    chosen = json.loads((tmp_path / "precision.json").read_text())
    assert chosen["precision"] == progress.precision == "fp32"
    assert clock.steps_in[True] == 8  # only the trial ran in bf16


class DrawingBatches:
    """Batches whose making draws a random number, as augmentation does."""

    def __init__(self, batches):
        self.batches = batches

    def __next__(self):
        torch.rand(1)
        return next(self.batches)

    def state_dict(self):
        return self.batches.state_dict()

    def load_state_dict(self, state):
        self.batches.load_state_dict(state)


def test_the_trial_leaves_the_run_as_it_would_have_been(tmp_path):
    # Dropout 0.2 and the batches draw from the random generators, and the data order has a position:
    # the trial must put all back, so an "auto" run that picks fp32 equals a run pinned to fp32, bit for bit.
    (tmp_path / "auto").mkdir(), (tmp_path / "pinned").mkdir()
    auto = auto_trainer(tmp_path / "auto", AutocastClock(fp32=1.0, bf16=2.0))
    auto.batches = DrawingBatches(auto.batches)
    progress = auto.fit()
    assert progress.precision == "fp32"
    pinned = make_trainer(tmp_path / "pinned")
    pinned.batches = DrawingBatches(pinned.batches)
    pinned.fit()
    assert losses(tmp_path / "auto") == losses(tmp_path / "pinned")
    auto, pinned = (load_file(str(tmp_path / d / "checkpoints" / "last" / "model.safetensors")) for d in ("auto", "pinned"))
    assert all(torch.equal(auto[k], pinned[k]) for k in pinned)


def test_a_resumed_auto_run_keeps_its_choice(tmp_path):
    paused = auto_trainer(tmp_path, AutocastClock(fp32=2.0, bf16=1.0), stop_at_step=6).fit()
    assert paused.precision == "bf16"
    (tmp_path / "precision.json").unlink()
    clock = AutocastClock(fp32=1.0, bf16=2.0)  # would now pick fp32: a resume must not ask again
    resumed = auto_trainer(tmp_path, clock).fit(resume=True)
    assert resumed.precision == "bf16" and clock.steps_in == {False: 0, True: 6}
    assert not (tmp_path / "precision.json").exists()
