"""Training curves: the right-hand panel draws the validation metric the task logs."""

import json

import matplotlib.figure
import pytest

from seqlab.viz.curves import plot_curves


@pytest.mark.parametrize("metric, scale", [("val_loss", "log"), ("val_mse", "log"), ("val_accuracy", "linear")])
def test_the_validation_panel_draws_the_tasks_metric(tmp_path, monkeypatch, metric, scale):
    rows = [{"step": 10, "train_loss": 2.0}, {"step": 10, metric: 0.5}, {"step": 20, "train_loss": 1.0},
            {"step": 20, metric: 0.25}, {"step": 20, "val_other": 9.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    plot_curves({"run": tmp_path}, tmp_path / "curves.png", valid=metric)
    train_ax, valid_ax = saved[0].axes
    assert list(train_ax.get_lines()[0].get_ydata()) == [2.0, 1.0]
    assert list(valid_ax.get_lines()[0].get_ydata()) == [0.5, 0.25] and valid_ax.get_yscale() == scale
