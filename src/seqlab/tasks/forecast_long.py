"""Forecasting many series trained together, from one long-format CSV (``--id-col``).

    seqlab train forecast --csv stores.csv --id-col store --target sales --split 0.7,0.1,0.2 --model patch
    seqlab predict RUN --csv stores.csv          # id, date and the predicted columns, H rows per id
    seqlab eval RUN --csv stores.csv             # pooled scores, and each id's (``by_id``)

Each id is split in time by the run's ``--split`` on its own rows, standardised by its own training
rows, and cut into windows of its own (``data.panel``); training draws batches from the pooled windows
of every id. The model is one of the forecasters with C = the file's value columns, so a
channel-independent one (``patch``, ``linear``, ``periodic``; Nie et al. 2023 §3.1) shares its weights
across ids and channels alike. Scores pool every window of every id (standardised per id; ``*_original``
in each id's units) and ``test_by_id`` in ``metrics.json`` scores each id on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data import panel as pn
from ..errors import UserError

Panel = pn.Panel  # what ``read`` gives; ``forecast.train`` tells it from one series by its type
PREDICT_CHUNK = 256  # ids forecast in one model call: a file of many ids never stacks them all at once


def read(data) -> pn.Panel:
    """The long-format file of ``data`` (a ``ForecastDataConfig``), every id checked against the split,
    so that bad input is refused before a run directory is made."""
    panel = pn.read_panel(data.csv, data.id_col, data.date_col, data.target, data.features, data.fill)
    pn.split_panel(panel, data.split, data.input_len, data.horizon, data.csv)
    return panel


def load(cls, series: dict[str, Any], model, config):
    """A trained long-format run (its checked series.json, ``series``) as a ``Forecast`` (``cls``) whose
    ``scaler`` maps each id to its own."""
    return cls(model, config, pn.scalers_from_state(series["scaler"]), series["columns"], series["targets"])


def named(ids: list[str], shown: int = 5) -> str:
    """The first ``shown`` ids, quoted, and how many more there are."""
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(map(repr, ids[:shown])) + more


def prepare(panel: pn.Panel, data) -> tuple[dict, dict[str, pn.PanelWindows], dict[str, Any]]:
    """Per id its scaler (fitted on its own training rows); per split the pooled windows of every id;
    and what ``series.json`` keeps: the columns, the ids, and each id's split and scaler."""
    bounds = pn.split_panel(panel, data.split, data.input_len, data.horizon, data.csv)
    scalers = pn.fit_scalers(panel, bounds)
    scaled = {name: scalers[name].transform(series.values) for name, series in zip(panel.ids, panel.series)}
    windows = {split: pn.PanelWindows([scaled[name][slice(*bounds[name][split])] for name in panel.ids],
                                      panel.ids, data.input_len, data.horizon)
               for split in ("train", "valid", "test")}
    description = {"columns": panel.columns, "targets": panel.targets, "id_col": data.id_col, "ids": panel.ids,
                   "bounds": bounds, "scaler": pn.scalers_state(scalers)}
    return scalers, windows, description


def pooled_errors(prediction: np.ndarray, truth: np.ndarray, windows: pn.PanelWindows, scalers, targets,
                  levels) -> dict[str, float]:
    """``window_errors`` over every window of every id, each put back into its own id's units."""
    from .forecast import window_errors

    return window_errors(prediction, truth, targets, pn.PooledScaler(scalers, windows), levels)


def errors_by_id(prediction: np.ndarray, truth: np.ndarray, windows: pn.PanelWindows, scalers, targets,
                 levels) -> dict[str, dict[str, float]]:
    """Per id, ``window_errors`` of its own windows and how many there are."""
    from .forecast import window_errors

    owners = windows.owners()
    return {name: {**window_errors(prediction[owners == k], truth[owners == k], targets, scalers[name], levels),
                   "windows": int(np.sum(owners == k))}
            for k, name in enumerate(windows.ids)}


def read_for_run(forecast, path: str | Path, min_rows: int, why: str) -> pn.Panel:
    """A long-format file read as the run's training file was: the same value columns, only ids the run
    was trained on (each has its own scaler), each with at least ``min_rows`` rows."""
    d = forecast.config.data
    panel = pn.read_panel(path, d.id_col, d.date_col, d.target, d.features, d.fill)
    if panel.columns != forecast.columns:
        raise UserError(f"{path} has value columns {', '.join(panel.columns)}; the model was trained on "
                        f"{', '.join(forecast.columns)}")
    unknown = [name for name in panel.ids if name not in forecast.scaler]
    if unknown:
        raise UserError(f"{path}: the run was not trained on id{'s' if len(unknown) > 1 else ''} {named(unknown)}; it "
                        f"standardises each series by its own training rows, so it forecasts only its ids")
    for name, series in zip(panel.ids, panel.series):
        if len(series.values) < min_rows:
            raise UserError(f"{path}: id {name!r} has {len(series.values)} rows; {why}")
    return panel


def evaluate(forecast, path: str | Path) -> dict[str, Any]:
    """Scores over every window of every id in the file, pooled and per id (``by_id``)."""
    from .forecast import predict_windows

    d = forecast.config.data
    need = d.input_len + d.horizon
    panel = read_for_run(forecast, path, need, f"a window needs input_len + horizon = {need}")
    windows = pn.PanelWindows([forecast.scaler[name].transform(series.values)
                               for name, series in zip(panel.ids, panel.series)], panel.ids, d.input_len, d.horizon)
    prediction, truth = predict_windows(forecast.model, windows, 256, forecast.device)
    args = (prediction, truth, windows, forecast.scaler, forecast.targets, forecast.levels)
    return {**pooled_errors(*args), "windows": len(windows), "by_id": errors_by_id(*args)}


def predict(forecast, path: str | Path) -> pd.DataFrame:
    """The next H values of the predicted columns after each id's last row: the id column, the
    timestamps and the columns ``Forecast.predict_csv`` gives, H rows per id, ids in sorted order."""
    from .forecast import next_timestamps, unscale

    d = forecast.config.data
    panel = read_for_run(forecast, path, d.input_len, f"the model reads the last {d.input_len}")
    parts = []
    for first in range(0, len(panel.ids), PREDICT_CHUNK):
        chunk = zip(panel.ids[first:first + PREDICT_CHUNK], panel.series[first:first + PREDICT_CHUNK])
        x = np.stack([forecast.scaler[name].transform(series.values[-d.input_len:])
                      for name, series in chunk])  # (chunk, L, C)
        with torch.no_grad():
            x = torch.as_tensor(x, dtype=torch.float32, device=forecast.device)
            parts.append(forecast.model(x).float().cpu().numpy())  # (chunk, H, C) or (chunk, H, C, Q)
    y = np.concatenate(parts)
    frames = []
    for k, (name, series) in enumerate(zip(panel.ids, panel.series)):
        own = unscale(forecast.scaler[name], y[k:k + 1])[0]  # (H, C) or (H, C, Q) in this id's units
        frame = forecast.frame(own, next_timestamps(series.timestamps, d.horizon))
        frame.insert(0, d.id_col, name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
