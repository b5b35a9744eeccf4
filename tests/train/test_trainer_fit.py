"""Trainer.fit's own choices: a fit without ``resume`` starts afresh even where checkpoints exist, a resumed
run that finishes reports no stop reason, a finished run is not refused for a time budget it no longer
needs, ``train.tensorboard`` writes the run's event files, only the main rank logs, the progress bar's
total is where a time budget will stop the run, a one-process run takes Ctrl-C and SIGTERM itself, and the
model ends with the best evaluation's weights."""

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from seqlab.parallel.runtime import SingleProcess
from seqlab.train import loop
from seqlab.train.loop import Trainer
from seqlab.train.optim import build_optimizer, build_schedule
from seqlab.train.progress import ProgressDisplay

from test_engine import make_trainer  # pytest puts this directory on sys.path
from test_trainer_clock import Clock
from test_trainer_step import fit


@pytest.fixture
def count_steps(monkeypatch):
    calls = {"n": 0}
    real_step = Trainer._step

    def counted(self):
        calls["n"] += 1
        return real_step(self)

    monkeypatch.setattr(Trainer, "_step", counted)
    return calls


def test_fit_without_resume_starts_from_step_0_in_a_directory_with_checkpoints(tmp_path, count_steps):
    make_trainer(tmp_path, max_steps=4, eval_every=4).fit()
    assert (tmp_path / "checkpoints" / "last").is_dir() and count_steps["n"] == 4
    progress = make_trainer(tmp_path, max_steps=6, eval_every=3).fit()
    assert progress.step == 6 and count_steps["n"] == 4 + 6  # all six steps again, not the two after step 4


def test_a_resumed_run_that_finishes_has_no_stop_reason(tmp_path):
    paused = make_trainer(tmp_path, max_steps=4, eval_every=2, stop_at_step=2).fit()
    assert paused.step == 2 and paused.stopped.startswith("paused at step 2")
    finished = make_trainer(tmp_path, max_steps=4, eval_every=2, stop_at_step=2).fit(resume=True)
    assert finished.step == 4
    assert finished.stopped == ""  # a str, as Progress declares: "" is "ran to max_steps"


def test_resuming_a_finished_run_under_a_spent_time_budget_is_not_refused(tmp_path, count_steps):
    """The budget question is only asked of a run with steps left: one at max_steps has nothing to continue."""
    make_trainer(tmp_path, max_steps=4, eval_every=4).fit()
    progress = make_trainer(tmp_path, max_steps=4, eval_every=4, max_time=1e-6).fit(resume=True)
    assert progress.step == 4 and count_steps["n"] == 4  # no step taken, no refusal


def test_tensorboard_setting_writes_the_runs_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    make_trainer(tmp_path, max_steps=4, eval_every=2, log_every=2, tensorboard=True).fit()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("train_loss")] == [2, 4]
    assert [e.step for e in events.Scalars("val_loss")] == [2, 4]


class SecondRank(SingleProcess):
    """Rank 1 of 2, as far as the Trainer's bookkeeping goes (the main rank's answers are its own here)."""

    rank, world, is_main = 1, 2, False


def test_a_rank_other_than_the_main_one_writes_no_metrics_and_no_curves(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=4, eval_every=2, log_every=2, curves=True)
    trainer.parallel = SecondRank()
    assert trainer.fit().step == 4
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "curves.png").exists()
    main = tmp_path / "main"
    main.mkdir()
    make_trainer(main, max_steps=4, eval_every=2, log_every=2, curves=True).fit()  # the same run on the main rank
    assert (main / "metrics.jsonl").read_text() and (main / "curves.png").is_file()


def test_a_resumed_runs_progress_bar_starts_with_where_its_time_budget_will_stop_it(tmp_path, monkeypatch):
    """Two steps took S seconds; with a budget of 2·S the run will stop near step 2 · 2S / S = 4 of 8."""
    first = make_trainer(tmp_path, clock=Clock(step=0.25), max_steps=8, eval_every=2, stop_at_step=2, max_time=1e4)
    first.fit()
    seconds = json.loads((tmp_path / "checkpoints" / "last" / "state.json").read_text())["progress"]["train_seconds"]
    assert seconds > 0
    totals = []

    class Recorded(ProgressDisplay):
        def __init__(self, total, *args, **kwargs):
            totals.append(total)
            super().__init__(total, *args, **kwargs)

    monkeypatch.setattr(loop, "ProgressDisplay", Recorded)
    resumed = make_trainer(tmp_path, clock=Clock(100.0, step=0.25), max_steps=8, eval_every=2, stop_at_step=2,
                           max_time=2 * seconds)
    resumed.fit(resume=True)
    assert totals == [4]


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_one_process_run_takes_the_signal_itself_and_gives_the_handlers_back(
        tmp_path, monkeypatch, handlers_from_before_the_run, signal_name):
    real_step = Trainer._step

    def step_then_signal(self):
        result = real_step(self)
        if self.progress.step == 1:
            os.kill(os.getpid(), getattr(signal, signal_name))
        return result

    monkeypatch.setattr(Trainer, "_step", step_then_signal)
    with pytest.raises(KeyboardInterrupt):
        make_trainer(tmp_path, max_steps=4, eval_every=4).fit()
    assert signal.getsignal(signal.SIGINT) is signal.getsignal(signal.SIGTERM) is handlers_from_before_the_run


def test_after_fit_the_model_holds_the_best_evaluations_weights_not_the_last_steps(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=6, eval_every=2)
    scores = iter([3.0, 1.0, 2.0])  # validation at steps 2, 4, 6: step 4 is the best
    trainer.evaluate = lambda model: {"val_loss": next(scores)}
    assert trainer.fit().best_step == 4
    best, last = (load_file(str(tmp_path / "checkpoints" / name / "model.safetensors")) for name in ("best", "last"))
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], best[k]) for k in best)
    assert not all(torch.equal(state[k], last[k]) for k in last)  # training moved on after step 4


class Shown:
    """Stands in for ProgressDisplay: records what fit shows."""

    def __init__(self, total, initial, enabled, clock) -> None:
        self.calls = [("start", total, initial)]
        shown.append(self)

    def update(self, *args):
        self.calls.append(("update", *args))

    def set_postfix(self, **values):
        self.calls.append(("postfix", values))

    def close(self):
        self.calls.append(("close",))


shown: list[Shown] = []


def counted_run(tmp_path, monkeypatch, **overrides):
    """A tiny run whose clock moves 1 s per batch; -> (trainer, [(mean loss, items) of each batch])."""

    from seqlab.train.optim import scale_lr
    from test_trainer_step import data, fit, mse, tiny

    clock, seen = Clock(100.0), []

    def loss_fn(model, batch):
        loss, n = mse(model, batch)
        seen.append((loss.item(), n))
        clock.now += 1.0
        return loss, n

    batches = []
    for n in (2, 3, 4, 5, 6):
        x, y = data(n, seed=n)
        batches.append({"x": x, "y": y})
    scores = iter([3.0, 2.0, 1.0, 0.5])
    shown.clear()
    monkeypatch.setattr(loop, "ProgressDisplay", Shown)
    t = tiny(tmp_path, batches, loss_fn=loss_fn, evaluate=lambda m: {"val_loss": next(scores)}, **overrides)
    scale_lr([t.model.bias], 0.5)  # a second parameter group at half the rate: the logged rate is the first's
    t.optimizer = build_optimizer(t.trained, t.config)
    t.schedule = build_schedule(t.optimizer, t.config, 4, elapsed=t._elapsed)
    t.clock = clock
    return t, seen


def test_the_logged_rows_and_the_progress_shown_are_the_windows_losses_by_hand(tmp_path, monkeypatch):
    t, seen = counted_run(tmp_path, monkeypatch, max_steps=5, eval_every=2, log_every=2, max_time=100.0)
    progress = fit(t)
    assert len(seen) == 5 and [n for _, n in seen] == [2, 3, 4, 5, 6]
    sums = [loss * n for loss, n in seen]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first, second = (sums[0] + sums[1]) / 5, (sums[2] + sums[3]) / 9
    assert rows == [{"step": 2, "train_loss": pytest.approx(first), "lr": pytest.approx(0.1), "tokens_per_s": 2.5},
                    {"step": 2, "val_loss": 3.0},
                    {"step": 4, "train_loss": pytest.approx(second), "lr": pytest.approx(0.1), "tokens_per_s": 4.5},
                    {"step": 4, "val_loss": 2.0},
                    {"step": 5, "val_loss": 1.0}]
    assert (progress.step, progress.train_seconds, progress.best, progress.best_step) == (5, 5.0, 1.0, 5)
    (bar,) = shown
    assert bar.calls == [("start", 5, 0)] + [("update", s, 5, pytest.approx(sums[s - 1]), n)
                                              for s, n in ((1, 2), (2, 3))] + [
        ("postfix", {"loss": f"{first:.3f}", "lr": "1.00e-01", "tok_s": "2"})] + [
        ("update", s, 5, pytest.approx(sums[s - 1]), n) for s, n in ((3, 4), (4, 5))] + [
        ("postfix", {"loss": f"{second:.3f}", "lr": "1.00e-01", "tok_s": "4"}),
        ("update", 5, 5, pytest.approx(sums[4]), 6), ("close",)]
    assert not (tmp_path / "curves.png").exists() and not (tmp_path / "tb").exists()


def test_a_run_paused_between_evaluations_evaluates_where_it_stops(tmp_path, monkeypatch):
    t, seen = counted_run(tmp_path, monkeypatch, max_steps=5, eval_every=2, log_every=5, stop_at_step=3)
    assert fit(t).step == 3 and len(seen) == 3
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 2, "val_loss": 3.0}, {"step": 3, "val_loss": 2.0}]


def saved_step(tmp_path):
    return json.loads((tmp_path / "checkpoints" / "last" / "state.json").read_text())["progress"]["step"]


@pytest.mark.parametrize("signal_at, steps", [(3, 5), (5, 5)])
def test_a_stop_signal_saves_the_step_under_way_unless_it_was_the_last(
        tmp_path, monkeypatch, handlers_from_before_the_run, signal_at, steps):
    t, seen = counted_run(tmp_path, monkeypatch, max_steps=steps, eval_every=2, log_every=5)
    real = t.loss_fn

    def loss_then_signal(model, batch):
        if len(seen) == signal_at - 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(model, batch)

    t.loss_fn = loss_then_signal
    if signal_at < steps:
        with pytest.raises(KeyboardInterrupt):
            t.fit()
    else:  # the run has just ended: nothing to interrupt
        assert fit(t).step == steps
    assert len(seen) == signal_at and saved_step(tmp_path) == signal_at


def test_before_its_first_step_or_first_second_a_run_expects_max_steps():
    """No rate to extrapolate yet: the bar's total is max_steps, whatever the time budget."""
    from seqlab.train.loop import expected_steps
    from test_trainer_step import settings

    config = settings(max_steps=50, max_time=10.0)
    assert expected_steps(0, 5.0, config) == expected_steps(4, 0.0, config) == 50
    assert expected_steps(4, 5.0, config) == 8  # 4 steps in 5 s: 8 in the budget's 10
    assert expected_steps(4, 1.0, config) == 40 and expected_steps(4, 0.5, config) == 50  # never past max_steps
    assert expected_steps(4, 5.0, settings(max_steps=50)) == 50  # no budget: max_steps


def test_a_window_of_one_item_logs_that_items_loss(tmp_path):
    import copy

    from test_trainer_step import data, fit, mse, tiny

    x, y = data(1)
    t = tiny(tmp_path, [{"x": x, "y": y}], max_steps=1, log_every=1, eval_every=1)
    with torch.no_grad():
        expected = mse(copy.deepcopy(t.model), {"x": x, "y": y})[0].item()
    fit(t)
    (row,) = [r for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines()) if "train_loss" in r]
    assert row["step"] == 1 and row["train_loss"] == pytest.approx(expected, rel=1e-6)


def test_a_resumed_run_counts_its_training_time_on_from_the_saved_seconds(tmp_path, monkeypatch):
    paused, _ = counted_run(tmp_path, monkeypatch, max_steps=4, eval_every=2, log_every=5, stop_at_step=2)
    assert fit(paused).train_seconds == 2.0  # two batches, a second each
    resumed, seen = counted_run(tmp_path, monkeypatch, max_steps=4, eval_every=2, log_every=5, stop_at_step=2)
    progress = fit(resumed, resume=True)
    assert (progress.step, len(seen), progress.train_seconds) == (4, 2, 4.0)


def test_best_keeps_weights_and_state_only_last_also_the_optimizer(tmp_path):
    """``best`` is what from_pretrained and eval read: no optimizer moments (for Adam, twice the weights'
    size); ``last`` is what --resume reads: with them."""
    from seqlab.train import checkpoint

    make_trainer(tmp_path, max_steps=4, eval_every=2).fit()
    best, last = tmp_path / "checkpoints" / "best", tmp_path / "checkpoints" / "last"
    assert (best / "model.safetensors").is_file() and (best / "state.json").is_file()
    assert not checkpoint.has_training_state(best)
    assert checkpoint.has_training_state(last)
