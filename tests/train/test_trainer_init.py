"""What a Trainer is built with: its defaults (the metric that picks the best checkpoint, lower being better,
the noam schedule's d_model), the deadline and clock it is given, the precision it trains in before fit, and
the curves it draws."""

import pytest
import torch

from seqlab.train.loop import DEADLINE_PASSED, Trainer

from test_trainer_clock import Clock  # pytest puts this directory on sys.path
from test_trainer_step import Line, Listed, data, mse, settings


def built(tmp_path, clock=None, deadline=None, **overrides):
    x, y = data(4)
    torch.manual_seed(0)
    extra = {"clock": clock} if clock else {}
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
    progress = t.fit()
    assert (progress.step, progress.stopped) == (0, DEADLINE_PASSED)
    (tmp_path / "later").mkdir()
    assert built(tmp_path / "later", clock=Clock(1.0, step=0.01), deadline=5.0, max_steps=4).fit().step == 4


def test_the_checkpoints_go_to_the_run_directorys_checkpoints(tmp_path):
    t = built(tmp_path, max_steps=2, eval_every=2)
    t.fit()
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
