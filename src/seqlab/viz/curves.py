"""Training curves of one or several runs, from their ``metrics.jsonl``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..train.loop import read_metrics  # noqa: E402


def plot_curves(runs: dict[str, Path], path: Path, title: str = "training curves") -> None:
    """Left: training loss per step; right: validation loss at each evaluation; one line per run."""
    fig, (train_ax, valid_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in runs.items():
        rows = list(read_metrics(run))
        train = [(r["step"], r["train_loss"]) for r in rows if "train_loss" in r]
        valid = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
        if train:
            train_ax.plot(*zip(*train), label=name)
        if valid:
            valid_ax.plot(*zip(*valid), marker="o", label=name)
    train_ax.set(xlabel="step", ylabel="training loss (with any label smoothing)", yscale="log", title="train")
    valid_ax.set(xlabel="step", ylabel="validation loss (nats/token)", yscale="log", title="validation")
    for ax in (train_ax, valid_ax):
        ax.grid(True, alpha=0.3)
        if ax.get_lines():
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
