"""Backtesting a forecaster: rolling-origin evaluation over the last K windows of a file's test part
(Tashman 2000, "Out-of-sample tests of forecasting accuracy", §2: rolling forecast origins).

    seqlab eval RUN --csv FILE --backtest --folds K [--refit] [--plot backtest.png]

The test part of FILE begins where the run's own ``data.split`` puts it when applied to FILE (the
first predicted row of ``split_bounds``' test range) and runs to FILE's last row. With N rows and
horizon H, fold k = 1 … K (oldest first) forecasts rows [N - (K - k + 1)·H, N - (K - k)·H) from the
``input_len`` rows just before them: the K forecast windows are disjoint, each origin one horizon
after the previous one, and the last ends at FILE's last row. A fold's ``origin`` is the timestamp of
the last row the model reads; ``forecast_start`` and ``forecast_end`` bound the rows it predicts.

By default every fold uses the trained model as it is. With ``--refit`` each fold retrains a copy of
the run's config (its own model and train settings, its seed; ``train.precision=auto`` refits in
fp32) on the rows before that fold's origin only: the last rows before the origin, as many as FILE's validation part under the run's split,
select the checkpoint, the rest train it and fit its scaler. Standardised scores are on the run's own
scale in both modes (a refit fold's forecast is put back into the data's units with its own scaler,
then standardised as the run standardises), so folds and modes compare; ``*_original`` scores are in
the data's units.
"""

from __future__ import annotations

import copy
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import timeseries as ts
from ..errors import DataError, UserError
from ..io import check_new_file
from ..models.quantiles import central_intervals, level_text, median_index
from .forecast_calibration import forecast_after


@dataclass
class Backtest:
    """Per fold (K, oldest first): the row where its forecast starts, its forecasts (K, H, C) or
    (K, H, C, Q) and truths (K, H, C), standardised on the run's scale, and its scores."""

    series: ts.Series
    starts: list[int]  # first predicted row of each fold
    prediction: np.ndarray
    truth: np.ndarray
    scores: list[dict[str, float]]
    refit: bool

    def report(self) -> dict[str, Any]:
        """What ``seqlab eval --backtest`` prints: each fold, the mean over folds, and K."""
        stamps = self.series.timestamps
        horizon = self.truth.shape[1]
        folds = [{"origin": str(stamps[start - 1]), "forecast_start": str(stamps[start]),
                  "forecast_end": str(stamps[start + horizon - 1]), **scores}
                 for start, scores in zip(self.starts, self.scores)]
        mean = {key: float(np.mean([s[key] for s in self.scores])) for key in self.scores[0]}
        return {"folds": folds, "mean": mean, "folds_requested": len(self.starts),
                "model": "refit before each origin" if self.refit else "the trained run, fixed"}


def first_test_row(n_rows: int, split: str, input_len: int, horizon: int) -> int:
    """The first predicted row of the test part of a file of ``n_rows`` under the run's ``split``
    (a DataError when the split does not fit the file)."""
    return ts.split_bounds(n_rows, split, input_len, horizon)["test"][0] + input_len


def rows_needed(split: str, input_len: int, horizon: int, folds: int) -> int:
    """The fewest rows a file needs for its test part to hold ``folds`` windows of ``horizon``."""
    if split == "ett":  # 12 + 4 months, then the test part runs to the file's end
        return max(sum(ts.ETT_HOURS), ts.ETT_HOURS[0] + ts.ETT_HOURS[1] + folds * horizon)
    n = max(input_len + folds * horizon, math.floor(folds * horizon / float(split.split(",")[2])) - 1)
    for n in range(n, n + 100_000):  # the first n whose split works and leaves enough test rows
        try:
            if n - first_test_row(n, split, input_len, horizon) >= folds * horizon:
                return n
        except DataError:
            continue
    return n


def fold_starts(n_rows: int, split: str, input_len: int, horizon: int, folds: int, path) -> list[int]:
    """The first predicted row of each of the last ``folds`` windows, oldest first, the last ending
    at row ``n_rows - 1``; a DataError when the test part is too short."""
    if folds < 1:
        raise UserError(f"--folds must be at least 1; got {folds}")
    try:
        start = first_test_row(n_rows, split, input_len, horizon)
    except DataError:  # the split's own message would offer a --split flag, which eval has not
        start = None
    if start is None or n_rows - start < folds * horizon:
        need = rows_needed(split, input_len, horizon, folds)
        part = (f"{n_rows - start} of them in its test part" if start is not None
                else "too few for the run's split to give it a test part")
        fewer = f" or at most {(n_rows - start) // horizon} folds" if start is not None and n_rows - start >= horizon else ""
        raise DataError(f"{path} has {n_rows} rows, {part} (the run's split: {split}); {folds} folds of horizon "
                        f"{horizon} need {folds * horizon} test rows, after input_len = {input_len} rows: give a "
                        f"file of at least {need} rows{fewer}")
    return [n_rows - (folds - k) * horizon for k in range(folds)]


def backtest(forecast, path: str | Path, folds: int, refit: bool = False) -> Backtest:
    """Rolling-origin scores of a trained run (a ``Forecast``) over the last ``folds`` windows of the
    CSV at ``path`` (see the module's docstring for which rows)."""
    from .forecast import window_errors

    d = forecast.config.data
    if refit and forecast.config.model.arch == "auto":
        raise UserError("--refit retrains the run's model, and this run averages several (--model auto --top-k): "
                        "backtest it without --refit")
    L, H = d.input_len, d.horizon
    series = forecast.read_csv(path, L + H, f"a window needs input_len + horizon = {L + H}")
    starts = fold_starts(len(series.values), d.split, L, H, folds, path)
    scaled = forecast.scaler.transform(series.values)
    predictions, truths = [], []
    for start in starts:
        if refit:
            prediction, truth = refit_prediction(forecast, series, start, path)
        else:  # one window: the input_len rows before the fold, then its horizon
            window = ts.Windows(scaled[start - L:start + H], L, H, forecast.future).batch([0])
            batch = {key: value.to(forecast.device) for key, value in window.items()}
            prediction = forecast_after(forecast.model, forecast.config, scaled[:start], batch, forecast.device,
                                        forecast.future).float().cpu().numpy()  # calibrated on the windows before it
            truth = window["y"].numpy()
        predictions.append(prediction[0])
        truths.append(truth[0])
    prediction, truth = np.stack(predictions), np.stack(truths)
    scores = [window_errors(p[None], t[None], forecast.targets, forecast.scaler, forecast.levels)
              for p, t in zip(prediction, truth)]
    return Backtest(series, starts, prediction, truth, scores, refit)


def refit_prediction(forecast, series: ts.Series, start: int, path) -> tuple[np.ndarray, np.ndarray]:
    """Train a copy of the run's config on rows [0, start) of ``series`` and forecast rows
    [start, start + H): (1, H, C[, Q]) and the truth (1, H, C), both on the run's standardised scale."""
    from .forecast import train, unscale

    config = copy.deepcopy(forecast.config)
    d, t = config.data, config.train
    L, H = d.input_len, d.horizon
    t.progress, t.tensorboard, t.device = False, False, forecast.device.type
    if t.precision == "auto":  # no timing trial per fold (it would print, and pick anew): fp32
        t.precision = "fp32"
    bounds = ts.split_bounds(len(series.values), d.split, L, H)
    n_valid = bounds["valid"][1] - bounds["valid"][0] - L  # rows FILE's validation part predicts
    train_end = start - n_valid
    if train_end < L + H:
        raise DataError(f"{path}: --refit at row {start} leaves {train_end} training rows before its "
                        f"{n_valid} validation rows; a window needs input_len + horizon = {L + H}")
    rows = {"train": (0, train_end), "valid": (train_end - L, start)}
    rows["test"] = rows["valid"]  # train() scores a test part: here the validation rows again
    prefix = replace(series, values=series.values[:start], timestamps=series.timestamps[:start])
    with tempfile.TemporaryDirectory(prefix="seqlab-refit-") as folder:
        fitted, _ = train(config, Path(folder), prefix, log=lambda *args, **kwargs: None, bounds=rows)
    scaled = fitted.scaler.transform(series.values[:start + H])
    window = ts.Windows(scaled[start - L:], L, H, series.future).batch([0])
    with torch.no_grad():  # x (1, L, C), future covariates (1, H, F) when the run has them
        batch = {key: value.to(fitted.device) for key, value in window.items()}
        own = forecast_after(fitted.model.eval(), fitted.config, scaled[:start], batch, fitted.device,
                             series.future)  # calibrated on the windows before the fold
        own = own.float().cpu().numpy()  # (1, H, C) or (1, H, C, Q) on the fold's scale
    prediction = standardise(forecast.scaler, unscale(fitted.scaler, own))  # the run's scale
    truth = forecast.scaler.transform(series.values[start:start + H])[None]  # (1, H, C)
    return prediction, truth


def standardise(scaler, a: np.ndarray) -> np.ndarray:
    """(..., C) values, or (..., C, Q) quantiles, in the data's units -> standardised by ``scaler`` (whose
    first C columns they are: a model with covariates forecasts the modelled columns only)."""
    channels = a.shape[-2] if a.ndim == 4 else a.shape[-1]
    mean, scale = scaler.mean_[:channels], scaler.scale_[:channels]
    return (a - mean[:, None]) / scale[:, None] if a.ndim == 4 else (a - mean) / scale


def plot_backtest(result: Backtest, forecast, path: Path) -> None:
    """The target's tail (the input window of the first fold onwards) in the data's units, with each
    fold's forecast (and its central intervals for a quantile model)."""
    from ..viz.forecast import plot_backtest as draw
    from .forecast import unscale

    d = forecast.config.data
    target = forecast.columns.index(d.target)
    first = result.starts[0] - d.input_len
    shown = unscale(forecast.scaler, result.prediction)[:, :, target]  # (K, H) or (K, H, Q)
    levels = forecast.levels
    point = shown[..., median_index(levels)] if levels else shown
    bands = {name: (shown[..., low], shown[..., high]) for name, (low, high) in central_intervals(levels).items()}
    stamps = result.series.timestamps
    draw(stamps[first:], result.series.values[first:, target],
         [stamps[s:s + point.shape[1]] for s in result.starts], point, path, d.target,
         f"{forecast.config.model.arch}: backtest over {len(result.starts)} folds"
         + (" (refit before each origin)" if result.refit else ""), bands)


def check_new_png(plot: str) -> None:
    """A UserError unless ``plot`` names a new .png file."""
    if Path(plot).suffix.lower() != ".png":
        raise UserError(f"--plot writes a PNG picture: give a file name ending in .png, not {plot}")
    check_new_file(plot, "--plot")


def plot_prediction(forecast, csv: str | Path, frame, path: Path) -> None:
    """``seqlab predict --plot``: the target's last input_len rows of ``csv`` in the data's units and
    the forecast ``frame`` after them (with its central intervals for a quantile model)."""
    from ..viz.forecast import plot_backtest as draw

    d = forecast.config.data
    series = forecast.read_csv(csv, d.input_len, f"the model reads the last {d.input_len}", ahead=True)
    target = forecast.columns.index(d.target)
    names = {name: tuple(f"{d.target}_q{level_text(forecast.levels[i])}" for i in (low, high))
             for name, (low, high) in central_intervals(forecast.levels).items()}
    bands = {name: (frame[low].to_numpy()[None], frame[high].to_numpy()[None]) for name, (low, high) in names.items()}
    draw(series.timestamps[-d.input_len:], series.values[-d.input_len:, target], [frame[d.date_col]],
         frame[d.target].to_numpy()[None], path, d.target, f"{forecast.config.model.arch}: forecast after "
         f"{series.timestamps[-1]}", bands, history="observed")


def evaluate(forecast, options: dict[str, Any]) -> dict[str, Any]:
    """``seqlab eval RUN --csv FILE --backtest --folds K [--refit] [--plot FILE.png]``."""
    if not options.get("backtest"):
        given = [f"--{name}" for name in ("folds", "refit", "plot") if options.get(name) is not None]
        if given:
            raise UserError(f"{', '.join(given)} only {'goes' if len(given) == 1 else 'go'} with --backtest")
        return forecast.evaluate_csv(options["csv"])
    if forecast.config.data.id_col:
        raise UserError(f"--backtest scores a run on one series; this one was trained on a long-format CSV "
                        f"(--id-col {forecast.config.data.id_col}): seqlab eval RUN --csv FILE scores every id's "
                        f"windows")
    if options.get("folds") is None:
        raise UserError("--backtest needs --folds K: how many windows, each one horizon long, end at the file's last row")
    plot = options.get("plot")
    if plot is not None:
        check_new_png(plot)
    result = backtest(forecast, options["csv"], options["folds"], bool(options.get("refit")))
    if plot is not None:
        plot_backtest(result, forecast, Path(plot))
    return result.report()
