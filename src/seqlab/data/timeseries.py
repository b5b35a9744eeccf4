"""Time series from CSV: reading and checking (pandas), the train/validation/test split, scaling
fitted on the training slice only (scikit-learn), and sliding windows.

A window starting at row i reads rows i … i+L-1 (the input, L = input_len) and predicts rows
i+L … i+L+H-1 (the horizon H). Validation and test slices start L rows before their first predicted
row, so every row of theirs is predicted once the model has a full input window — and no predicted
row of one split is an input row of a later one's training.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..errors import DataError
from .batching import ShuffledBatches
from .labelled_text import duplicate_header

if TYPE_CHECKING:  # scikit-learn is imported where a scaler is made: most commands never make one
    from sklearn.preprocessing import StandardScaler

FEATURES = ("M", "S", "MS")  # multivariate -> multivariate, univariate, multivariate -> target
FILLS = ("error", "ffill", "interpolate")
# A gap's hint, right in training and after it (a trained run reads new files with its own data.fill)
FILL_HINT = "fill the gaps, or train with --fill ffill or --fill interpolate"
ETT_HOURS = (12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24)  # 8,640 / 2,880 / 2,880 rows: 12/4/4 months


@dataclass
class Series:
    """The checked numeric table: ``values`` (N, C) float64 in ``columns`` order, their timestamps,
    and which columns the model reads and predicts. Covariate columns (:mod:`.covariates`) come last:
    ``past`` ones are read up to the forecast origin only, ``future`` ones over the horizon too.
    ``ahead`` holds the rows after the last observed target value (read with ``ahead=True``; NaN
    where a cell is empty) and ``ahead_timestamps`` their times."""

    values: np.ndarray
    timestamps: pd.DatetimeIndex
    columns: list[str]
    inputs: list[int]  # column indices fed to the model
    targets: list[int]  # positions *within inputs* that are predicted and scored
    past: list[int] = field(default_factory=list)  # past-covariate columns
    future: list[int] = field(default_factory=list)  # future-covariate columns
    ahead: np.ndarray | None = None  # (rows, C) after the last observed target value
    ahead_timestamps: pd.DatetimeIndex | None = None


def read_series(path: str | Path, date_col: str, target: str, features: str, fill: str = "error",
                ahead: bool = False) -> Series:
    """The file's checked series. With ``ahead``, the trailing rows whose ``target`` cell is empty are
    the rows to forecast: they are kept apart (``Series.ahead``), empty cells and all."""
    path = Path(path)
    frame = read_table(path)
    for column in (date_col, target):
        if column not in frame.columns:
            raise DataError(f"{path} has no column {column!r}; its columns are {', '.join(map(str, frame.columns))}")
    if target == date_col:
        raise DataError(target_is_date(path, target))
    timestamps = read_timestamps(path, frame[date_col])
    if timestamps.isna().any():
        row = int(np.argmax(timestamps.isna())) + 2
        raise DataError(f"{path}: column {date_col!r} row {row} has no date")
    order = np.diff(timestamps.asi8)
    if (order == 0).any():
        row = int(np.argmax(order == 0)) + 2
        raise DataError(f"{path}: timestamp {timestamps[row - 1]} appears twice (rows {row} and {row + 1})")
    if (order < 0).any():
        row = int(np.argmax(order < 0)) + 2
        raise DataError(f"{path}: timestamps are not in increasing order (row {row + 1} comes before row {row})")

    data = numeric_values(frame.drop(columns=[date_col]), path)
    rest, rest_timestamps = None, None
    if ahead:
        known = data[target].notna().to_numpy()
        observed = len(known) - int(np.argmax(known[::-1])) if known.any() else 0
        if observed == 0:
            raise DataError(f"{path}: column {target!r} has no value; the rows before the forecast need it")
        rest, rest_timestamps = data.iloc[observed:], timestamps[observed:]
        data, timestamps = data.iloc[:observed], timestamps[:observed]
    if data.isna().any().any():
        column = data.columns[data.isna().any()][0]
        row = int(np.argmax(data[column].isna().to_numpy())) + 2
        if fill == "error":
            raise DataError(f"{path}: column {column!r} row {row} is empty; {FILL_HINT}")
        data = data.ffill().bfill() if fill == "ffill" else data.interpolate(limit_direction="both")
    columns = [str(c) for c in data.columns]
    if features == "S":
        columns, data = [target], data[[target]]
        rest = rest[[target]] if rest is not None else None
    if empty := empty_column(data):  # (the rows to forecast, ``rest``, may stay empty)
        raise DataError(f"{path}: column {empty!r} is empty in every row; --fill has nothing to fill from")
    inputs = list(range(len(columns)))
    targets = [columns.index(target)] if features in ("S", "MS") else inputs
    return Series(data.to_numpy(dtype=np.float64), timestamps, columns, inputs, targets,
                  ahead=rest.to_numpy(dtype=np.float64, na_value=np.nan) if rest is not None else None,
                  ahead_timestamps=rest_timestamps)


def target_is_date(path: Path, target: str) -> str:
    return f"{path}: the target {target!r} is the date column; the target is a column of numbers (--target)"


def empty_column(data: pd.DataFrame) -> str | None:
    """The first column of ``data`` with no value left (after ``--fill``: empty in every row), if any."""
    empty = data.columns[data.isna().all()] if len(data) else data.columns[:0]
    return str(empty[0]) if len(empty) else None


def read_table(path: Path, dtype: dict[str, Any] | None = None, verbatim: str | None = None) -> pd.DataFrame:
    """The CSV (tab-separated for .tsv) as read by pandas, with one line for a missing, unreadable or
    empty file or a header that names a column twice. The column ``verbatim`` is read as text as written:
    only an empty cell is missing (pandas' default NA strings, "NA", "None", "null", "nan" …, are names)."""
    if not path.is_file():
        from .download import file_not_found

        raise file_not_found(path)
    sep = "\t" if path.suffix == ".tsv" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=dtype)
        if verbatim is not None and verbatim in frame.columns:
            text = pd.read_csv(path, sep=sep, usecols=[verbatim], dtype=str, keep_default_na=False)[verbatim]
            frame[verbatim] = text.where(text != "", np.nan)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not valid UTF-8; convert it to UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as error:
        raise DataError(f"{path} is not a readable CSV file: {str(error).splitlines()[0]}") from None
    if frame.empty:
        raise DataError(f"{path} has a header but no rows")
    if twice := duplicate_header(path, sep=sep):
        raise DataError(f"{path} names the column {twice!r} twice in its header; give each column its own name")
    return frame


def numeric_values(data: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``data`` with every column as numbers (empty cells stay NaN); a DataError naming the first cell,
    by its row in the file, that is not a finite number."""
    for column in data.columns:
        numeric = pd.to_numeric(data[column], errors="coerce")
        bad = numeric.isna() & data[column].notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy())) + 2  # +1 header, +1 from 0-based
            raise DataError(f"{path}: column {column!r} row {row} is not a number: {data[column].iloc[row - 2]!r}")
        infinite = np.isinf(numeric.to_numpy(dtype=np.float64, na_value=np.nan))
        if infinite.any():  # "inf", "-inf", or a number beyond float64's range such as 1e999
            row = int(np.argmax(infinite)) + 2
            raise DataError(f"{path}: column {column!r} row {row} is not a finite number: {numeric.iloc[row - 2]} "
                            f"(infinite, or too large for a 64-bit float)")
        data[column] = numeric
    return data


def read_timestamps(path: Path, column: pd.Series) -> pd.DatetimeIndex:
    """The column's dates; a column pandas cannot read as dates, or one of numbers (which pandas reads
    as nanoseconds since 1970: a step index 0, 1, 2 … became 1970-01-01 00:00:00.000000001 …), is a
    DataError naming it."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        raise DataError(f"{path}: column {column.name!r} holds numbers ({column.iloc[0]} first), not dates; "
                        f"write them as dates, like 2024-01-01 or 2024-01-01 13:00 (a series without dates "
                        f"can count its rows as hours from any date)")
    try:
        with warnings.catch_warnings():  # pandas' advice on formats would be a second line on stderr
            warnings.simplefilter("ignore", UserWarning)
            return pd.DatetimeIndex(pd.to_datetime(column, errors="raise"))
    except (ValueError, TypeError, OverflowError) as error:
        raise DataError(not_a_date(path, column, error)) from None


def not_a_date(path: Path, column: pd.Series, error: Exception) -> str:
    """One line naming the first cell of ``column`` that pandas cannot read as a date (pandas' own
    message runs over several lines of advice)."""
    try:  # pandas infers one format from the first cell; coerce marks the cells that do not follow it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            bad = (pd.to_datetime(column, errors="coerce").isna() & column.notna()).to_numpy()
    except (ValueError, TypeError, OverflowError):
        bad = np.zeros(len(column), dtype=bool)
    if bad.any():
        row = int(np.argmax(bad))
        form = f" in the form of the first row's {column.iloc[0]!r}" if row else ""
        return f"{path}: column {column.name!r} row {row + 2} is not a date{form}: {column.iloc[row]!r}"
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{path}: column {column.name!r} holds values that are not dates ({first.split('. You might')[0]})"


def split_bounds(n_rows: int, split: str, input_len: int, horizon: int) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of train, valid and test. ``split`` is "ett" (12/4/4 months of hourly
    rows) or three fractions "0.7,0.1,0.2"; the later splits start ``input_len`` rows early."""
    if split == "ett":
        n_train, n_valid, n_test = ETT_HOURS
        if n_rows < sum(ETT_HOURS):
            raise DataError(f"the default ETT split needs {sum(ETT_HOURS):,} rows (hourly, 20 months); the file has "
                            f"{n_rows:,}: for other series give fractions, e.g. --split 0.7,0.1,0.2")
    else:
        try:
            fractions = [float(f) for f in split.split(",")]
        except ValueError:
            fractions = []
        if len(fractions) != 3 or not all(0 < f < 1 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:  # NaN fails
            raise DataError(f"--split must be 'ett' or three positive fractions summing to 1, like 0.7,0.1,0.2; got {split!r}")
        n_train, n_test = int(n_rows * fractions[0]), int(n_rows * fractions[2])
        n_valid = n_rows - n_train - n_test
    bounds = {"train": (0, n_train), "valid": (n_train - input_len, n_train + n_valid),
              "test": (n_train + n_valid - input_len, n_train + n_valid + n_test)}
    for name, (start, end) in bounds.items():
        if start < 0 or end - start < input_len + horizon:
            raise DataError(f"the {name} split has {max(end - max(start, 0), 0)} rows; a window needs "
                            f"input_len + horizon = {input_len + horizon} (shorten them or give a longer series)")
    return bounds


def fit_scaler(values: np.ndarray, train_end: int) -> StandardScaler:
    """Standardisation fitted on the training rows only: no statistic of validation or test leaks in."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(values[:train_end])


def scaler_state(scaler: StandardScaler) -> dict[str, Any]:
    return {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}


def scaler_from_state(state: dict[str, Any]) -> StandardScaler:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    scaler.mean_, scaler.scale_ = np.asarray(state["mean"]), np.asarray(state["scale"])
    scaler.var_, scaler.n_features_in_ = scaler.scale_**2, len(scaler.mean_)
    return scaler


class Windows:
    """Every window of a (rows, C) array: x (L, C) and the next H rows y (H, C). With ``future``
    (future-covariate columns), also ``future`` (H, F): those columns over the horizon rows — the only
    values from after the forecast origin a model may read."""

    def __init__(self, values: np.ndarray, input_len: int, horizon: int, future: list[int] | None = None) -> None:
        self.values = torch.as_tensor(values, dtype=torch.float32)
        self.input_len, self.horizon = input_len, horizon
        self.future = list(future or [])

    def __len__(self) -> int:
        return len(self.values) - self.input_len - self.horizon + 1

    def batch(self, starts: np.ndarray | list[int]) -> dict[str, Tensor]:
        L, H = self.input_len, self.horizon
        index = torch.as_tensor(np.asarray(starts))[:, None]
        x = self.values[index + torch.arange(L)]  # (B, L, C)
        y = self.values[index + L + torch.arange(H)]  # (B, H, C)
        if self.future:
            return {"x": x, "y": y, "future": y[..., self.future]}  # future (B, H, F)
        return {"x": x, "y": y}

    def in_order(self, batch_size: int) -> Iterator[dict[str, Tensor]]:
        for start in range(0, len(self), batch_size):
            yield self.batch(np.arange(start, min(start + batch_size, len(self))))


def window_batches(windows: Windows, batch_size: int, seed: int) -> ShuffledBatches:
    """Shuffled training windows, epoch after epoch, resumable exactly."""
    return ShuffledBatches(len(windows), batch_size, seed, windows.batch)
