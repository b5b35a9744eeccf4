"""Time-series data: split bounds, scaling fitted on training rows only, window alignment, and the
checks on the CSV."""

import numpy as np
import pandas as pd
import pytest

from seqlab.data import timeseries as ts
from seqlab.errors import DataError


def write_csv(path, n=200, **columns):
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"),
                          "a": np.arange(n, dtype=float), "OT": np.sin(np.arange(n) / 5.0), **columns})
    frame.to_csv(path, index=False)
    return path


def test_windows_predict_the_rows_right_after_their_input():
    values = np.arange(30, dtype=float)[:, None] * [1.0, 10.0]  # row r holds (r, 10 r)
    windows = ts.Windows(values, input_len=5, horizon=3)
    assert len(windows) == 30 - 5 - 3 + 1
    batch = windows.batch([0, 7, len(windows) - 1])
    assert batch["x"][1, :, 0].tolist() == [7, 8, 9, 10, 11]  # t-L+1 … t with t = 11
    assert batch["y"][1, :, 0].tolist() == [12, 13, 14]  # t+1 … t+H
    assert batch["y"][2, -1, 0] == 29  # the last window ends at the last row
    assert batch["x"][1, 0, 1] == 70


def test_ett_split_and_later_splits_starting_input_len_early():
    bounds = ts.split_bounds(17420, "ett", input_len=336, horizon=96)
    assert bounds == {"train": (0, 8640), "valid": (8640 - 336, 11520), "test": (11520 - 336, 14400)}
    bounds = ts.split_bounds(1000, "0.7,0.1,0.2", input_len=20, horizon=10)
    assert bounds == {"train": (0, 700), "valid": (680, 800), "test": (780, 1000)}
    with pytest.raises(DataError, match="window needs"):
        ts.split_bounds(60, "0.7,0.1,0.2", input_len=20, horizon=10)
    with pytest.raises(DataError, match="--split"):
        ts.split_bounds(1000, "0.7,0.2", 20, 10)
    with pytest.raises(DataError, match="for other series give fractions"):  # a short series under the default
        ts.split_bounds(600, "ett", 20, 10)


def test_scaler_sees_training_rows_only_and_round_trips():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(100, 3))
    changed = values.copy()
    changed[70:] *= 1000.0  # validation and test rows change wildly ...
    a, b = ts.fit_scaler(values, 70), ts.fit_scaler(changed, 70)
    np.testing.assert_array_equal(a.mean_, b.mean_)  # ... and the scaler does not notice
    np.testing.assert_array_equal(a.scale_, b.scale_)
    np.testing.assert_allclose(a.mean_, values[:70].mean(axis=0))
    restored = ts.scaler_from_state(ts.scaler_state(a))
    np.testing.assert_allclose(restored.inverse_transform(a.transform(values)), values, atol=1e-12)


def test_feature_modes_choose_inputs_and_targets(tmp_path):
    path = write_csv(tmp_path / "s.csv")
    m = ts.read_series(path, "date", "OT", "M")
    assert m.columns == ["a", "OT"] and m.targets == [0, 1]
    ms = ts.read_series(path, "date", "OT", "MS")
    assert ms.columns == ["a", "OT"] and ms.targets == [1]
    s = ts.read_series(path, "date", "OT", "S")
    assert s.columns == ["OT"] and s.targets == [0] and s.values.shape == (200, 1)


def test_bad_csv_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        ts.read_series(tmp_path / "none.csv", "date", "OT", "M")
    path = write_csv(tmp_path / "s.csv")
    with pytest.raises(DataError, match="no column 'load'"):
        ts.read_series(path, "date", "load", "M")
    frame = pd.read_csv(path)
    frame["a"] = frame["a"].astype(object)
    frame.loc[5, "a"] = "n/a?"
    frame.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(DataError, match="row 7 is not a number"):
        ts.read_series(tmp_path / "text.csv", "date", "OT", "M")
    frame = pd.read_csv(path)
    frame.loc[5, "a"] = np.nan
    frame.to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(DataError, match="row 7 is empty.*--fill"):
        ts.read_series(tmp_path / "gap.csv", "date", "OT", "M")
    filled = ts.read_series(tmp_path / "gap.csv", "date", "OT", "M", fill="interpolate")
    assert filled.values[5, 0] == pytest.approx(5.0)
    assert ts.read_series(tmp_path / "gap.csv", "date", "OT", "M", fill="ffill").values[5, 0] == 4.0
    frame = pd.read_csv(path)
    frame.loc[[3, 4], "date"] = frame.loc[[4, 3], "date"].to_numpy()
    frame.to_csv(tmp_path / "unsorted.csv", index=False)
    with pytest.raises(DataError, match="not in increasing order"):
        ts.read_series(tmp_path / "unsorted.csv", "date", "OT", "M")
    frame = pd.read_csv(path)
    frame.loc[4, "date"] = frame.loc[3, "date"]
    frame.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(DataError, match="appears twice"):
        ts.read_series(tmp_path / "twice.csv", "date", "OT", "M")
    (tmp_path / "latin1.csv").write_bytes("date,OT\n2024-01-01,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        ts.read_series(tmp_path / "latin1.csv", "date", "OT", "M")


@pytest.mark.parametrize("fill", ["ffill", "interpolate"])
def test_a_column_empty_in_every_row_is_refused_after_filling(tmp_path, fill):
    path = write_csv(tmp_path / "s.csv", n=30, load=np.nan)
    with pytest.raises(DataError) as error:
        ts.read_series(path, "date", "OT", "M", fill=fill)
    assert str(error.value) == f"{path}: column 'load' is empty in every row; --fill has nothing to fill from"
    assert ts.read_series(path, "date", "OT", "S", fill=fill).columns == ["OT"]  # a column the model does not read


def test_the_rows_to_forecast_may_stay_empty_but_not_a_whole_observed_column(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=12, freq="h"),
                          "f": np.arange(12.0), "OT": [1.0] * 9 + [np.nan] * 3})
    frame.to_csv(tmp_path / "ahead.csv", index=False)
    series = ts.read_series(tmp_path / "ahead.csv", "date", "OT", "M", fill="ffill", ahead=True)
    assert series.values.shape == (9, 2) and np.isnan(series.ahead[:, 1]).all()
    frame["f"] = np.nan
    frame.to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(DataError, match="column 'f' is empty in every row"):
        ts.read_series(tmp_path / "empty.csv", "date", "OT", "M", fill="ffill", ahead=True)


@pytest.mark.parametrize("features", ["M", "S", "MS"])
def test_the_date_column_as_target_is_refused_in_one_line(tmp_path, features):
    path = write_csv(tmp_path / "s.csv", n=30)
    with pytest.raises(DataError) as error:
        ts.read_series(path, "date", "date", features)
    assert "the target 'date' is the date column" in str(error.value) and "\n" not in str(error.value)
