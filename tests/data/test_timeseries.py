"""Time-series data: split bounds, scaling fitted on training rows only, window alignment, and the
checks on the CSV."""

import warnings
from pathlib import Path

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
    np.testing.assert_allclose(restored.var_, values[:70].var(axis=0), rtol=1e-12)  # the variance, scale²


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


def test_a_cell_that_is_no_date_is_named_by_its_row_in_the_files_numbering(tmp_path):
    path = Path("s.csv")
    column = pd.Series(["2024-01-01", "2024-01-02", "yesterday", "2024-01-04"], name="date")
    assert ts.not_a_date(path, column, ValueError("advice")) == (
        "s.csv: column 'date' row 4 is not a date in the form of the first row's '2024-01-01': 'yesterday'")
    first = pd.Series(["yesterday", "2024-01-02"], name="when")  # the first row itself: no form to name
    assert ts.not_a_date(path, first, ValueError("advice")) == "s.csv: column 'when' row 2 is not a date: 'yesterday'"
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=5, freq="D").astype(str), "OT": np.arange(5.0)})
    frame.loc[2, "date"] = "yesterday"
    frame.to_csv(tmp_path / "word.csv", index=False)
    with pytest.raises(DataError) as error:
        ts.read_series(tmp_path / "word.csv", "date", "OT", "S")
    assert str(error.value) == (f"{tmp_path / 'word.csv'}: column 'date' row 4 is not a date in the form of the first "
                                f"row's '2024-01-01': 'yesterday'")


@pytest.mark.parametrize("error, shown", [
    (ValueError("Out of bounds: 1e30. You might want to pass a format\nmore advice"), "Out of bounds: 1e30"),
    (ValueError(""), "ValueError"),  # no message: the error's kind
    (OverflowError(" \n "), "OverflowError"),
])
def test_dates_pandas_refuses_as_a_whole_show_the_first_line_of_its_error(error, shown):
    column = pd.Series(["2024-01-01", "2024-01-02"], name="date")  # every cell alone is a date
    assert ts.not_a_date(Path("s.csv"), column, error) == f"s.csv: column 'date' holds values that are not dates ({shown})"


def test_a_column_pandas_cannot_even_coerce_shows_the_first_error(monkeypatch):
    def refuse(*args, **kwargs):
        raise TypeError("mixed types")
    monkeypatch.setattr(pd, "to_datetime", refuse)
    column = pd.Series(["x", "y"], name="date")
    assert ts.not_a_date(Path("s.csv"), column, ValueError("no dates")) == (
        "s.csv: column 'date' holds values that are not dates (no dates)")


def test_naming_a_bad_date_hides_pandas_format_advice_and_nothing_else(monkeypatch):
    real = pd.to_datetime

    def noisy(*args, **kwargs):
        warnings.warn("could not infer format", UserWarning)
        warnings.warn("something else", RuntimeWarning)
        return real(*args, **kwargs)
    monkeypatch.setattr(pd, "to_datetime", noisy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = ts.not_a_date(Path("s.csv"), pd.Series(["2024-01-01", "soon"], name="date"), ValueError("x"))
    assert [w.category for w in caught] == [RuntimeWarning]
    assert message.endswith("row 3 is not a date in the form of the first row's '2024-01-01': 'soon'")


def test_split_bounds_at_their_edges():
    ett = ts.split_bounds(14400, "ett", input_len=336, horizon=96)  # exactly 20 months of 30 days: enough
    assert ett["test"] == (11520 - 336, 14400)
    assert ts.split_bounds(100, "0.3,0.4,0.3", input_len=20, horizon=10) == {  # train exactly L + H rows
        "train": (0, 30), "valid": (10, 70), "test": (50, 100)}
    for bad in ("a,b,c", "0.5,0.5", "0.7,0,0.3", "0.8,0.1,0.2", "0.6,0.1,0.2"):  # sums 1.1 and 0.9
        with pytest.raises(DataError, match=r"^--split must be 'ett' or three positive fractions summing to 1"):
            ts.split_bounds(1000, bad, 20, 10)
    with pytest.raises(DataError) as error:  # 42 / 6 / 12 rows; valid reads rows 22 … 47
        ts.split_bounds(60, "0.7,0.1,0.2", input_len=20, horizon=10)
    assert str(error.value) == ("the valid split has 26 rows; a window needs input_len + horizon = 30 "
                                "(shorten them or give a longer series)")
    with pytest.raises(DataError, match="^the train split has 0 rows; a window needs input_len \\+ horizon = 3 "):
        ts.split_bounds(5, "0.1,0.1,0.8", input_len=2, horizon=1)  # int(0.5) = 0 training rows


def test_reading_dates_hides_pandas_format_advice_and_nothing_else(tmp_path, monkeypatch):
    path = tmp_path / "pm.csv"  # no format pandas can infer: it parses cell by cell and says so (a UserWarning)
    path.write_text("date,OT\nJan-01-2024 10:00 PM,1\nJan-02-2024 10:00 PM,2\nJan-03-2024 10:00 PM,3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = ts.read_series(path, "date", "OT", "S")
    assert caught == [] and list(series.timestamps) == list(pd.date_range("2024-01-01 22:00", periods=3, freq="D"))
    real = pd.to_datetime

    def noisy(*args, **kwargs):
        warnings.warn("something else", RuntimeWarning)
        return real(*args, **kwargs)
    monkeypatch.setattr(pd, "to_datetime", noisy)
    with pytest.warns(RuntimeWarning, match="something else"):
        ts.read_series(path, "date", "OT", "S")


def test_dates_in_mixed_time_zones_are_refused_with_pandas_first_line(tmp_path):
    path = tmp_path / "zones.csv"  # each cell a date, the column not: pandas refuses the mix as a whole
    path.write_text("date,OT\n2024-01-01 00:00+01:00,1\n2024-01-01 01:00+02:00,2\n")
    with pytest.raises(DataError) as error:
        ts.read_series(path, "date", "OT", "S")
    assert str(error.value).startswith(f"{path}: column 'date' holds values that are not dates (Mixed timezones detected")


def test_by_default_every_row_is_read_and_messages_name_the_file(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=6, freq="h"), "OT": [1.0, 2, 3, 4, np.nan, np.nan]})
    frame.to_csv(tmp_path / "tail.csv", index=False)
    series = ts.read_series(tmp_path / "tail.csv", "date", "OT", "S", fill="ffill")  # no rows kept apart
    assert series.values[:, 0].tolist() == [1, 2, 3, 4, 4, 4] and series.ahead is None
    path = write_csv(tmp_path / "s.csv", n=5)
    with pytest.raises(DataError) as error:
        ts.read_series(path, "date", "load", "M")
    assert str(error.value) == f"{path} has no column 'load'; its columns are date, a, OT"
    with pytest.raises(DataError) as error:
        ts.read_series(path, "date", "date", "M")
    assert str(error.value) == ts.target_is_date(path, "date") and str(error.value).startswith(f"{path}: the target")


def test_each_bad_row_is_named_by_its_line_in_the_file(tmp_path):
    def refused(name, dates, ot=("1", "2", "3", "4", "5")):
        path = tmp_path / name
        path.write_text("date,OT\n" + "".join(f"{d},{v}\n" for d, v in zip(dates, ot)))
        with pytest.raises(DataError) as error:
            ts.read_series(path, "date", "OT", "S", ahead=True)
        return str(error.value).removeprefix(f"{path}: ")
    hours = [f"2024-01-01 0{h}:00" for h in range(5)]
    assert refused("gap.csv", hours[:2] + [""] + hours[3:]) == "column 'date' row 4 has no date"
    twice = hours[:3] + hours[2:3] + hours[4:]  # the third timestamp again on the fourth row (line 5)
    assert refused("twice.csv", twice) == "timestamp 2024-01-01 02:00:00 appears twice (rows 4 and 5)"
    swapped = hours[:2] + [hours[3], hours[2]] + hours[4:]
    assert refused("swapped.csv", swapped) == "timestamps are not in increasing order (row 5 comes before row 4)"
    assert refused("word.csv", hours, ot=("1", "2", "x", "4", "5")) == "column 'OT' row 4 is not a number: 'x'"
    assert refused("no_value.csv", hours, ot=[""] * 5) == "column 'OT' has no value; the rows before the forecast need it"


def test_integer_files_are_read_as_float64_and_the_rows_to_forecast_kept_per_feature_mode(tmp_path):
    path = tmp_path / "ints.csv"
    path.write_text("date,a,OT\n" + "".join(f"2024-01-0{d},{d},{10 * d}\n" for d in range(1, 6)))
    series = ts.read_series(path, "date", "OT", "M", ahead=True)  # every target cell filled: nothing to forecast
    assert series.values.dtype == np.float64 and series.ahead.dtype == np.float64 and series.ahead.shape == (0, 2)
    assert series.inputs == [0, 1] and series.targets == [0, 1]
    path.write_text("date,a,OT\n" + "".join(f"2024-01-0{d},{d},{10 * d if d < 4 else ''}\n" for d in range(1, 6)))
    single = ts.read_series(path, "date", "OT", "S", ahead=True)
    assert single.values.tolist() == [[10.0], [20.0], [30.0]] and single.ahead.shape == (2, 1)
    assert np.isnan(single.ahead).all() and list(single.ahead_timestamps.day) == [4, 5]


def test_read_table_splits_a_tsv_on_tabs_and_reads_dtype_and_verbatim_columns(tmp_path):
    tsv = tmp_path / "t.tsv"
    tsv.write_text("id\tname\tv\n007\tNA\t1\n008\t\t2\n")
    frame = ts.read_table(tsv, dtype={"id": str}, verbatim="name")
    assert list(frame.columns) == ["id", "name", "v"] and list(frame["id"]) == ["007", "008"]
    assert frame["name"].iloc[0] == "NA" and pd.isna(frame["name"].iloc[1])  # only an empty cell is missing
    assert list(frame["v"]) == [1, 2]
    one = tmp_path / "one.csv"
    one.write_text("name\nNA\nnull\n")
    assert list(ts.read_table(one, verbatim="name")["name"]) == ["NA", "null"]
    num = tmp_path / "num.csv"
    num.write_text("name,v\n007,1\n010,2\n")  # digits stay text as written
    assert list(ts.read_table(num, verbatim="name")["name"]) == ["007", "010"]


def test_read_table_names_its_errors(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=r"ragged.csv is not a readable CSV file: Error tokenizing data"):
        ts.read_table(ragged)
    header_only = tmp_path / "h.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(DataError, match=r"h.csv has a header but no rows"):
        ts.read_table(header_only)
    twice = tmp_path / "twice.tsv"
    twice.write_text("a\ta\n1\t2\n")
    with pytest.raises(DataError, match=r"twice.tsv names the column 'a' twice"):
        ts.read_table(twice)


def test_numeric_values_names_the_row_and_value_of_an_infinite_cell():
    data = pd.DataFrame({"a": ["1", "2", "5", "-inf"]})
    with pytest.raises(DataError, match=r"^p.csv: column 'a' row 5 is not a finite number: -inf \(infinite"):
        ts.numeric_values(data, Path("p.csv"))


def test_empty_column_of_a_frame_without_rows_is_none():
    assert ts.empty_column(pd.DataFrame({"a": []})) is None
    assert ts.empty_column(pd.DataFrame({"a": [1.0], "b": [np.nan]})) == "b"


def test_windows_batch_with_future_columns_gives_x_y_and_future():
    windows = ts.Windows(np.arange(10, dtype=np.float32).reshape(5, 2), input_len=2, horizon=1, future=[1])
    batch = windows.batch([1])
    assert batch["x"].tolist() == [[[2, 3], [4, 5]]] and batch["y"].tolist() == [[[6, 7]]]
    assert batch["future"].tolist() == [[[7]]]
