"""Training curves of one or several runs, from their ``metrics.jsonl``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from ..io import read_metrics  # noqa: E402


# What the right-hand panel shows, by the validation metric a task's runs log.
VALIDATION_AXES = {"val_loss": ("validation loss (nats/token)", "log"),
                   "val_mse": ("validation MSE (standardised)", "log"),
                   "val_quantile_loss": ("validation pinball loss (standardised)", "log"),
                   "val_accuracy": ("validation accuracy", "linear")}


class PlainLogFormatter(ticker.LogFormatter):
    """Log-axis labels as plain numbers ("0.6", "2", "10"), not "6×10⁻¹" or "6e-01"; which ticks get a
    label is still matplotlib's choice (every decade, and the minor ticks between when the axis spans
    little)."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def plain_log_ticks(ax) -> None:
    if ax.get_yscale() == "log":
        ax.yaxis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def plot_curves(runs: dict[str, Path], path: Path, title: str = "training curves", valid: str = "val_loss") -> None:
    """Left: training loss per step; right: the validation metric ``valid`` at each evaluation; one
    line per run, in the run's own colour in both panels."""
    fig, (train_ax, valid_ax) = plt.subplots(1, 2, figsize=(11, 4))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, run) in enumerate(runs.items()):
        colour = palette[i % len(palette)]
        rows = list(read_metrics(run))
        train = [(r["step"], r["train_loss"]) for r in rows if "train_loss" in r]
        validation = [(r["step"], r[valid]) for r in rows if valid in r]
        if train:
            train_ax.plot(*zip(*train), color=colour, label=name)
        if validation:
            valid_ax.plot(*zip(*validation), marker="o", color=colour, label=name)
    valid_label, valid_scale = VALIDATION_AXES[valid]
    train_ax.set(xlabel="step", ylabel="training loss", yscale="log", title="train")
    valid_ax.set(xlabel="step", ylabel=valid_label, yscale=valid_scale, title="validation")
    for ax in (train_ax, valid_ax):
        plain_log_ticks(ax)
        ax.grid(True, alpha=0.3)
        if ax.get_lines():
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
