"""Many series in one long-format CSV: an id column names the series each row belongs to.

    id,date,load,OT
    a,2024-01-01 00:00,50.1,30.2
    b,2024-01-01 00:00,12.0,8.9
    a,2024-01-01 01:00,50.7,30.4
    ...

Every id is a series of its own with the file's value columns (every column but the id and the
timestamp) and its own timestamps, increasing within the id; rows of different ids may be grouped or
interleaved, as the reading keeps each id's rows in file order and orders the ids by name. The checks
``timeseries.read_series`` makes of a file are made of each id's rows (naming the id); a gap is filled
within its own id only.

Each id is split in time, standardised by its own training rows, and cut into windows that never cross
from one id into the next (``PanelWindows``); the model sees the pooled windows of every id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import DataError
from . import timeseries as ts

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler


@dataclass
class Panel:
    """The checked series of a long-format file, one per id, ids in sorted order; every series has the
    same columns, inputs and targets."""

    ids: list[str]
    series: list[ts.Series]

    @property
    def columns(self) -> list[str]:
        return self.series[0].columns

    @property
    def inputs(self) -> list[int]:
        return self.series[0].inputs

    @property
    def targets(self) -> list[int]:
        return self.series[0].targets

    @property
    def past(self) -> list[int]:  # no covariates in a long-format file (the config refuses them)
        return []

    @property
    def future(self) -> list[int]:
        return []


def read_panel(path: str | Path, id_col: str, date_col: str, target: str, features: str,
               fill: str = "error") -> Panel:
    path = Path(path)
    frame = ts.read_table(path, dtype={id_col: str}, verbatim=id_col)  # ids as written: "007", "NA" stay
    if id_col == date_col:
        raise DataError(f"--id-col and the date column are both {id_col!r}; the id column names each row's series")
    for column in (id_col, date_col, target):
        if column not in frame.columns:
            raise DataError(f"{path} has no column {column!r}; its columns are {', '.join(map(str, frame.columns))}")
    if target == id_col:
        raise DataError(f"{path}: the target {target!r} is the id column; the target is a column of numbers")
    if target == date_col:
        raise DataError(ts.target_is_date(path, target))
    ids = frame[id_col]
    missing = ids.isna().to_numpy() | (ids.str.strip() == "").to_numpy()
    if missing.any():
        raise DataError(f"{path}: column {id_col!r} row {int(np.argmax(missing)) + 2} has no id")
    check_spacing(ids, id_col, path)
    stamps = ts.read_timestamps(path, frame[date_col])
    if stamps.isna().any():
        raise DataError(f"{path}: column {date_col!r} row {int(np.argmax(stamps.isna())) + 2} has no date")
    data = ts.numeric_values(frame.drop(columns=[id_col, date_col]), path)
    if fill == "error" and data.isna().any().any():
        column = data.columns[data.isna().any()][0]
        row = int(np.argmax(data[column].isna().to_numpy()))
        raise DataError(f"{path}: column {column!r} row {row + 2} (id {ids.iloc[row]!r}) is empty; {ts.FILL_HINT}")
    columns = [str(c) for c in data.columns]
    if features == "S":
        columns, data = [target], data[[target]]
    inputs = list(range(len(columns)))
    targets = [columns.index(target)] if features in ("S", "MS") else inputs
    groups = ids.groupby(ids.to_numpy(), sort=True).indices  # id -> its positions in the file, in file order
    names = [str(name) for name in groups]
    series = []
    for name, rows in zip(names, groups.values()):
        own = stamps[rows]
        order = np.diff(own.asi8)
        if (order == 0).any():
            k = int(np.argmax(order == 0))
            raise DataError(f"{path}: id {name!r} has timestamp {own[k]} twice (rows {rows[k] + 2} and "
                            f"{rows[k + 1] + 2})")
        if (order < 0).any():
            k = int(np.argmax(order < 0))
            raise DataError(f"{path}: id {name!r}'s timestamps are not in increasing order (row {rows[k + 1] + 2} "
                            f"comes before row {rows[k] + 2})")
        values = data.iloc[rows].reset_index(drop=True)
        if fill != "error":  # within the id: a gap never borrows another series' values
            values = values.ffill().bfill() if fill == "ffill" else values.interpolate(limit_direction="both")
        if empty := ts.empty_column(values):
            raise DataError(f"{path}: id {name!r}: column {empty!r} is empty in every row; --fill has nothing to "
                            f"fill from")
        series.append(ts.Series(values.to_numpy(dtype=np.float64), own, columns, inputs, targets))
    return Panel(names, series)


def check_spacing(ids: pd.Series, id_col: str, path: Path) -> None:
    """A DataError naming two ids that differ only by spaces around them ("c" and "c "): read as
    written, they would split one series in two."""
    names = pd.Series(ids.unique())
    stripped = names.str.strip()
    clash = stripped.duplicated(keep=False)
    if clash.any():
        first, second = names[clash & (stripped == stripped[clash].iloc[0])].iloc[:2]
        raise DataError(f"{path}: column {id_col!r} holds the ids {first!r} and {second!r}, which differ only by "
                        f"spaces around them; write each id one way")


def split_panel(panel: Panel, split: str, input_len: int, horizon: int,
                path: str | Path) -> dict[str, dict[str, tuple[int, int]]]:
    """Each id's row ranges of train, valid and test (``timeseries.split_bounds`` on its own rows); a
    DataError naming the first id too short for them."""
    bounds = {}
    for name, series in zip(panel.ids, panel.series):
        n = len(series.values)
        if split == "ett" and n < sum(ts.ETT_HOURS):
            raise DataError(f"{path}: id {name!r} has {n:,} rows; the default ETT split needs {sum(ts.ETT_HOURS):,} "
                            f"(hourly, 20 months) of each id: for other series give fractions, e.g. "
                            f"--split 0.7,0.1,0.2")
        try:
            bounds[name] = ts.split_bounds(n, split, input_len, horizon)
        except DataError as error:
            raise DataError(f"{path}: id {name!r} ({n} rows): {error}") from None
    return bounds


def fit_scalers(panel: Panel, bounds: dict[str, dict[str, tuple[int, int]]]) -> dict[str, StandardScaler]:
    """Per id, standardisation fitted on that id's training rows only."""
    return {name: ts.fit_scaler(series.values, bounds[name]["train"][1])
            for name, series in zip(panel.ids, panel.series)}


def scalers_state(scalers: dict[str, StandardScaler]) -> dict[str, Any]:
    return {name: ts.scaler_state(scaler) for name, scaler in scalers.items()}


def scalers_from_state(state: dict[str, Any]) -> dict[str, StandardScaler]:
    return {name: ts.scaler_from_state(s) for name, s in state.items()}


class PanelWindows(ts.Windows):
    """Every window of several (rows_i, C) arrays, one per id, numbered id after id: window j of the
    pool reads rows of one id only. ``ids`` and ``counts`` say whose windows come in which order."""

    def __init__(self, parts: list[np.ndarray], ids: list[str], input_len: int, horizon: int) -> None:
        super().__init__(np.concatenate(parts), input_len, horizon)
        self.ids = ids
        self.counts = [len(part) - input_len - horizon + 1 for part in parts]
        first_rows = np.cumsum([0] + [len(part) for part in parts])[:-1]
        self.rows = np.concatenate([first + np.arange(n) for first, n in zip(first_rows, self.counts)])

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, starts: np.ndarray | list[int]) -> dict[str, Any]:
        return super().batch(self.rows[np.asarray(starts, dtype=np.int64)])  # window number -> its first row

    def owners(self) -> np.ndarray:
        """(N,) the index in ``ids`` of each window's series."""
        return np.repeat(np.arange(len(self.ids)), self.counts)


class PooledScaler:
    """The per-id scalers of a :class:`PanelWindows`' windows, applied to their rows stacked in window
    order: ``inverse_transform`` takes (N·k, C), N windows of k rows each (k = H, say), and unscales
    each window's rows with its own id's scaler."""

    def __init__(self, scalers: dict[str, StandardScaler], windows: PanelWindows) -> None:
        self.scalers = [scalers[name] for name in windows.ids]
        self.counts = windows.counts

    def inverse_transform(self, rows: np.ndarray) -> np.ndarray:
        per_window, remainder = divmod(len(rows), max(sum(self.counts), 1))
        if remainder:
            raise ValueError(f"{len(rows)} rows are not whole windows of {sum(self.counts)}")
        ends = np.cumsum(self.counts) * per_window
        parts = np.split(rows, ends[:-1])
        return np.concatenate([s.inverse_transform(p) for s, p in zip(self.scalers, parts)])
