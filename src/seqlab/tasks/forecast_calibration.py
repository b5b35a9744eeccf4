"""Quantile intervals recalibrated as the series goes on: the rule a run's test scores, ``eval``,
``predict`` and ``--backtest`` apply.

Training ends with split conformal calibration on the validation windows (:func:`.forecast.calibrate`):
offsets kept in the model's config, which cover new data as well as the validation period resembles it.
On a series whose spread drifts they do not: ETTh1's validation months are its more volatile ones, and
its test intervals calibrated on them cover about 90 % for a nominal 80 % (BENCHMARKS.md). So with
``model.calibration_window`` K > 0 (default 480, chosen on ETTh1's validation split), a forecast is
calibrated by the conformal offsets of the latest K windows whose values are all known at its origin,
recomputed every H origins (:func:`seqlab.models.quantiles.rolling_calibrated`; Gibbs & Candès, 2021,
on calibration under distribution shift):

- a run's test scores: on the windows from its validation split on (never its training windows, which
  the model was fitted to);
- ``eval RUN --csv FILE``: on the file's own windows before each origin;
- ``predict``: on the file's latest K windows;
- ``eval --backtest``: on those before each fold.

Where fewer than K windows are known, the model's own offsets apply, as they always do in the explorer
and an ONNX export; ``model.calibration_window=0`` keeps them everywhere. A long-format run (``--id-col``)
calibrates once.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from ..data import timeseries as ts
from ..models.quantiles import calibrated, conformal_offsets, rolling_calibrated


def rolling_window(config) -> int:
    """The run's K, or 0 where the model's own offsets apply: point forecasts, ``model.calibrate=false``,
    a long-format run."""
    m = config.model
    return m.calibration_window if m.levels and m.calibrate and not config.data.id_col else 0


def uncalibrated(model):
    """``model`` as it forecasts before its offsets: a shallow copy sharing its weights, whose config has
    no ``calibration``. The model itself is untouched, so a request served beside this one keeps them."""
    raw = copy.copy(model)
    raw.config = replace(model.config, calibration=[])
    return raw


def scored_windows(model, config, scaled: np.ndarray, rows: tuple[int, int], device, future: list[int],
                   since: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The forecasts and truths of every window of ``scaled[rows[0]:rows[1]]``, as
    :func:`.forecast.predict_windows` gives them but calibrated by the rolling rule, whose calibration
    windows are those of ``scaled`` from row ``since`` on. Without it (K = 0): predict_windows itself."""
    from .forecast import predict_windows

    d, window = config.data, rolling_window(config)
    start, end = rows
    windows = ts.Windows(scaled[start:end], d.input_len, d.horizon, future)
    if not window or len(windows) < 1:
        return predict_windows(model, windows, 256, device)
    pool = max(since, start - (window + d.horizon - 1))  # the first window any block can be calibrated on
    prediction, truth = predict_windows(uncalibrated(model), ts.Windows(scaled[pool:end], d.input_len, d.horizon,
                                                                         future), 256, device)
    modelled = truth[..., : prediction.shape[2]]  # the modelled columns come first; covariates after them
    return (rolling_calibrated(prediction, modelled, config.model.levels, first=start - pool, window=window,
                               fallback=model.config.calibration), truth[start - pool :])


@torch.no_grad()
def forecast_after(model, config, history: np.ndarray, batch: dict[str, Tensor], device, future: list[int]) -> Tensor:
    """The model's forecast of ``batch`` (windows with one origin, just after ``history``: the scaled rows
    before it), calibrated by the conformal offsets of the latest K windows of ``history``; by the
    model's own offsets when ``history`` holds fewer, or theirs are not finite, or K = 0."""
    from .forecast import forward, predict_windows

    d, window = config.data, rolling_window(config)
    rows = window + d.input_len + d.horizon - 1  # K windows
    if not window or len(history) < rows:
        return forward(model, batch)
    raw = uncalibrated(model)
    prediction, truth = predict_windows(raw, ts.Windows(history[-rows:], d.input_len, d.horizon, future), 256, device)
    offsets = conformal_offsets(prediction, truth[..., : prediction.shape[2]], config.model.levels)
    if not np.isfinite(offsets).all():
        return forward(model, batch)
    return calibrated(forward(raw, batch), offsets.tolist(), config.model.levels)
