"""Covariates of a forecast: columns a forecaster reads but never predicts or scores (the past and
future covariates of TiDE, Das et al. 2023, §3).

- Past covariates (``--past-cols a,b``) are observed only up to the forecast origin, like the target:
  a window reads their L input rows and nothing after.
- Future covariates (``--future-cols c``) are known ahead (a holiday flag, a planned load): a window
  reads their L input rows and their H rows over the horizon.
- Calendar features (``--calendar hour,weekday``) are future covariates computed from the timestamps:
  the sine and cosine of where each time falls in a cycle, so any future row has them.

Which columns are predicted: the target (``--features S`` or ``MS``) or every column that is not a
covariate (``M``); a covariate is never a target. The arranged series holds the predicted ("modelled")
columns first, in file order, then the past covariates, then the future ones (the given ones in the
order named, then the calendar's ``hour_sin, hour_cos, …``). With ``--features S`` the file's other
columns that are not covariates are dropped, as without covariates.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from . import timeseries as ts

# Each cycle's phase in [0, 1) at a timestamp t (a pandas DatetimeIndex).
CYCLES = {
    "minute": lambda t: (t.minute + t.second / 60) / 60,  # within the hour
    "hour": lambda t: (t.hour + t.minute / 60 + t.second / 3600) / 24,  # within the day
    "weekday": lambda t: t.day_of_week / 7,  # Monday 0 … Sunday 6/7
    "month": lambda t: (t.month - 1) / 12,  # January 0 … December 11/12
    "dayofyear": lambda t: (t.day_of_year - 1) / np.where(t.is_leap_year, 366, 365),  # 1 January 0
}


def names(text: str) -> list[str]:
    """"a, b" -> ["a", "b"]; "" -> []."""
    return [name.strip() for name in text.split(",") if name.strip()]


def calendar_cycles(calendar: str) -> list[str]:
    """The cycles of a ``calendar`` setting: "" none, or names from :data:`CYCLES` ("auto" is resolved
    against the series' step by :func:`auto_cycles`)."""
    return [] if calendar.strip() in ("", "auto") else names(calendar)


def check_roles(past_cols: str, future_cols: str, calendar: str, target: str) -> None:
    """A ValueError (one line) for contradictory covariate settings: a covariate that is the target,
    a column named twice or in both roles, an unknown calendar cycle."""
    past, future = names(past_cols), names(future_cols)
    for flag, given, text in (("past_cols", past, past_cols), ("future_cols", future, future_cols)):
        if text.strip() and not given:
            raise ValueError(f"data.{flag} is {text!r}, which names no column; give names like a,b or leave it out")
        if target in given:
            raise ValueError(f"data.{flag} names the target {target!r}: a covariate is read, never predicted")
        twice = [name for name in given if given.count(name) > 1]
        if twice:
            raise ValueError(f"data.{flag} names {twice[0]!r} twice")
    both = [name for name in past if name in future]
    if both:
        raise ValueError(f"{both[0]!r} is in both data.past_cols and data.future_cols: a covariate is known "
                         f"ahead (future) or only up to the forecast origin (past), not both")
    cycles = calendar_cycles(calendar)
    unknown = [name for name in cycles if name not in CYCLES]
    if unknown:
        raise ValueError(f"data.calendar: unknown cycle {unknown[0]!r}; give 'auto' or some of "
                         f"{', '.join(CYCLES)}, like hour,weekday")
    twice = [name for name in cycles if cycles.count(name) > 1]
    if twice:
        raise ValueError(f"data.calendar names {twice[0]!r} twice")


def auto_cycles(step: pd.Timedelta) -> list[str]:
    """The cycles that vary between rows ``step`` apart: the hour of the day below a day, the weekday
    below a week, and the day of the year below a year."""
    periods = (("hour", pd.Timedelta(days=1)), ("weekday", pd.Timedelta(days=7)), ("dayofyear", pd.Timedelta(days=365)))
    return [c for c, period in periods if step < period]


def calendar_features(timestamps: pd.DatetimeIndex, cycles: list[str]) -> tuple[np.ndarray, list[str]]:
    """(N, 2K) the sine and cosine of each cycle's phase φ (sin 2πφ, cos 2πφ) at each timestamp, and
    their column names ``hour_sin, hour_cos, …``."""
    columns, values = [], []
    for cycle in cycles:
        phase = np.asarray(CYCLES[cycle](timestamps), dtype=np.float64)
        values += [np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)]
        columns += [f"{cycle}_sin", f"{cycle}_cos"]
    return np.stack(values, axis=1) if values else np.zeros((len(timestamps), 0)), columns


def has_covariates(data) -> bool:
    """Whether a ForecastDataConfig names any covariate or calendar cycle."""
    return bool(names(data.past_cols) or names(data.future_cols) or data.calendar.strip())


def cycles_of(data, timestamps: pd.DatetimeIndex) -> list[str]:
    """The calendar's cycles; "auto" resolved against the series' median step (a first gap or a missing
    row does not change it). Training writes the resolved cycles into the run's config, so a run's later
    reads never resolve "auto" again."""
    if data.calendar.strip() == "auto":
        step = pd.Series(timestamps).diff().median() if len(timestamps) > 1 else pd.Timedelta(hours=1)
        return auto_cycles(step)
    return calendar_cycles(data.calendar)


def resolved(data, timestamps: pd.DatetimeIndex):
    """The ForecastDataConfig ``data`` with ``calendar = "auto"`` replaced by the cycles it resolves to
    on these (the training file's) timestamps, e.g. "hour,weekday,dayofyear": what a run stores, so that
    eval and predict read every file with the training's cycles."""
    if data.calendar.strip() != "auto":
        return data
    return replace(data, calendar=",".join(cycles_of(data, timestamps)))


def check_training_rows(series: ts.Series, data, end: int) -> None:
    """A DataError in one line for a past or future covariate holding one value over the training rows
    (rows ``[0, end)``): constant there, or empty there and filled by ``--fill`` from later rows (the
    validation and test rows' values leaking into training). The model cannot learn from it, and its
    scale would be fitted on nothing. The same for a calendar cycle whose phase is one value in every
    training row: rows a whole number of its periods apart (``minute`` on hourly rows)."""
    for column in series.past + series.future[:len(names(data.future_cols))]:
        values = series.values[:end, column]
        if np.all(values == values[0]):
            flag = "--past-cols" if column in series.past else "--future-cols"
            raise DataError(f"covariate {series.columns[column]!r} ({flag}) has one value ({values[0]:g}) in every "
                            f"training row (the first {end}): constant, or empty there and filled by --fill "
                            f"from later rows; the model cannot learn from it: give it values or leave it out")
    calendar = calendar_columns(series, data)
    for sine in calendar[::2]:  # each cycle's (sin, cos) pair
        phases = series.values[:end, sine:sine + 2]
        if np.all(phases == phases[0]):
            cycle = series.columns[sine].removesuffix("_sin")
            raise DataError(f"--calendar {cycle}: every training row (the first {end}) is at the same point of "
                            f"the {cycle} cycle, the rows being whole cycles apart; the model cannot learn from "
                            f"it: leave {cycle} out")


def read_series(path: str | Path, data, ahead: bool = False) -> ts.Series:
    """The CSV at ``path`` read under ForecastDataConfig ``data`` and arranged as the module's docstring
    says: modelled columns, past covariates, future covariates, calendar features. With ``ahead`` the
    trailing rows whose target is empty are kept apart as ``Series.ahead`` (arranged the same way)."""
    raw = ts.read_series(path, data.date_col, data.target, "M", data.fill, ahead=ahead)
    past, future = names(data.past_cols), names(data.future_cols)
    for flag, given in (("--past-cols", past), ("--future-cols", future)):
        missing = [name for name in given if name not in raw.columns]
        if missing and missing[0] == data.date_col:
            raise DataError(f"{flag} names {missing[0]!r}, the timestamp column (--date-col): the calendar "
                            f"features (--calendar) are what a model reads of the time")
        if missing:
            raise DataError(f"{path} has no column {missing[0]!r} ({flag}); its columns are "
                            f"{data.date_col}, {', '.join(raw.columns)}")
    covariates = past + future
    modelled = [data.target] if data.features == "S" else [c for c in raw.columns if c not in covariates]
    cycles = cycles_of(data, raw.timestamps)
    calendar, calendar_columns = calendar_features(raw.timestamps, cycles)
    clash = [name for name in calendar_columns if name in raw.columns]
    if clash:
        raise DataError(f"{path} has a column {clash[0]!r}, the name of a --calendar feature; rename it")
    order = [raw.columns.index(c) for c in modelled + covariates]
    columns = modelled + covariates + calendar_columns
    values = np.concatenate([raw.values[:, order], calendar], axis=1)
    targets = ([modelled.index(data.target)] if data.features in ("S", "MS") else list(range(len(modelled))))
    first_future = len(modelled) + len(past)
    series = ts.Series(values, raw.timestamps, columns, list(range(len(columns))), targets,
                       past=list(range(len(modelled), first_future)),
                       future=list(range(first_future, len(columns))))
    if raw.ahead is not None:
        later, _ = calendar_features(raw.ahead_timestamps, cycles)
        series = replace(series, ahead=np.concatenate([raw.ahead[:, order], later], axis=1),
                         ahead_timestamps=raw.ahead_timestamps)
    return series


def calendar_columns(series: ts.Series, data) -> list[int]:
    """The positions of the calendar features among an arranged series' columns: the future
    covariates after the given ones."""
    return series.future[len(names(data.future_cols)):]


def leave_unscaled(scaler, columns: list[int]):
    """The fitted StandardScaler with ``columns`` passed through as they are (mean 0, scale 1): sine and
    cosine are already on a unit scale, and a cycle the training rows barely cover (a month of a year)
    would otherwise be divided by a tiny spread."""
    scaler.mean_[columns], scaler.scale_[columns] = 0.0, 1.0
    scaler.var_[columns] = 1.0
    return scaler


def future_rows(series: ts.Series, horizon: int, path, data) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """The future covariates over the H rows to forecast, (H, F) in the data's units, and their times:
    the first H rows of ``series.ahead``, whose future-covariate cells must all be filled. A run whose
    only future covariates are calendar features may leave those rows out: their times then continue
    the file's last step. Anything else is a DataError in one line."""
    rows = 0 if series.ahead is None else len(series.ahead)
    given = names(data.future_cols)
    if rows == 0 and not given:
        stamps = series.timestamps
        step = stamps[-1] - stamps[-2] if len(stamps) > 1 else pd.Timedelta(hours=1)
        times = pd.date_range(stamps[-1] + step, periods=horizon, freq=step)
        values, _ = calendar_features(times, cycles_of(data, stamps))
        return values, times
    if rows < horizon:
        need = (f"the forecast needs {horizon}: their {data.target!r} cells empty, their future covariates "
                f"({', '.join(given)}) filled" if given else
                f"give the {horizon} rows to forecast (their timestamps, {data.target!r} empty) or none")
        raise DataError(f"{path} has {rows} rows after the last value of {data.target!r}; {need}")
    values = series.ahead[:horizon, series.future]
    empty = np.isnan(values)
    if empty.any():
        row, column = np.argwhere(empty)[0]
        name = series.columns[series.future[column]]
        raise DataError(f"{path}: future covariate {name!r} is empty in forecast row {row + 1} "
                        f"({series.ahead_timestamps[row]}); a future covariate must be known for every forecast row")
    return values, series.ahead_timestamps[:horizon]
