"""Quantile forecasts: the levels a forecaster predicts, the pinball loss that trains them, and the
calibration of the intervals they span.

A forecaster with quantiles (τ_1 < … < τ_Q) returns (B, H, C, Q): per horizon step and channel one
value per level, trained by the pinball (quantile) loss of Koenker & Bassett (1978), averaged over the
levels as MQ-RNN (Wen et al., 2017) and the Temporal Fusion Transformer (Lim et al., 2021 §4.3) do.
The median (0.5) is always among the levels: it is the point forecast MSE and MAE are scored on.

A model's quantiles fit its training windows; on new data they are often too narrow. Split conformal
calibration corrects them on held-out windows: :func:`conformal_offsets` shifts each level by the
empirical quantile of its residuals there (conformalized quantile regression, Romano, Patterson &
Candès, 2019, with each tail calibrated on its own as in their asymmetric variant), which a forecaster
then adds in eval mode (its config's ``calibration``). :func:`rolling_calibrated` does it again every
H origins on the latest windows known by then, for a series whose spread drifts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

MEDIAN = 0.5


def level_text(level: float) -> str:
    """A level as text: the shortest that reads back as the same number (0.1, 0.9999999), never rounded,
    so that two levels never share a name and a level inside (0, 1) never reads as 0 or 1."""
    return repr(float(level))


def check_quantiles(levels: str | Iterable[float]) -> tuple[float, ...]:
    """The quantile levels as a sorted tuple with 0.5 added when missing; ``levels`` a comma list
    ("0.1,0.9") or numbers. Empty stays empty (point forecasts). A ValueError for a level outside (0, 1)
    or one that is not a number."""
    if isinstance(levels, str):
        words = [w.strip() for w in levels.split(",") if w.strip()]
        try:
            values = [float(w) for w in words]
        except ValueError:
            raise ValueError(f"quantiles must be numbers in (0, 1) separated by commas, like 0.1,0.5,0.9; "
                             f"got {levels!r}") from None
    else:
        values = [float(v) for v in levels]
        words = list(map(level_text, values))
    if not values:
        return ()
    bad = [word for word, v in zip(words, values) if not (math.isfinite(v) and 0.0 < v < 1.0)]
    if bad:  # as written: "1.0000001", not a rounded "1"
        raise ValueError(f"quantiles must lie strictly between 0 and 1; got {', '.join(bad)}")
    return tuple(sorted(set(values) | {MEDIAN}))


def median_index(levels: tuple[float, ...]) -> int:
    return levels.index(MEDIAN)


def pinball_loss(prediction: Tensor, truth: Tensor, levels: tuple[float, ...]) -> Tensor:
    """Mean over every value and level of ρ_τ(y - ŷ_τ) = max(τ·(y - ŷ_τ), (τ - 1)·(y - ŷ_τ))
    (Koenker & Bassett, 1978); prediction (..., Q), truth (...). For τ = 0.5 it is half the absolute error."""
    tau = torch.as_tensor(levels, dtype=prediction.dtype, device=prediction.device)  # (Q,)
    diff = truth.unsqueeze(-1) - prediction  # (..., Q)
    return torch.maximum(tau * diff, (tau - 1) * diff).mean()


def central_intervals(levels: tuple[float, ...]) -> dict[str, tuple[int, int]]:
    """The central intervals the levels span, named by their nominal coverage in percent: levels
    0.1 and 0.9 give {"80": (index of 0.1, index of 0.9)}. A level without its mirror 1 - τ spans none."""
    intervals = {}
    for i, low in enumerate(levels):
        if low >= MEDIAN:
            break
        high = next((j for j, v in enumerate(levels) if math.isclose(v, 1.0 - low, abs_tol=1e-9)), None)
        if high is not None:
            intervals[f"{round(100 * (1 - 2 * low), 6):g}"] = (i, high)
    return intervals


def rearrange(prediction: Tensor) -> Tensor:
    """(..., Q) sorted along the levels, so that no two quantiles cross: the rearrangement of
    Chernozhukov, Fernández-Val & Galichon (2010), which never increases the pinball loss."""
    return prediction.sort(dim=-1).values


def quantile_errors(prediction: np.ndarray, truth: np.ndarray, levels: tuple[float, ...]) -> dict[str, float]:
    """The mean pinball loss over every value and level (``quantile_loss``) and, per central interval
    the levels span, the fraction of true values inside it (``coverage_80`` for 0.1 and 0.9);
    prediction (..., Q), truth (...)."""
    scores = {"quantile_loss": float(pinball_loss(torch.as_tensor(prediction), torch.as_tensor(truth), levels))}
    for name, (low, high) in central_intervals(levels).items():
        inside = (prediction[..., low] <= truth) & (truth <= prediction[..., high])
        scores[f"coverage_{name}"] = float(inside.mean())
    return scores


def conformal_offsets(prediction: np.ndarray, truth: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """Per channel and level, the shift δ that makes ŷ_τ + δ a τ-quantile of the held-out truths:
    over the n residuals r = y − ŷ_τ of a channel (every window and horizon step), the k-th smallest with
    k = ⌈(n + 1)·τ⌉ above the median and ⌊(n + 1)·τ⌋ below it (the finite-sample rank of split
    conformal prediction; clipped to 1 … n), so that an interval between mirrored levels covers at
    least its nominal share of exchangeable new values. The median is not moved (it is the point
    forecast). prediction (N, H, C, Q), truth (N, H, C) -> (C, Q)."""
    residual = (truth[..., None] - prediction).reshape(-1, *prediction.shape[2:])  # (n, C, Q)
    residual = np.sort(residual, axis=0)
    n = residual.shape[0]
    offsets = np.zeros(residual.shape[1:])
    for j, tau in enumerate(levels):
        if tau == MEDIAN:
            continue
        k = math.ceil((n + 1) * tau) if tau > MEDIAN else math.floor((n + 1) * tau)
        offsets[:, j] = residual[min(max(k, 1), n) - 1, :, j]
    return offsets


def check_calibration(calibration, channels: int, levels: tuple[float, ...]) -> list[list[float]]:
    """A config's ``calibration``: [] (none) or channels × levels finite numbers, as lists of floats."""
    rows = [[float(v) for v in row] for row in calibration or []]
    if rows and (len(rows) != channels or any(len(row) != len(levels) for row in rows)
                 or not all(math.isfinite(v) for row in rows for v in row)):
        raise ValueError(f"calibration must hold {channels} rows (channels) of {len(levels)} finite offsets "
                         f"(quantile levels), or be empty")
    return rows


def calibrated(prediction: Tensor, calibration: list[list[float]], levels: tuple[float, ...]) -> Tensor:
    """(..., C, Q) quantiles sorted (:func:`rearrange`), then shifted by the offsets (C, Q), each level
    kept from crossing the one next to it towards the median (going outwards from the median, a level
    is at most the one inside it below the median, at least above): a shift never moves the point
    forecast, and a crossing only ever widens an interval."""
    prediction = rearrange(prediction)
    if not calibration:
        return prediction
    shifted = prediction + torch.tensor(calibration, dtype=prediction.dtype, device=prediction.device)
    m = median_index(levels)
    median = prediction[..., m : m + 1]
    below, inner = [], median
    for j in reversed(range(m)):  # a loop over the few levels (not cummin): it exports to ONNX
        inner = torch.minimum(shifted[..., j : j + 1], inner)
        below.insert(0, inner)
    above, inner = [], median
    for j in range(m + 1, len(levels)):
        inner = torch.maximum(shifted[..., j : j + 1], inner)
        above.append(inner)
    return torch.cat([*below, median, *above], dim=-1)


def rolling_calibrated(prediction: np.ndarray, truth: np.ndarray, levels: tuple[float, ...], *, first: int,
                       window: int, fallback: list[list[float]]) -> np.ndarray:
    """Split conformal calibration on a sliding set (as Gibbs & Candès, "Adaptive Conformal Inference
    Under Distribution Shift", 2021, discuss for a series whose spread drifts): the raw forecasts of
    consecutive windows (each origin one step after the one before), windows ``first`` … calibrated
    block by block of H origins, each block by the :func:`conformal_offsets` of the latest ``window``
    windows whose every value is known at the block's first origin (window j's at window i's when
    j ≤ i − H) and by ``fallback`` (C, Q) when fewer are known or their residuals are not finite.
    prediction (N, H, C, Q), truth (N, H, C) -> (N − first, H, C, Q), as :func:`calibrated` gives them."""
    horizon = prediction.shape[1]
    blocks = []
    for i in range(first, len(prediction), horizon):
        known = i - horizon + 1  # windows 0 … i − H
        offsets = fallback
        if window and known >= window:
            fitted = conformal_offsets(prediction[known - window : known], truth[known - window : known], levels)
            offsets = fitted.tolist() if np.isfinite(fitted).all() else fallback
        blocks.append(calibrated(torch.from_numpy(prediction[i : i + horizon]), offsets, levels).numpy())
    return np.concatenate(blocks) if blocks else prediction[first:]
