"""Many series in one long-format CSV: each id read, split, standardised and windowed on its own; the
checks name the id."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.data import panel as pn, timeseries as ts
from seqlab.errors import DataError


def long_frame(sizes=(40, 30, 35), seed=0) -> pd.DataFrame:
    """Ids s0, s1, … with their own start times, levels and lengths; rows grouped by id."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, n in enumerate(sizes):
        parts.append(pd.DataFrame({"id": f"s{k}",
                                   "date": pd.date_range("2024-01-01", periods=n, freq="h") + pd.Timedelta(hours=3 * k),
                                   "x": 100 * k + rng.normal(0, 1 + k, n), "OT": -10 * k + rng.normal(0, 2, n)}))
    return pd.concat(parts, ignore_index=True)


def interleaved(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows ordered by time across ids (each id keeps its own order)."""
    return frame.sort_values(["date", "id"], kind="stable").reset_index(drop=True)


def test_windows_never_cross_from_one_id_into_the_next(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("id,date,v\n"  # interleaved: a's rows hold 1..5, b's 11..14
                    "b,2024-01-01,11\na,2024-01-01,1\na,2024-01-02,2\nb,2024-01-02,12\na,2024-01-03,3\n"
                    "b,2024-01-03,13\na,2024-01-04,4\nb,2024-01-04,14\na,2024-01-05,5\n")
    panel = pn.read_panel(path, "id", "date", "v", "M")
    assert panel.ids == ["a", "b"] and panel.columns == ["v"]
    assert panel.series[0].values[:, 0].tolist() == [1, 2, 3, 4, 5]
    assert panel.series[1].values[:, 0].tolist() == [11, 12, 13, 14]
    assert str(panel.series[1].timestamps[-1]) == "2024-01-04 00:00:00"
    windows = pn.PanelWindows([s.values for s in panel.series], panel.ids, input_len=2, horizon=1)
    assert len(windows) == 3 + 2 and windows.counts == [3, 2]  # never [4, 5] -> 11
    batch = windows.batch(np.arange(5))
    assert batch["x"][..., 0].tolist() == [[1, 2], [2, 3], [3, 4], [11, 12], [12, 13]]
    assert batch["y"][..., 0].tolist() == [[3], [4], [5], [13], [14]]
    assert windows.batch([4, 0])["y"][..., 0].tolist() == [[14], [3]]  # any order, as training draws them
    assert windows.batch([])["x"].shape == (0, 2, 1)  # no window: an empty batch
    in_order = list(windows.in_order(2))
    assert [b["y"][..., 0].tolist() for b in in_order] == [[[3], [4]], [[5], [13]], [[14]]]
    assert windows.owners().tolist() == [0, 0, 0, 1, 1]


def test_grouped_and_interleaved_rows_give_the_same_series_and_windows(tmp_path):
    frame = long_frame()
    grouped, mixed = tmp_path / "grouped.csv", tmp_path / "mixed.csv"
    frame.to_csv(grouped, index=False)
    interleaved(frame).to_csv(mixed, index=False)
    assert pd.read_csv(mixed)["id"].iloc[:8].tolist() != pd.read_csv(grouped)["id"].iloc[:8].tolist()
    a, b = (pn.read_panel(p, "id", "date", "OT", "M") for p in (grouped, mixed))
    assert a.ids == b.ids == ["s0", "s1", "s2"]
    for one, other in zip(a.series, b.series):
        np.testing.assert_array_equal(one.values, other.values)
        assert one.timestamps.equals(other.timestamps)
    wa, wb = (pn.PanelWindows([s.values for s in p.series], p.ids, 6, 2) for p in (a, b))
    for key in ("x", "y"):
        np.testing.assert_array_equal(wa.batch(np.arange(len(wa)))[key], wb.batch(np.arange(len(wb)))[key])


def test_each_id_is_split_and_standardised_by_its_own_training_rows(tmp_path):
    frame = interleaved(long_frame())
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    panel = pn.read_panel(path, "id", "date", "OT", "M")
    bounds = pn.split_panel(panel, "0.6,0.2,0.2", 4, 2, path)
    scalers = pn.fit_scalers(panel, bounds)
    for name, group in frame.groupby("id"):
        n_train = int(len(group) * 0.6)  # fractions of each id's own rows
        assert bounds[name]["train"] == (0, n_train)
        rows = group.iloc[:n_train][["x", "OT"]]
        np.testing.assert_allclose(scalers[name].mean_, rows.mean().to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(scalers[name].scale_, rows.std(ddof=0).to_numpy(), rtol=1e-12)
    restored = pn.scalers_from_state(pn.scalers_state(scalers))
    assert list(restored) == ["s0", "s1", "s2"]
    np.testing.assert_array_equal(restored["s1"].mean_, scalers["s1"].mean_)


def test_pooled_scaler_unscales_each_window_with_its_own_ids_scaler(tmp_path):
    frame = long_frame()
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    panel = pn.read_panel(path, "id", "date", "OT", "M")
    scalers = pn.fit_scalers(panel, pn.split_panel(panel, "0.6,0.2,0.2", 4, 2, path))
    windows = pn.PanelWindows([scalers[n].transform(s.values) for n, s in zip(panel.ids, panel.series)],
                              panel.ids, 4, 2)
    y = windows.batch(np.arange(len(windows)))["y"].numpy().astype(np.float64)  # (N, 2, C) standardised
    back = pn.PooledScaler(scalers, windows).inverse_transform(y.reshape(-1, 2)).reshape(y.shape)
    first = 0
    for k, (name, group) in enumerate(frame.groupby("id")):
        own = group[["x", "OT"]].to_numpy()
        for j in range(windows.counts[k]):  # window j of this id predicts rows j+4, j+5 of the id
            np.testing.assert_allclose(back[first + j], own[j + 4:j + 6], rtol=1e-5, atol=1e-4)
        first += windows.counts[k]


def test_pooled_scaler_takes_whole_windows_only_even_a_single_one():
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit([[0.0], [2.0]])  # mean 1, scale 1
    one = pn.PanelWindows([np.zeros((3, 1))], ["a"], input_len=2, horizon=1)  # a single window
    assert one.counts == [1]
    np.testing.assert_array_equal(pn.PooledScaler({"a": scaler}, one).inverse_transform(np.array([[5.0]])), [[6.0]])
    two = pn.PanelWindows([np.zeros((5, 1)), np.zeros((4, 1))], ["a", "b"], input_len=2, horizon=1)  # 3 + 2
    with pytest.raises(ValueError, match="^7 rows are not whole windows of 5$"):
        pn.PooledScaler({"a": scaler, "b": scaler}, two).inverse_transform(np.zeros((7, 1)))


def test_gaps_are_filled_within_their_own_id(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("id,date,v\na,2024-01-01,1\nb,2024-01-01,\nb,2024-01-02,7\na,2024-01-02,\n")
    panel = pn.read_panel(path, "id", "date", "v", "M", fill="ffill")
    assert panel.series[0].values[:, 0].tolist() == [1, 1]  # a's gap from a, not from b's 7
    assert panel.series[1].values[:, 0].tolist() == [7, 7]  # b's first row back-filled from b


@pytest.mark.parametrize("text, kwargs, message", [
    ("id,date,v\na,2024-01-01,1\n", {"id_col": "store"}, "has no column 'store'; its columns are id, date, v"),
    ("id,date,v\na,2024-01-01,1\nb,2024-01-01,2\nb,2024-01-01,3\n", {}, "id 'b' has timestamp 2024-01-01 00:00:00 "
                                                                         "twice (rows 3 and 4)"),
    ("id,date,v\na,2024-01-02,1\nb,2024-01-01,2\na,2024-01-01,3\n", {}, "id 'a''s timestamps are not in increasing "
                                                                         "order (row 4 comes before row 2)"),
    ("id,date,v\na,2024-01-01,1\n,2024-01-02,2\n", {}, "column 'id' row 3 has no id"),
    ("id,date,v\na,2024-01-01,1\nb,2024-01-01,\n", {}, "column 'v' row 3 (id 'b') is empty"),
    ("id,date,v\na,2024-01-01,x\n", {}, "column 'v' row 2 is not a number"),
    ("id,date,v\na,2024-01-01,1\n", {"id_col": "date"}, "--id-col and the date column are both 'date'"),
])
def test_bad_long_files_name_the_row_and_the_id(tmp_path, text, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        pn.read_panel(path, kwargs.get("id_col", "id"), "date", "v", "M")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_id_too_short_for_the_split_is_named(tmp_path):
    path = tmp_path / "long.csv"
    long_frame(sizes=(40, 12, 35)).to_csv(path, index=False)
    panel = pn.read_panel(path, "id", "date", "OT", "M")
    with pytest.raises(DataError, match=r"id 's1' \(12 rows\): the train split has 7 rows; a window needs"):
        pn.split_panel(panel, "0.6,0.2,0.2", 6, 2, path)
    with pytest.raises(DataError, match=r"id 's0' has 40 rows; the default ETT split needs 14,400"):
        pn.split_panel(panel, "ett", 6, 2, path)


def test_shuffled_training_batches_stay_within_ids_and_resume_exactly():
    parts = [1000 * k + np.arange(n, dtype=float)[:, None] for k, n in enumerate((20, 9, 14))]  # id k, row r: 1000k + r
    windows = pn.PanelWindows(parts, ["a", "b", "c"], input_len=4, horizon=2)
    first = ts.window_batches(windows, batch_size=5, seed=3)
    seen = [next(first) for _ in range(7)]  # past the end of the first epoch (31 windows)
    for batch in seen:
        rows = torch.cat([batch["x"], batch["y"]], dim=1)[..., 0]  # (B, L + H): consecutive rows of one id
        assert torch.equal(rows - rows[:, :1], torch.arange(6.0).expand_as(rows))
    state = first.state_dict()
    again = ts.window_batches(windows, batch_size=5, seed=3)
    again.load_state_dict(state)
    for _ in range(4):
        a, b = next(first), next(again)
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])


@pytest.mark.parametrize("fill", ["ffill", "interpolate"])
def test_a_column_empty_in_every_row_of_one_id_is_refused_after_filling(tmp_path, fill):
    frame = long_frame()
    frame.loc[frame["id"] == "s1", "x"] = np.nan
    frame.loc[5, "OT"] = np.nan  # a gap the fill does fill
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as error:
        pn.read_panel(path, "id", "date", "OT", "M", fill=fill)
    assert str(error.value) == f"{path}: id 's1': column 'x' is empty in every row; --fill has nothing to fill from"
    panel = pn.read_panel(path, "id", "date", "OT", "S", fill=fill)  # x is not read
    assert not any(np.isnan(s.values).any() for s in panel.series)


@pytest.mark.parametrize("features", ["M", "S", "MS"])
def test_the_date_column_as_target_is_refused_in_one_line(tmp_path, features):
    path = tmp_path / "long.csv"
    long_frame().to_csv(path, index=False)
    with pytest.raises(DataError) as error:
        pn.read_panel(path, "id", "date", "date", features)
    assert "the target 'date' is the date column" in str(error.value) and "\n" not in str(error.value)


def test_ids_that_pandas_would_read_as_missing_are_names(tmp_path):
    names = ["NA", "None", "null", "nan", "N/A", "007"]
    path = tmp_path / "long.csv"
    path.write_text("id,date,v\n" + "".join(f"{n},2024-01-0{d},{k * 10 + d}\n"
                                            for k, n in enumerate(names) for d in (1, 2)))
    panel = pn.read_panel(path, "id", "date", "v", "M")
    assert panel.ids == sorted(names)
    assert panel.series[panel.ids.index("None")].values[:, 0].tolist() == [11, 12]
    path.write_text("id,date,v\nNA,2024-01-01,1\n  ,2024-01-02,2\n")
    with pytest.raises(DataError, match="column 'id' row 3 has no id"):  # only an empty (or blank) cell
        pn.read_panel(path, "id", "date", "v", "M")


def test_ids_differing_only_by_surrounding_spaces_are_refused(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("id,date,v\nc,2024-01-01,1\nc ,2024-01-02,2\nd,2024-01-01,3\n")
    with pytest.raises(DataError) as error:
        pn.read_panel(path, "id", "date", "v", "M")
    assert "the ids 'c' and 'c ', which differ only by spaces around them" in str(error.value)
    path.write_text("id,date,v\n c,2024-01-01,1\n c,2024-01-02,2\n")  # one way throughout: the id as written
    assert pn.read_panel(path, "id", "date", "v", "M").ids == [" c"]


def test_the_ett_split_takes_an_id_of_exactly_twenty_months():
    rows = sum(ts.ETT_HOURS)
    stamps = pd.date_range("2024-01-01", periods=rows, freq="h")
    one = ts.Series(np.zeros((rows, 1)), stamps, ["v"], [0], [0])
    short = ts.Series(np.zeros((rows - 1, 1)), stamps[:-1], ["v"], [0], [0])
    bounds = pn.split_panel(pn.Panel(["a"], [one]), "ett", 336, 96, "p.csv")
    assert bounds["a"]["test"] == (11520 - 336, 14400)
    with pytest.raises(DataError, match="id 'b' has 14,399 rows; the default ETT split needs 14,400"):
        pn.split_panel(pn.Panel(["a", "b"], [one, short]), "ett", 336, 96, "p.csv")


@pytest.mark.parametrize("text, target, message", [
    ("id,date,v\na,2024-01-01,1\na,2024-01-02,2\nb,2024-01-01,5\na,2024-01-02,3\n", "v",
     "id 'a' has timestamp 2024-01-02 00:00:00 twice (rows 3 and 5)"),  # not a's first step
    ("id,date,v\na,2024-01-01,1\na,2024-01-03,2\nb,2024-01-01,5\na,2024-01-02,3\n", "v",
     "id 'a''s timestamps are not in increasing order (row 5 comes before row 3)"),
    ("id,date,v\na,2024-01-01,1\na,,2\n", "v", "column 'date' row 3 has no date"),
    ("id,date,v\na,2024-01-01,1\na,someday,2\n", "v",
     "column 'date' row 3 is not a date in the form of the first row's '2024-01-01': 'someday'"),
    ("id,date,v\na,2024-01-01,1\na,2024-01-02,x\n", "v", "column 'v' row 3 is not a number: 'x'"),
    ("id,date,v\na,2024-01-01,1\n", "id", "the target 'id' is the id column; the target is a column of numbers"),
    ("id,date,v\na,2024-01-01,1\n", "date",
     "the target 'date' is the date column; the target is a column of numbers (--target)"),
    ("id,date,v\nc,2024-01-01,1\nd,2024-01-01,2\nd ,2024-01-02,3\nc ,2024-01-02,4\n", "v",
     "column 'id' holds the ids 'c' and 'c ', which differ only by spaces around them; write each id one way"),
    ("id,date,v\nc,2024-01-01,1\nc ,2024-01-02,2\n c,2024-01-03,3\n", "v",
     "column 'id' holds the ids 'c' and 'c ', which differ only by spaces around them; write each id one way"),
])
def test_bad_long_files_get_their_exact_message(tmp_path, text, target, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        pn.read_panel(path, "id", "date", target, "M")
    assert str(error.value) == f"{path}: {message}"


@pytest.mark.parametrize("features, columns, targets", [("M", ["x", "OT"], [0, 1]), ("MS", ["x", "OT"], [1]),
                                                        ("S", ["OT"], [0])])
def test_every_ids_series_carries_the_columns_inputs_and_targets(tmp_path, features, columns, targets):
    path = tmp_path / "long.csv"
    path.write_text("id,date,x,OT\na,2024-01-01,1,2\na,2024-01-02,3,4\nb,2024-01-01,5,6\n")  # integers
    panel = pn.read_panel(path, "id", "date", "OT", features)
    assert panel.columns == columns and panel.inputs == list(range(len(columns))) and panel.targets == targets
    for series in panel.series:
        assert series.columns == columns and series.inputs == list(range(len(columns)))
        assert series.targets == targets and series.values.dtype == np.float64
    assert panel.series[0].values.tolist() == ([[1, 2], [3, 4]] if features != "S" else [[2], [4]])


@pytest.mark.parametrize("fill, expected", [("ffill", [2, 2, 2, 6, 6]), ("interpolate", [2, 2, 4, 6, 6])])
def test_each_fill_fills_as_pandas_does(tmp_path, fill, expected):
    path = tmp_path / "long.csv"
    path.write_text("id,date,v\n" + "".join(f"a,2024-01-0{d},{v}\n" for d, v in zip(range(1, 6), ["", 2, "", 6, ""])))
    panel = pn.read_panel(path, "id", "date", "v", "M", fill=fill)
    assert panel.series[0].values[:, 0].tolist() == expected  # both ends filled too


def test_dates_pandas_refuses_as_a_whole_name_pandas_reason(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("id,date,v\na,2024-01-01 00:00+01:00,1\na,2024-01-02 00:00+02:00,2\n")  # two offsets
    with pytest.raises(DataError) as error:
        pn.read_panel(path, "id", "date", "v", "M")
    assert str(error.value).startswith(f"{path}: column 'date' holds values that are not dates (Mixed timezones")


def test_a_long_file_of_numeric_looking_ids_reads_without_a_pandas_warning(tmp_path):
    path = tmp_path / "long.csv"  # ids 0 … 999 then "x": pandas would guess the column's type chunk by chunk
    path.write_text("id,date,v\n" + "".join(f"{i % 1000},2024-01-01,1\n" for i in range(300_000)) + "x,2024-01-01,1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DtypeWarning would be a second line on stderr
        with pytest.raises(DataError, match="has no column 'nope'"):
            pn.read_panel(path, "id", "date", "nope", "M")


def test_dates_pandas_reads_one_by_one_are_read_without_its_advice(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("id,date,v\na,1/2/24,1\na,1/3/24,2\n")  # pandas infers no format: it warns, then parses
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        panel = pn.read_panel(path, "id", "date", "v", "M")
    assert [str(t) for t in panel.series[0].timestamps] == ["2024-01-02 00:00:00", "2024-01-03 00:00:00"]
