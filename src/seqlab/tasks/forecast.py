"""Forecasting: a CSV of time series -> a trained forecaster, MSE and MAE on the test period.

    seqlab train forecast --csv ETTh1.csv --target OT --features M --input-len 336 --horizon 96 --model patch
    seqlab predict RUN_DIR --csv FILE [--out forecast.csv]
    seqlab eval RUN_DIR --csv FILE            # MSE and MAE over every window of another stretch of series
    seqlab eval RUN_DIR --csv FILE --backtest --folds K [--refit]   # rolling origin (forecast_backtest)
    seqlab train forecast --csv LONG.csv --id-col ID ...   # many series, one model (forecast_long)

Scores are on the standardised scale (fitted on the training rows), as published ETT results are, and
on the original scale (``*_original``). With ``--quantiles 0.1,0.5,0.9`` the model predicts those
quantiles (trained by the pinball loss), MSE and MAE score the median, and the scores add the mean
pinball loss (``quantile_loss``) and the coverage of each central interval (``coverage_80``).
With ``--past-cols``, ``--future-cols`` or ``--calendar`` the model reads covariates
(:mod:`seqlab.data.covariates`, :mod:`seqlab.models.covariate_forecaster`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..config import build, to_dict
from ..data import covariates as cov, timeseries as ts
from ..errors import DamagedFileError, UserError
from ..io import check_new_file
from ..models import forecasters as fm
from ..models.quantiles import (central_intervals, conformal_offsets, level_text, median_index, pinball_loss,
                                quantile_errors)
from ..parallel.runtime import SingleProcess
from ..train import checkpoint
from ..train.loop import Trainer, move
from . import forecast_calibration as rolling, forecast_long as long_format, run_dir as runs, views
from .forecast_config import ForecastConfig, ForecastDataConfig, ForecastModelConfig  # noqa: F401 (their home was here)
from .task import Flag, Task, register

TASK = "forecast"
PICTURES = (".png", ".jpg", ".jpeg", ".svg", ".pdf")  # what `predict --out` refuses: it writes CSV


def build_forecaster(c: ForecastModelConfig, channels: int, input_len: int, horizon: int):
    if c.arch == "auto":
        raise UserError("model.arch='auto' is a search over forecasters (seqlab.tasks.forecast_auto), not one")
    shape = dict(channels=channels, input_len=input_len, horizon=horizon, quantiles=c.levels)
    if c.arch == "transformer":
        return fm.TimeStepTransformer(fm.TimeStepTransformerConfig(
            **shape, d_model=c.d_model, n_heads=c.n_heads, n_layers=c.n_layers, d_ff=c.d_ff, dropout=c.dropout))
    if c.arch == "patch":
        return fm.PatchTransformer(fm.PatchTransformerConfig(
            **shape, d_model=c.d_model, n_heads=c.n_heads, n_layers=c.n_layers, d_ff=c.d_ff, dropout=c.dropout,
            patch_len=c.patch_len, stride=c.stride))
    if c.arch in ("lstm", "gru"):
        return fm.RecurrentForecaster(fm.RecurrentForecasterConfig(
            **shape, d_model=c.d_model, n_layers=c.n_layers, cell=c.arch, dropout=c.dropout))
    if c.arch == "conv1d":
        return fm.ConvForecaster(fm.ConvForecasterConfig(
            **shape, d_model=c.d_model, n_layers=c.n_layers, kernel_size=3, dropout=c.dropout))
    if c.arch == "periodic":
        return fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(**shape, period=c.period, revin=c.revin))
    return fm.LinearForecaster(fm.LinearForecasterConfig(**shape, kernel_size=c.kernel_size, revin=c.revin))


def read_series(data: ForecastDataConfig, path: str | Path | None = None,
                ahead: bool = False) -> ts.Series | long_format.Panel:
    """The series of ``path`` (default ``data.csv``) as ``data`` says to read it; with covariates
    arranged by :func:`seqlab.data.covariates.read_series` (``ahead``: keep the rows to forecast)."""
    path = path or data.csv
    if not path:
        raise UserError("no data: give --csv FILE (or data.csv in a config)")
    if data.id_col:  # many series, one long-format file
        return long_format.read(data)  # covariates with --id-col are refused by the config
    if cov.has_covariates(data):
        return cov.read_series(path, data, ahead)
    return ts.read_series(path, data.date_col, data.target, data.features, data.fill, ahead=ahead)


def with_covariates(model, series: ts.Series, c: ForecastModelConfig):
    """``model`` wrapped to read the series' covariates (:class:`CovariateForecaster`); as it is without any."""
    from ..models.covariate_forecaster import CovariateForecaster

    if not (series.past or series.future):
        return model
    return CovariateForecaster.around(model, len(series.past), len(series.future), c.d_model, c.dropout)


def forward(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's forecast of a batch of windows (with its future covariates when it has them)."""
    return model(batch["x"], batch["future"]) if "future" in batch else model(batch["x"])


# --- loss and scores -------------------------------------------------------------------------------

LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.smooth_l1_loss}


def forecast_loss(model, batch: dict[str, torch.Tensor], targets: list[int],
                  loss: str = "mse", levels: tuple[float, ...] = ()) -> tuple[torch.Tensor, int]:
    """The batch's loss on the target channels: ``loss`` for a point forecast, the pinball loss averaged
    over the ``levels`` for quantiles."""
    truth = batch["y"][..., targets]  # (B, H, C_out)
    if levels:
        prediction = forward(model, batch)[:, :, targets]  # (B, H, C_out, Q)
        return pinball_loss(prediction.float(), truth, levels), truth.size(0)
    prediction = forward(model, batch)[..., targets]  # (B, H, C_out)
    return LOSSES[loss](prediction.float(), truth), truth.size(0)


@torch.no_grad()
def predict_windows(model, windows: ts.Windows, batch_size: int, device) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts and truths of every window, in order, standardised: (N, H, C) each, or for a quantile
    model forecasts (N, H, C, Q)."""
    predictions, truths = [], []
    for batch in windows.in_order(batch_size):
        batch = move(batch, device)
        predictions.append(forward(model, batch).float().cpu())
        truths.append(batch["y"].cpu())
    return torch.cat(predictions).numpy(), torch.cat(truths).numpy()


def calibrate(run: Path, model, windows, device, levels: tuple[float, ...], targets: list[int]) -> dict[str, float]:
    """Split conformal calibration of a quantile forecaster on held-out ``windows`` (the validation
    split, never the test): its config's ``calibration`` becomes the :func:`conformal_offsets` of its
    raw forecasts there, which it adds from then on, and ``run``'s best checkpoint is written again with
    that config (its weights and state as they were). -> the coverage of each central interval before
    (``val_coverage_80_uncalibrated``); {} when there are no windows or the residuals are not finite:
    the model and its best checkpoint are then left without offsets. The validation scores measured after
    it are in-sample for the offsets."""
    model.config.calibration = []
    prediction, truth = predict_windows(model, windows, 256, device)
    truth = truth[..., : prediction.shape[2]]  # the modelled columns come first; covariates after them
    offsets = conformal_offsets(prediction, truth, levels) if len(prediction) else None
    if offsets is None or not np.isfinite(offsets).all():
        rewrite_best(run, model)  # a resumed run's best checkpoint may hold the offsets of its first part
        return {}
    model.config.calibration = offsets.tolist()
    rewrite_best(run, model)
    before = quantile_errors(prediction[:, :, targets], truth[..., targets], levels)
    return {f"val_{key}_uncalibrated": value for key, value in before.items() if key.startswith("coverage_")}


def rewrite_best(run: Path, model) -> None:
    """``run``'s best checkpoint written again with ``model``'s config: its weights and state as they were."""
    best = run / "checkpoints" / "best"
    found = checkpoint.existing_checkpoint(best)  # or its previous version, after a crash between two renames
    checkpoint.save_checkpoint(best, model, checkpoint.load_state(found))


def errors(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"mse": float(np.mean((prediction - truth) ** 2)), "mae": float(np.mean(np.abs(prediction - truth)))}


def unscale(scaler, a: np.ndarray) -> np.ndarray:
    """(..., C) standardised values, or (..., C, Q) quantiles, in the data's units. A forecast of a
    model with covariates has fewer channels than the scaler: its first C (the modelled columns)."""
    if a.ndim == 4:
        return np.stack([unscale(scaler, a[..., k]) for k in range(a.shape[-1])], axis=-1)
    if hasattr(scaler, "scale_") and a.shape[-1] < len(scaler.scale_):  # (a long-format run's has no covariates)
        return (a * scaler.scale_[:a.shape[-1]] + scaler.mean_[:a.shape[-1]]).astype(a.dtype)
    return scaler.inverse_transform(a.reshape(-1, a.shape[-1])).reshape(a.shape)


def next_timestamps(timestamps: pd.DatetimeIndex, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` timestamps after the last of ``timestamps``, one step apart as its last two are
    (an hour apart after a single row)."""
    step = timestamps[-1] - timestamps[-2] if len(timestamps) > 1 else pd.Timedelta(hours=1)
    return pd.date_range(timestamps[-1] + step, periods=horizon, freq=step)


def window_errors(prediction: np.ndarray, truth: np.ndarray, targets: list[int], scaler,
                  levels: tuple[float, ...] = ()) -> dict[str, float]:
    """MSE and MAE of the target channels, standardised (``mse``, ``mae``) and in the data's units
    (``mse_original``, ``mae_original``); prediction and truth (N, H, C) standardised. With quantile
    ``levels``, prediction is (N, H, C, Q): MSE and MAE score the median, and :func:`quantile_errors`
    adds ``quantile_loss`` (and ``quantile_loss_original``) and the ``coverage_*`` of each interval."""
    original = [unscale(scaler, a) for a in (prediction, truth)]
    point, point_original = prediction, original[0]
    if levels:
        point, point_original = prediction[..., median_index(levels)], original[0][..., median_index(levels)]
    scores = errors(point[..., targets], truth[..., targets])
    scores.update({f"{key}_original": value
                   for key, value in errors(point_original[..., targets], original[1][..., targets]).items()})
    if levels:
        scores.update(quantile_errors(prediction[:, :, targets], truth[..., targets], levels))
        scores["quantile_loss_original"] = quantile_errors(original[0][:, :, targets], original[1][..., targets],
                                                           levels)["quantile_loss"]
    return scores


# --- a trained run -----------------------------------------------------------------------------------

def checked_series(path: Path, per_id: bool = False) -> dict[str, Any]:
    """A run's series.json: its columns, the targets and covariates among them (positions), and the
    scaler (a finite mean and a positive scale per column; with ``per_id``, a long-format run's, one such
    scaler for each id); else a DamagedFileError, since a wrong scale would put every forecast in the
    wrong units."""
    def positions(value, n: int) -> bool:
        return isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n
                                               for i in value)

    def numbers(value, n: int) -> bool:
        return isinstance(value, list) and len(value) == n and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)

    def scaler(state, n: int) -> bool:
        return (isinstance(state, dict) and numbers(state.get("mean"), n) and numbers(state.get("scale"), n)
                and all(x > 0 for x in state["scale"]))

    series = runs.read_json(path)
    columns = series.get("columns") if isinstance(series, dict) else None
    n = len(columns) if isinstance(columns, list) and all(isinstance(c, str) for c in columns) else 0
    state = series.get("scaler") if n else None
    scalers = (list(state.values()) if isinstance(state, dict) and state else [None]) if per_id else [state]
    if not (n and positions(series.get("targets"), n) and series["targets"]
            and positions(series.get("past", []), n) and positions(series.get("future", []), n)
            and all(scaler(s, n) for s in scalers)):
        raise DamagedFileError(path, "not the columns, targets and scaler (a finite mean and a positive scale "
                                     "for each column) the run wrote")
    return series


class Forecast:
    """A trained run: the model, the scaler fitted on its training rows (for a long-format run, a dict
    of each id's own), and its data settings."""

    def __init__(self, model, config: ForecastConfig, scaler, columns: list[str], targets: list[int],
                 past: list[int] | None = None, future: list[int] | None = None) -> None:
        self.model, self.config, self.scaler = model, config, scaler
        self.columns, self.targets = columns, targets
        self.past, self.future = list(past or []), list(future or [])  # covariate columns
        self.levels = config.model.levels  # () for point forecasts
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, run: str | Path, device: str = "cpu") -> "Forecast":
        info, model = runs.load_trained(run, TASK, "a forecasting run", device)
        config = build(ForecastConfig, info["config"])
        for key in ("input_len", "horizon"):  # run.json and the checkpoint say the same
            if (reads := getattr(model.config, key, None)) is not None:
                runs.check_fits(run, info, f"data.{key}", reads)
        series = checked_series(Path(run) / "series.json", per_id=bool(config.data.id_col))
        if config.data.id_col:  # many series: a scaler per id
            return long_format.load(cls, series, model, config)
        return cls(model, config, ts.scaler_from_state(series["scaler"]),
                   series["columns"], series["targets"], series.get("past"), series.get("future"))

    def read_csv(self, path: str | Path, min_rows: int, why: str, ahead: bool = False) -> ts.Series:
        """The file's series, read as the training file was; its columns must be the model's."""
        series = read_series(self.config.data, path, ahead)
        if series.columns != self.columns:
            raise UserError(f"{path} has columns {', '.join(series.columns)}; the model was trained on "
                            f"{', '.join(self.columns)}")
        if len(series.values) < min_rows:
            raise UserError(f"{path} has {len(series.values)} rows; {why}")
        return series

    def evaluate_csv(self, path: str | Path) -> dict[str, Any]:
        """Errors over every window of the file (standardised with the training rows' scaler); for a
        long-format run, pooled over every id and per id (``by_id``)."""
        d = self.config.data
        if d.id_col:
            return long_format.evaluate(self, path)
        series = self.read_csv(path, d.input_len + d.horizon, f"a window needs input_len + horizon = "
                                                              f"{d.input_len + d.horizon}")
        scaled = self.scaler.transform(series.values)
        prediction, truth = rolling.scored_windows(self.model, self.config, scaled, (0, len(scaled)), self.device,
                                                   self.future)  # each calibrated on the file's windows before it
        return {**window_errors(prediction, truth, self.targets, self.scaler, self.levels), "windows": len(prediction)}

    def predict_csv(self, path: str | Path) -> pd.DataFrame:
        """The next H values of the predicted columns after the file's last row, with timestamps. A
        quantile model gives the median under each column's name and each other level as ``OT_q0.1``.
        The file's trailing rows whose target is empty are rows to forecast, never input: a model with
        future covariates forecasts them (their timestamps, their future covariates;
        :func:`seqlab.data.covariates.future_rows`); any other forecasts from the last row with a target
        value, its timestamps continuing from that row.
        For a long-format run: the id column first, H rows for each id in the file."""
        if self.config.data.id_col:
            return long_format.predict(self, path)
        d = self.config.data
        series = self.read_csv(path, d.input_len, f"the model reads the last {d.input_len}", ahead=True)
        history = self.scaler.transform(series.values)
        batch = {"x": torch.as_tensor(history[-d.input_len:], dtype=torch.float32, device=self.device)[None]}  # (1, L, C)
        stamps = next_timestamps(series.timestamps, d.horizon)
        if self.future:  # the future covariates over the horizon rows, standardised as in training
            values, stamps = cov.future_rows(series, d.horizon, path, d)
            scaled = (values - self.scaler.mean_[self.future]) / self.scaler.scale_[self.future]
            batch["future"] = torch.as_tensor(scaled, dtype=torch.float32, device=self.device)[None]  # (1, H, F)
        with torch.no_grad():
            y = rolling.forecast_after(self.model, self.config, history, batch, self.device, self.future)
            y = unscale(self.scaler, y.float().cpu().numpy())[0]  # (H, C) or (H, C, Q)
        return self.frame(y, stamps)

    def frame(self, y: np.ndarray, stamps: pd.DatetimeIndex) -> pd.DataFrame:
        """The forecast ``y`` (H, C) or (H, C, Q) in the data's units, made for the H ``stamps``: the
        timestamps, then the predicted columns."""
        d = self.config.data
        columns = {}
        for i in self.targets:
            name = self.columns[i]
            if not self.levels:
                columns[name] = y[:, i]
                continue
            middle = median_index(self.levels)
            columns[name] = y[:, i, middle]
            columns.update({f"{name}_q{level_text(q)}": y[:, i, k] for k, q in enumerate(self.levels) if k != middle})
        frame = pd.DataFrame(columns)
        frame.insert(0, d.date_col, stamps)
        return frame

    def forecast(self, path: str | Path) -> pd.DataFrame:
        """The next H values after the CSV's last row (``seqlab predict RUN --csv FILE``): a frame of the
        timestamps and the predicted columns, in the data's units."""
        return self.predict_csv(path)

    def attention(self, path: str | Path) -> list[torch.Tensor]:
        """Per layer the self-attention of a Transformer forecaster over the CSV's last ``input_len``
        rows, as it made ``forecast(path)``: (H, L, L) over the time steps for ``transformer``, and for
        ``patch``, which reads each input channel apart, (C, H, P, P) over each channel's P patches."""
        if not hasattr(self.model, "layers"):
            raise UserError(f"a {type(self.model).__name__} has no attention weights")
        if self.config.data.id_col:
            raise UserError(f"attention takes a run on one series; this one forecasts the series of a "
                            f"long-format CSV (--id-col {self.config.data.id_col})")
        d = self.config.data
        series = self.read_csv(path, d.input_len, f"the model reads the last {d.input_len}")
        window = self.scaler.transform(series.values[-d.input_len:])
        with torch.no_grad():
            _, maps = self.model(torch.as_tensor(window, dtype=torch.float32, device=self.device)[None],
                                 need_weights=True)
        return [(w if hasattr(self.model, "patchify") else w[0]).float().cpu() for w in maps]


def train(config: ForecastConfig, run: Path, series: ts.Series | long_format.Panel, resume: bool = False,
          log=print, *, parallel: SingleProcess | None = None,
          bounds: dict[str, tuple[int, int]] | None = None, score_test: bool = True,
          deadline: float | None = None) -> tuple[Forecast, dict[str, Any]]:
    """Train with the shared engine, then score the validation and test windows. Under torchrun,
    ``parallel`` is this rank's part: every rank trains on its rows of each batch, the main rank alone
    writes the files and scores the result. ``bounds`` replaces the split's row ranges (a backtest's refit).
    ``score_test=False`` leaves the test windows unread (a candidate of ``--model auto``); ``deadline``
    (a ``time.perf_counter()`` reading) stops training at the next step after it, schedule untouched."""
    panel = isinstance(series, long_format.Panel)  # many series (--id-col): a split, a scaler, windows per id
    if not panel:  # --calendar auto: decided once, here, and stored in the run
        config = replace(config, data=cov.resolved(config.data, series.timestamps))
    d, t, started = config.data, config.train, time.perf_counter()
    parallel = parallel or SingleProcess()
    if not parallel.is_main:
        log = lambda *args, **kwargs: None  # noqa: E731 — one rank speaks
    if panel:
        scaler, windows, described = long_format.prepare(series, d)
        log(f"{len(series.ids)} series trained together ({long_format.named(series.ids)})")
    else:
        bounds = bounds or ts.split_bounds(len(series.values), d.split, d.input_len, d.horizon)
        cov.check_training_rows(series, d, bounds["train"][1])
        scaler = cov.leave_unscaled(ts.fit_scaler(series.values, bounds["train"][1]), cov.calendar_columns(series, d))
        scaled = scaler.transform(series.values)
        windows = {name: ts.Windows(scaled[start:end], d.input_len, d.horizon, series.future)
                   for name, (start, end) in bounds.items()}
        roles = {"past": series.past, "future": series.future} if series.past or series.future else {}
        described = {"columns": series.columns, "targets": series.targets, **roles, "bounds": bounds,
                     "scaler": ts.scaler_state(scaler)}

    def describe() -> None:
        if not resume:
            runs.write_run(run, TASK, to_dict(config))
        (run / "series.json").write_text(json.dumps(described, indent=2))

    parallel.on_main(describe)
    torch.manual_seed(t.seed)  # the same initial weights in every run of this seed
    modelled = len(series.columns) - len(series.past) - len(series.future)
    model = with_covariates(build_forecaster(config.model, modelled, d.input_len, d.horizon), series, config.model)
    n_params = sum(p.numel() for p in model.parameters())
    covariates = (f" + {len(series.past)} past, {len(series.future)} future covariates"
                  if modelled < len(series.columns) else "")
    log(f"model: {config.model.arch}, {n_params:,} parameters; {modelled} channels{covariates}; windows: "
        + ", ".join(f"{name} {len(w):,}" for name, w in windows.items()))

    targets = series.targets

    levels = config.model.levels

    def evaluate(m) -> dict[str, float]:
        prediction, truth = predict_windows(m, windows["valid"], 256, trainer.device)
        if not levels:
            scores = errors(prediction[..., targets], truth[..., targets])
            return {"val_mse": scores["mse"], "val_mae": scores["mae"]}
        scores = errors(prediction[..., median_index(levels)][..., targets], truth[..., targets])
        pinball = quantile_errors(prediction[:, :, targets], truth[..., targets], levels)["quantile_loss"]
        return {"val_mse": scores["mse"], "val_mae": scores["mae"], "val_quantile_loss": pinball}

    trainer = Trainer(model, t, run, loss_fn=lambda m, b: forecast_loss(m, b, targets, config.model.loss, levels),
                      batches=ts.window_batches(windows["train"], t.batch_size, t.seed), evaluate=evaluate,
                      select="val_quantile_loss" if levels else "val_mse",  # quantiles: the best pinball loss
                      d_model=config.model.d_model, parallel=parallel, deadline=deadline)
    progress = trainer.fit(resume=resume)
    if progress.stopped:
        log(progress.stopped)
    whole = parallel.export(trainer.model)  # the best weights as one plain model, on the main rank

    def score_and_write() -> dict[str, Any]:
        model = whole.eval()
        metrics: dict[str, Any] = {}
        if levels and config.model.calibrate:
            metrics.update(calibrate(run, model, windows["valid"], trainer.device, levels, targets))
        elif levels and resume:  # resumed with model.calibrate=false: drop the offsets of the run's first part
            model.config.calibration = []
            rewrite_best(run, model)
        for name in ("valid", "test") if score_test else ("valid",):
            if name == "test" and not panel:  # each calibrated on the windows before it, from the validation split on
                prediction, truth = rolling.scored_windows(model, config, scaled, bounds["test"], trainer.device,
                                                           series.future, since=bounds["valid"][0])
            else:
                prediction, truth = predict_windows(model, windows[name], 256, trainer.device)
            prefix = "val" if name == "valid" else "test"
            scores = (long_format.pooled_errors(prediction, truth, windows[name], scaler, targets, levels) if panel
                      else window_errors(prediction, truth, targets, scaler, levels))
            metrics.update({f"{prefix}_{key}": value for key, value in scores.items()})
            if name == "test" and panel:
                metrics["test_by_id"] = long_format.errors_by_id(prediction, truth, windows[name], scaler,
                                                                 targets, levels)
            if name == "test":
                draw_pictures(model, run, windows["test"], prediction, truth, series, config)
        epochs = progress.step * t.batch_size / max(len(windows["train"]), 1)
        metrics.update({"scale": "test_mse / test_mae" + (" / test_quantile_loss" if levels else "")
                                 + ": standardised by the training rows' mean and std"
                                 + (" (each id's own)" if panel else "") + "; *_original: the data's own units"
                                 + ("; MSE and MAE score the median" if levels else ""),
                        **({"quantiles": list(levels), "calibration_window": rolling.rolling_window(config)}
                           if levels else {}), "arch": config.model.arch,
                        "input_len": d.input_len, "horizon": d.horizon, "features": d.features,
                        "steps": progress.step, "best_step": progress.best_step, "epochs": round(epochs, 2),
                        "train_seconds": round(progress.train_seconds, 2),
                        "total_seconds": round(time.perf_counter() - started, 2), "parameters": n_params,
                        "processes": parallel.world})
        runs.write_metrics(run, metrics)
        return metrics

    metrics = parallel.on_main(score_and_write)
    return (Forecast(trainer.model.eval(), config, scaler, series.columns, targets, series.past, series.future),
            metrics)


def draw_pictures(model, run: Path, windows: ts.Windows, prediction: np.ndarray, truth: np.ndarray,
                  series: ts.Series, config: ForecastConfig) -> None:
    """forecast.png (three test windows of the target) and attention.png (transformer and patch models);
    the trainer drew curves.png."""
    from ..viz.forecast import plot_attention_over_time, plot_forecasts

    target = series.columns.index(config.data.target)
    picks = np.linspace(0, len(windows) - 1, 3).astype(int)
    history = windows.batch(picks)["x"][..., target].numpy()
    levels = config.model.levels
    shown = prediction[picks][:, :, target]  # (3, H) or (3, H, Q)
    point = shown[..., median_index(levels)] if levels else shown
    bands = {name: (shown[..., low], shown[..., high]) for name, (low, high) in central_intervals(levels).items()}
    plot_forecasts(history, truth[picks, :, target], point, run / "forecast.png",
                   config.data.target, f"{config.model.arch}: test windows (standardised)", bands)
    if isinstance(model, (fm.TimeStepTransformer, fm.PatchTransformer)):
        with torch.no_grad():
            x = windows.batch(picks)["x"].to(next(model.parameters()).device)
            _, maps = model(x, need_weights=True)
        weights = maps[-1].float().mean(dim=(0, 2)).cpu().numpy()  # last layer (heads, positions): mean over queries
        unit = "patch" if isinstance(model, fm.PatchTransformer) else "time step"
        plot_attention_over_time(weights, run / "attention.png", unit,
                                 f"{config.model.arch}: attention each past {unit} received (last layer)")


# --- the registry entry --------------------------------------------------------------------------

class ForecastTask(Task):
    name = "forecast"
    models = ("LinearForecaster", "PeriodicLinearForecaster", "PatchTransformer", "TimeStepTransformer",
              "RecurrentForecaster", "ConvForecaster", "CovariateForecaster", "ForecastEnsemble")
    description = "forecasting: a CSV series -> the next H steps (Transformer, PatchTST, RNN, CNN, linear)"
    example = "seqlab train forecast --csv ETTh1.csv --target OT --features M --input-len 336 --horizon 96 --model patch"
    config_class = ForecastConfig
    bigger_recipes = ("etth1-patch",)
    predict_needs_input = False
    eval_flags = (Flag("csv", "forecast: a series with the training file's columns", required=True),
                  Flag("backtest", "forecast: score the last --folds windows of the file's test part, one "
                                   "horizon apart (rolling origin)", type=bool),
                  Flag("folds", "forecast: how many backtest windows", type=int),
                  Flag("refit", "forecast: retrain before each backtest origin on the rows before it", type=bool),
                  Flag("plot", "forecast: draw the backtest into this new PNG file"))
    predict_flags = (Flag("csv", "forecast: the series to continue (its last input_len rows)"),
                     Flag("out", "forecast: write the forecast CSV here (default standard output)"),
                     Flag("plot", "forecast: draw the series' tail and the forecast (and intervals) into "
                                  "this new PNG file"))

    def read_data(self, config: ForecastConfig) -> ts.Series:
        return read_series(config.data)

    def compare_data(self, config: ForecastConfig, options) -> ts.Series:
        series = read_series(config.data)  # a long-format file's ids are checked against the split as it is read
        d = config.data
        if not d.id_col:  # data errors before the directory is made
            ts.split_bounds(len(series.values), d.split, d.input_len, d.horizon)
        return series

    def train(self, config, run, data, *, resume=False, parallel=None, log=print) -> dict[str, Any]:
        if config.model.arch == "auto":
            from .forecast_auto import search

            if parallel is not None and parallel.world > 1:
                raise UserError("--model auto trains its candidates on one process; give a model to train on several")
            return search(config, run, data, resume=resume, log=log)
        return train(config, run, data, resume=resume, log=log, parallel=parallel)[1]

    not_compared = ("model.arch", "model.top_k", "model.lookbacks")  # --model auto's, which compare does not train

    @property
    def architectures(self) -> tuple[str, ...]:
        """What ``compare`` trains: every forecaster, not the search over them."""
        return tuple(arch for arch in super().architectures if arch != "auto")

    def summary(self, config, m) -> str:
        coverage = "".join(f", {key.removeprefix('test_coverage_')}% interval covers {value:.1%}"
                           for key, value in m.items() if key.startswith("test_coverage_"))
        quantiles = (f"; quantile loss {m['test_quantile_loss']:.4f} (standardised){coverage}"
                     if "test_quantile_loss" in m else "")
        chose = f"auto chose {m['auto_choice']}; " if "auto_choice" in m else ""
        return (f"{chose}test: MSE {m['test_mse']:.4f}, MAE {m['test_mae']:.4f} (standardised); "
                f"MSE {m['test_mse_original']:.4g} in the data's units{quantiles}")

    def load(self, run, device="cpu") -> Forecast:
        return Forecast.load(run, device)

    def evaluate(self, forecast: Forecast, options) -> dict[str, Any]:
        from .forecast_backtest import evaluate

        return evaluate(forecast, options)  # every window, or --backtest's folds

    def predict(self, forecast: Forecast, inputs, options):
        if not options.get("csv"):
            raise UserError("a forecasting run predicts from a series: give --csv FILE")
        from .forecast_backtest import check_new_png, plot_prediction

        if options.get("out"):
            if Path(options["out"]).suffix.lower() in PICTURES:
                raise UserError(f"--out writes the forecast as CSV text, not a picture: give it a .csv name "
                                f"(--plot {Path(options['out']).with_suffix('.png')} draws the forecast)")
            check_new_file(options["out"], "--out")
        if options.get("plot") is not None:
            check_new_png(options["plot"])
        frame = forecast.predict_csv(options["csv"])
        if options.get("plot") is not None:
            plot_prediction(forecast, options["csv"], frame, Path(options["plot"]))
        if options.get("out"):
            frame.to_csv(options["out"], index=False)
            return [f"{len(frame)} forecast rows written to {options['out']}"]
        return [frame.to_csv(index=False).rstrip("\n")]

    def input_limit(self, forecast: Forecast) -> int:
        return forecast.config.data.input_len

    def explorable(self, forecast: Forecast, run):
        if forecast.config.data.id_col:
            raise UserError(f"the explorer shows a run on one series; {run} was trained on the series of a "
                            f"long-format CSV (--id-col {forecast.config.data.id_col})")
        return forecast.model

    def explore_example(self, forecast: Forecast, run) -> dict[str, Any]:
        """The last time step of the first validation window (from the run's series.json bounds), read
        from the run's own CSV as each forecast the explorer shows is."""
        d = forecast.config.data
        series = read_series(d)
        start = runs.read_json(Path(run) / "series.json").get("bounds", {}).get("valid", [0])[0]
        end = min(start + d.input_len, len(series.timestamps)) - 1
        return {"text": str(series.timestamps[end]), "source": "the end of the first validation window"}

    def explore(self, forecast: Forecast, request) -> dict[str, Any]:
        if not request.text.strip():
            raise UserError("give a date and time")
        return views.forecast(forecast, request.text)

    def compare_columns(self, config) -> list[str]:
        levels = config.model.levels
        return ["model", "parameters", "train_seconds", "epochs", "test_mse", "test_mae", "test_mse_original",
                "test_mae_original"] + (["test_quantile_loss"] if levels else []) + [
                f"test_coverage_{name}" for name in central_intervals(levels)]

    validation_metric = "val_mse"


register(ForecastTask())
