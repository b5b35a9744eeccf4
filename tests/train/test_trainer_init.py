"""What a Trainer is built with: its defaults (the metric that picks the best checkpoint, lower being better,
the noam schedule's d_model), the deadline and clock it is given, the precision it trains in before fit, and
the curves it draws."""

import pytest
import torch

from seqlab.parallel.runtime import SingleProcess
from seqlab.train import device
from seqlab.train.loop import DEADLINE_PASSED, Trainer

from test_trainer_clock import Clock  # pytest puts this directory on sys.path
from test_trainer_step import Line, Listed, data, fit, mse, settings


def built(tmp_path, clock=None, deadline=None, parallel=None, **overrides):
    x, y = data(4)
    torch.manual_seed(0)
    extra = {"clock": clock} if clock else {}
    extra.update({"parallel": parallel} if parallel else {})
    return Trainer(Line(), settings(**overrides), tmp_path, mse, Listed([{"x": x, "y": y}]),
                   lambda m: {"val_loss": 1.0, "val_accuracy": 0.5}, deadline=deadline, **extra)


def test_by_default_val_loss_picks_the_best_checkpoint_and_lower_is_better(tmp_path):
    t = built(tmp_path)
    assert t.select == "val_loss" and t.maximize is False
    t.progress.best = 2.0
    assert t._improved(1.0) and not t._improved(3.0)


def test_the_noam_schedule_defaults_to_d_model_512(tmp_path):
    """lrate = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5) at step 1 (Vaswani et al. 2017 §5.3)."""
    t = built(tmp_path, schedule="noam", warmup_steps=4)
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(512 ** -0.5 * 4 ** -1.5)


def test_a_deadline_already_passed_stops_the_run_before_its_first_step(tmp_path):
    t = built(tmp_path, clock=Clock(10.0), deadline=5.0, max_steps=4)
    progress = fit(t)
    assert (progress.step, progress.stopped) == (0, DEADLINE_PASSED)
    (tmp_path / "later").mkdir()
    assert fit(built(tmp_path / "later", clock=Clock(1.0, step=0.01), deadline=5.0, max_steps=4)).step == 4


def test_the_checkpoints_go_to_the_run_directorys_checkpoints(tmp_path):
    t = built(tmp_path, max_steps=2, eval_every=2)
    fit(t)
    assert t.checkpoints == tmp_path / "checkpoints"
    assert sorted(p.name for p in t.checkpoints.iterdir()) == ["best", "last"]


@pytest.mark.parametrize("select, valid", [("val_accuracy", "val_accuracy"), ("bleu", "val_loss"), (None, "val_loss")])
def test_the_curves_show_the_selected_metric_when_they_can_else_the_validation_loss(tmp_path, monkeypatch, select,
                                                                                    valid):
    from seqlab.viz import curves

    calls = []
    monkeypatch.setattr(curves, "plot_curves", lambda *args, **kwargs: calls.append((args, kwargs)))
    (tmp_path / "run").mkdir()
    t = built(tmp_path / "run")
    t.select = select
    t.draw_curves()
    run = tmp_path / "run"
    assert calls == [(({"run": run}, run / "curves.png"), {"title": "run: training", "valid": valid})]


class FirstOfTwo(SingleProcess):
    """Rank 0 of 2 processes, as far as choosing the device goes."""

    world = 2


def test_the_device_is_chosen_for_the_number_of_processes(tmp_path, monkeypatch):
    """Apple's MPS serves one process only: with two, "auto" falls back to the CPU."""
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "mps_available", lambda: True)
    t = built(tmp_path, device="auto", parallel=FirstOfTwo())
    assert t.device == torch.device("cpu") and t.model.weight.device.type == "cpu"


def test_under_a_time_budget_the_schedules_first_step_is_as_far_along_as_the_time_spent(tmp_path):
    """Half the budget spent at step 1 of 100: the schedule is read at step max(1, 0.5 · 100) = 50
    (seqlab.train.optim.scheduled_step); a linear warmup over 100 steps gives (50 + 1) / 100 of the rate."""
    clock = Clock(0.0)
    t = built(tmp_path, clock=clock, schedule="constant", warmup_steps=100, max_steps=100, max_time=10.0, lr=0.1)
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 100)  # before training: step 0, no time
    t._segment_start, clock.now = 0.0, 5.0  # as fit sets it; then 5 s of training
    t.optimizer.step()  # no gradients yet: moves nothing (torch wants it before the schedule's step)
    t.schedule.step()
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 51 / 100)


def test_compile_compiles_the_training_step_only(tmp_path):
    plain = built(tmp_path)
    assert plain.train_model is plain.model
    compiled = built(tmp_path, compile=True)  # torch.compile is lazy: nothing is compiled until it runs
    assert isinstance(compiled.train_model, torch._dynamo.eval_frame.OptimizedModule)
    assert compiled.train_model._orig_mod is compiled.model
