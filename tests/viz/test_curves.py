"""Training curves: the right-hand panel draws the validation metric the task logs."""

import json
import re

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


def write_run(path, train, valid):
    path.mkdir()
    rows = [{"step": s, "train_loss": v} for s, v in train] + [{"step": s, "val_loss": v} for s, v in valid]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_model_keeps_its_colour_in_both_panels_and_log_ticks_are_plain(tmp_path, monkeypatch):
    # "b" has no training curve: the panels' own colour cycles would give "c" different colours.
    runs = {"a": write_run(tmp_path / "a", [(0, 4.0), (10, 2.0)], [(10, 3.0)]),
            "b": write_run(tmp_path / "b", [], [(10, 2.5)]),
            "c": write_run(tmp_path / "c", [(0, 5.0), (10, 1.5)], [(10, 1.2)])}
    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    plot_curves(runs, tmp_path / "curves.png")
    fig = saved[0]
    train_ax, valid_ax = fig.axes
    colours = {ax: {line.get_label(): line.get_color() for line in ax.get_lines()} for ax in (train_ax, valid_ax)}
    assert colours[train_ax] == {name: colours[valid_ax][name] for name in ("a", "c")}
    assert len(set(colours[valid_ax].values())) == 3
    fig.canvas.draw()
    for ax in (train_ax, valid_ax):
        labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True) if t.get_text()]
        assert labels and all(re.fullmatch(r"[0-9.]+", label) for label in labels), labels  # not "2×10⁰"
