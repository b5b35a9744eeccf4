"""Forecast pictures: predicted against true values for sample windows, and how much attention the
model paid to each past time step (attention shows which hours a forecast used)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_forecasts(history: np.ndarray, truth: np.ndarray, forecast: np.ndarray, path: Path,
                   channel: str, title: str = "forecast",
                   intervals: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
    """history (K, L), truth and forecast (K, H) for K sample windows of one channel -> PNG, a panel each.
    ``intervals``: per central interval, named by its coverage in percent ("80"), its lower and upper
    bounds (K, H) each, shaded around the forecast (the widest palest)."""
    k = len(history)
    fig, axes = plt.subplots(k, 1, figsize=(10, 2.4 * k), squeeze=False)
    L, H = history.shape[1], truth.shape[1]
    bands = sorted((intervals or {}).items(), key=lambda item: -float(item[0]))  # widest first, drawn under
    for i, ax in enumerate(axes[:, 0]):
        for n, (name, (low, high)) in enumerate(bands):
            ax.fill_between(range(L, L + H), low[i], high[i], color="tab:orange", alpha=0.15 + 0.15 * n,
                            linewidth=0, label=f"{name}% interval")
        ax.plot(range(L), history[i], color="0.4", label="input")
        ax.plot(range(L, L + H), truth[i], color="tab:blue", label="truth")
        ax.plot(range(L, L + H), forecast[i], color="tab:orange", label="median forecast" if bands else "forecast")
        ax.axvline(L - 0.5, color="0.7", linestyle="--")
        ax.set_ylabel(channel)
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(loc="upper left")
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_attention_over_time(weights: np.ndarray, path: Path, unit: str = "time step",
                             title: str = "attention over the input window") -> None:
    """weights (heads, P): attention each past position received, averaged over queries -> PNG."""
    fig, ax = plt.subplots(figsize=(10, 3))
    image = ax.imshow(weights, aspect="auto", cmap="viridis")
    ax.set_xlabel(f"{unit} of the input window (left = oldest)")
    ax.set_ylabel("head")
    ax.set_yticks(range(len(weights)), [str(h + 1) for h in range(len(weights))])
    fig.colorbar(image, ax=ax, label="mean attention")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_backtest(stamps, values: np.ndarray, fold_stamps: list, forecasts: np.ndarray, path: Path,
                  channel: str, title: str = "backtest",
                  intervals: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, history: str = "truth") -> None:
    """One channel's tail, ``values`` (T,) at ``stamps`` (labelled ``history``), with K folds' forecasts
    (K, H), fold k drawn at ``fold_stamps[k]`` (H timestamps), a dashed line at each forecast's start;
    ``intervals`` as for :func:`plot_forecasts` ((K, H) bounds each) -> PNG."""
    fig, ax = plt.subplots(figsize=(11, 3.6))
    ax.plot(stamps, values, color="tab:blue", label=history)
    bands = sorted((intervals or {}).items(), key=lambda item: -float(item[0]))  # widest first, drawn under
    for k, when in enumerate(fold_stamps):
        for n, (name, (low, high)) in enumerate(bands):
            ax.fill_between(when, low[k], high[k], color="tab:orange", alpha=0.15 + 0.15 * n, linewidth=0,
                            label=f"{name}% interval" if k == 0 else None)
        ax.plot(when, forecasts[k], color="tab:orange",
                label=("median forecast" if bands else "forecast") if k == 0 else None)
        ax.axvline(when[0], color="0.7", linestyle="--", linewidth=0.8)
    ax.set_ylabel(channel)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
