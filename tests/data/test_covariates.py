"""Covariate columns: calendar features against hand-computed sines and cosines, the arranged column
order and targets under each --features, the rows to forecast kept apart, contradictions refused, and
windows that carry nothing after the origin but the future covariates."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.data import covariates as cov
from seqlab.data import timeseries as ts
from seqlab.errors import DataError
from seqlab.tasks.forecast import ForecastDataConfig


def test_calendar_features_equal_hand_computed_sines_and_cosines():
    # Friday 15 March 2024 (a leap year), 06:45:30: minute phase (45 + 30/60)/60, hour (6 + 45.5/60)/24,
    # weekday 4/7 (Monday 0), month 2/12, day of year (31 + 29 + 15 - 1)/366.
    stamps = pd.DatetimeIndex(["2024-03-15 06:45:30", "2023-01-01 00:00:00"])
    values, columns = cov.calendar_features(stamps, ["minute", "hour", "weekday", "month", "dayofyear"])
    assert columns == ["minute_sin", "minute_cos", "hour_sin", "hour_cos", "weekday_sin", "weekday_cos",
                       "month_sin", "month_cos", "dayofyear_sin", "dayofyear_cos"]
    phases = [45.5 / 60, (6 + 45.5 / 60) / 24, 4 / 7, 2 / 12, 74 / 366]
    expected = [f(2 * math.pi * p) for p in phases for f in (math.sin, math.cos)]
    np.testing.assert_allclose(values[0], expected, atol=1e-12)
    # 1 January 2023 00:00 was a Sunday: every phase 0 but the weekday's 6/7.
    expected = [0, 1, 0, 1, math.sin(2 * math.pi * 6 / 7), math.cos(2 * math.pi * 6 / 7), 0, 1, 0, 1]
    np.testing.assert_allclose(values[1], expected, atol=1e-12)
    assert cov.auto_cycles(pd.Timedelta(hours=1)) == ["hour", "weekday", "dayofyear"]
    assert cov.auto_cycles(pd.Timedelta(days=1)) == ["weekday", "dayofyear"]


@pytest.fixture
def table(tmp_path):
    """Hourly rows: load and OT (modelled), temp (a past covariate), plan (a future one); the last three
    rows are to forecast (OT and load empty, plan filled, temp empty)."""
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=10, freq="h"),
                          "load": np.arange(10.0), "temp": np.arange(10.0) + 100, "OT": np.arange(10.0) + 200,
                          "plan": np.arange(10.0) + 300})
    frame.loc[7:, ["load", "temp", "OT"]] = np.nan
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def data(**settings):
    return ForecastDataConfig(**{"target": "OT", "input_len": 2, "horizon": 3, **settings})


@pytest.mark.parametrize("features, columns, targets", [
    ("M", ["load", "OT", "temp", "plan", "hour_sin", "hour_cos"], [0, 1]),
    ("MS", ["load", "OT", "temp", "plan", "hour_sin", "hour_cos"], [1]),
    ("S", ["OT", "temp", "plan", "hour_sin", "hour_cos"], [0]),
])
def test_columns_are_modelled_then_past_then_future(table, features, columns, targets):
    series = cov.read_series(table, data(features=features, past_cols="temp", future_cols="plan",
                                         calendar="hour"), ahead=True)
    assert series.columns == columns and series.targets == targets
    n = len(columns)
    assert series.past == [n - 4] and series.future == [n - 3, n - 2, n - 1] and series.inputs == list(range(n))
    assert len(series.values) == 7 and len(series.ahead) == 3  # the rows with OT empty are kept apart
    np.testing.assert_array_equal(series.values[:, columns.index("temp")], np.arange(7.0) + 100)
    np.testing.assert_array_equal(series.ahead[:, columns.index("plan")], [307, 308, 309])
    np.testing.assert_allclose(series.ahead[:, -2], np.sin(2 * np.pi * np.array([7, 8, 9]) / 24), atol=1e-12)
    values, stamps = cov.future_rows(series, 3, table, data(past_cols="temp", future_cols="plan", calendar="hour"))
    assert values.shape == (3, 3) and list(stamps.hour) == [7, 8, 9]


def test_without_the_rows_to_forecast_a_calendar_continues_the_timestamps(table):
    d = data(calendar="hour")
    series = cov.read_series(table, d, ahead=True)
    values, stamps = cov.future_rows(ts.Series(series.values, series.timestamps, series.columns, series.inputs,
                                               series.targets, future=series.future), 3, table, d)
    assert list(stamps.hour) == [7, 8, 9]
    np.testing.assert_allclose(values[:, 1], np.cos(2 * np.pi * np.array([7, 8, 9]) / 24), atol=1e-12)


@pytest.mark.parametrize("settings, message", [
    (dict(past_cols="OT"), "data.past_cols names the target 'OT'"),
    (dict(future_cols="plan,OT"), "data.future_cols names the target 'OT'"),
    (dict(past_cols="temp", future_cols="temp"), "'temp' is in both data.past_cols and data.future_cols"),
    (dict(past_cols="temp,temp"), "names 'temp' twice"),
    (dict(calendar="hour,season"), "unknown cycle 'season'; give 'auto' or some of minute, hour, weekday, month, "
                                   "dayofyear, like hour,weekday$"),
    (dict(past_cols="a,b,a,b"), "data.past_cols names 'a' twice$"),
    (dict(calendar="hour, weekday,hour"), "data.calendar names 'hour' twice$"),
    (dict(past_cols=","), "data.past_cols is ',', which names no column"),  # was: no covariates, silently
    (dict(future_cols=" , "), "data.future_cols is ' , ', which names no column"),
])
def test_contradictions_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        data(**settings)


def test_unknown_columns_and_missing_future_rows_are_one_line(table):
    with pytest.raises(DataError, match=r"has no column 'humidity' \(--past-cols\)"):
        cov.read_series(table, data(past_cols="humidity"), ahead=True)
    d = data(future_cols="plan")
    series = cov.read_series(table, d, ahead=True)
    with pytest.raises(DataError, match="has 3 rows after the last value of 'OT'; the forecast needs 4"):
        cov.future_rows(series, 4, table, d)
    series.ahead[1, series.future[0]] = np.nan
    with pytest.raises(DataError, match="future covariate 'plan' is empty in forecast row 2"):
        cov.future_rows(series, 3, table, d)


def test_a_window_reads_nothing_after_its_origin_but_the_future_covariates():
    # Columns: target, past covariate, future covariate. Window 0 reads rows 0-3 and predicts 4-5.
    values = np.arange(30.0).reshape(10, 3)
    batch = ts.Windows(values, 4, 2, future=[2]).batch([0])
    torch.testing.assert_close(batch["x"][0], torch.tensor(values[:4], dtype=torch.float32))
    torch.testing.assert_close(batch["future"][0], torch.tensor(values[4:6, [2]], dtype=torch.float32))
    assert "future" not in ts.Windows(values, 4, 2).batch([0])


def hourly(path, n=40, first_gap=None, **columns):
    """n hourly rows of a varying OT and the given columns; ``first_gap`` moves every row after the
    first that much later (an irregular first step)."""
    stamps = pd.date_range("2024-01-01", periods=n, freq="h")
    if first_gap is not None:
        stamps = stamps[:1].append(stamps[1:] + first_gap)
    pd.DataFrame({"date": stamps, "OT": np.sin(np.arange(n)), **columns}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fill", ["ffill", "interpolate"])
def test_a_covariate_empty_or_constant_over_the_training_rows_is_refused(tmp_path, fill):
    temp = np.cos(np.arange(40.0))
    empty = np.where(np.arange(40) < 30, np.nan, temp)  # empty in the 28 training rows, values after
    for column, values in (("temp", empty), ("temp", np.where(np.arange(40) < 28, 5.0, temp))):
        d = data(past_cols="temp", fill=fill, features="S")
        series = cov.read_series(hourly(tmp_path / "t.csv", temp=values), d)
        with pytest.raises(DataError, match=r"covariate 'temp' \(--past-cols\) has one value .* every training "
                                            r"row \(the first 28\)"):
            cov.check_training_rows(series, d, 28)
    d = data(future_cols="plan", fill=fill, features="S")  # varying in the training rows: accepted
    cov.check_training_rows(cov.read_series(hourly(tmp_path / "t.csv", plan=temp), d), d, 28)


def test_auto_calendar_follows_the_median_step_not_the_first(tmp_path):
    path = hourly(tmp_path / "gap.csv", first_gap=pd.Timedelta(days=8))  # first step 8 days 1 hour
    d = data(calendar="auto", features="S")
    assert cov.cycles_of(d, cov.read_series(path, d).timestamps) == ["hour", "weekday", "dayofyear"]
    assert cov.resolved(d, cov.read_series(path, d).timestamps).calendar == "hour,weekday,dayofyear"
    assert cov.resolved(data(calendar="hour"), None).calendar == "hour"  # given cycles stay as they are
    one = pd.DatetimeIndex(["2024-01-01 05:00"])  # no step to measure: taken as hourly
    assert cov.cycles_of(d, one) == ["hour", "weekday", "dayofyear"]


def test_a_step_of_exactly_a_week_leaves_the_weekday_out():
    assert cov.auto_cycles(pd.Timedelta(days=7)) == ["dayofyear"]  # every row on the same weekday
    assert cov.auto_cycles(pd.Timedelta(days=6)) == ["weekday", "dayofyear"]
    assert cov.auto_cycles(pd.Timedelta(days=365)) == []  # every row on the same day of the year
    assert cov.auto_cycles(pd.Timedelta(days=364)) == ["dayofyear"]


def test_a_calendar_cycle_at_one_phase_in_every_training_row_is_refused(tmp_path):
    # Hourly rows all fall on minute 0: the minute cycle's sine and cosine are 0 and 1 in every row.
    d = data(calendar="hour,minute", features="S")
    series = cov.read_series(hourly(tmp_path / "t.csv"), d)
    with pytest.raises(DataError, match=r"--calendar minute: every training row \(the first 28\) is at the same "
                                        r"point of the minute cycle.*leave minute out"):
        cov.check_training_rows(series, d, 28)
    d = data(calendar="hour,weekday", features="S")  # the weekday is constant over 23 hours only
    cov.check_training_rows(cov.read_series(hourly(tmp_path / "t.csv"), d), d, 28)
    with pytest.raises(DataError, match="--calendar weekday"):
        cov.check_training_rows(cov.read_series(hourly(tmp_path / "t.csv"), d), d, 23)


def bare(stamps):
    """A series of no columns at these timestamps, with no rows to forecast."""
    return ts.Series(np.zeros((len(stamps), 0)), pd.DatetimeIndex(stamps), [], [], [])


def test_without_rows_to_forecast_the_times_continue_the_last_step_or_an_hour():
    daily = bare(["2024-01-01 05:00", "2024-01-02 05:00"])
    values, times = cov.future_rows(daily, 2, "s.csv", data(calendar="weekday"))
    assert list(times) == [pd.Timestamp("2024-01-03 05:00"), pd.Timestamp("2024-01-04 05:00")]
    phases = np.array([2 / 7, 3 / 7])  # 3 January 2024 was a Wednesday, the 4th a Thursday
    np.testing.assert_allclose(values, np.stack([np.sin(2 * np.pi * phases), np.cos(2 * np.pi * phases)], 1),
                               atol=1e-12)
    values, times = cov.future_rows(bare(["2024-01-01 05:00"]), 2, "s.csv", data(calendar="hour"))
    assert list(times) == [pd.Timestamp("2024-01-01 06:00"), pd.Timestamp("2024-01-01 07:00")]  # one row: hourly
    np.testing.assert_allclose(values[:, 1], np.cos(2 * np.pi * np.array([6, 7]) / 24), atol=1e-12)
    values, _ = cov.future_rows(daily, 2, "s.csv", data(calendar="auto"))  # resolved on the daily timestamps
    assert values.shape == (2, 4)  # weekday and day of year, no hour
    np.testing.assert_allclose(values[:, 0], np.sin(2 * np.pi * phases), atol=1e-12)


def test_too_few_rows_to_forecast_say_what_the_forecast_needs(table):
    d = data(calendar="hour")  # the calendar only: give the rows or none
    series = cov.read_series(table, d, ahead=True)
    with pytest.raises(DataError, match=r"has 3 rows after the last value of 'OT'; give the 4 rows to forecast "
                                        r"\(their timestamps, 'OT' empty\) or none$"):
        cov.future_rows(series, 4, table, d)
    d = data(future_cols="plan,temp")
    with pytest.raises(DataError, match=r"the forecast needs 4: their 'OT' cells empty, their future covariates "
                                        r"\(plan, temp\) filled$"):
        cov.future_rows(cov.read_series(table, d, ahead=True), 4, table, d)


def test_a_constant_future_covariate_or_a_single_training_row_is_one_value(tmp_path):
    plan = np.where(np.arange(40) < 28, 7.0, np.cos(np.arange(40.0)))
    d = data(future_cols="plan", features="S")
    series = cov.read_series(hourly(tmp_path / "t.csv", plan=plan), d)
    with pytest.raises(DataError, match=r"covariate 'plan' \(--future-cols\) has one value \(7\) in every training "
                                        r"row \(the first 28\)"):
        cov.check_training_rows(series, d, 28)
    varying = np.cos(np.arange(40.0))
    series = cov.read_series(hourly(tmp_path / "t.csv", plan=varying), d)
    with pytest.raises(DataError, match=r"covariate 'plan' \(--future-cols\) has one value \(1\) .*\(the first 1\)"):
        cov.check_training_rows(series, d, 1)  # cos 0 = 1


@pytest.mark.parametrize("settings, expected", [
    (dict(), False), (dict(past_cols="temp"), True), (dict(future_cols="plan"), True),
    (dict(calendar="hour"), True),  # " , " names no column: refused (test_contradictions_are_refused)
])
def test_has_covariates_when_any_column_or_cycle_is_named(settings, expected):
    assert cov.has_covariates(data(**settings)) is expected


def test_leave_unscaled_passes_the_calendar_columns_through():
    from sklearn.preprocessing import StandardScaler

    values = np.array([[1.0, 0.5, 10.0], [3.0, -0.5, 30.0]])
    scaler = cov.leave_unscaled(StandardScaler().fit(values), [1])
    np.testing.assert_array_equal(scaler.mean_, [2.0, 0.0, 20.0])
    np.testing.assert_array_equal(scaler.scale_, [1.0, 1.0, 10.0])
    np.testing.assert_array_equal(scaler.var_, [1.0, 1.0, 100.0])
    np.testing.assert_array_equal(scaler.transform(values), [[-1.0, 0.5, -1.0], [1.0, -0.5, 1.0]])


def test_by_default_every_row_is_read_and_gaps_are_errors(table):
    series = cov.read_series(table, data(fill="ffill"))  # the empty trailing rows are filled, not kept apart
    assert len(series.values) == 10 and series.ahead is None
    np.testing.assert_array_equal(series.values[7:, series.columns.index("OT")], [206.0] * 3)
    with pytest.raises(DataError, match=r"column 'load' row 9 is empty; fill the gaps, or train with --fill ffill"):
        cov.read_series(table, data())  # --fill error
    with pytest.raises(DataError) as error:
        cov.read_series(table, data(past_cols="temp", future_cols="humidity"), ahead=True)
    assert str(error.value) == f"{table} has no column 'humidity' (--future-cols); its columns are date, load, temp, OT, plan"


def test_no_cycles_no_calendar_columns_and_a_file_column_of_a_calendar_name_is_refused(table, tmp_path):
    values, columns = cov.calendar_features(pd.DatetimeIndex(["2024-01-01", "2024-01-02"]), [])
    assert values.shape == (2, 0) and columns == []
    frame = pd.read_csv(table)
    frame["hour_cos"] = 1.0
    frame.to_csv(tmp_path / "clash.csv", index=False)
    with pytest.raises(DataError) as error:
        cov.read_series(tmp_path / "clash.csv", data(calendar="hour"), ahead=True)
    assert str(error.value) == (f"{tmp_path / 'clash.csv'} has a column 'hour_cos', the name of a --calendar "
                                f"feature; rename it")
