"""Forecasting with covariates end to end: a series driven by a future covariate is learned far better
with it than without; nothing after the forecast origin but the future covariates over the horizon
changes a forecast (bitwise); predict reads the rows to forecast from the file (and draws them); and
contradictory settings, missing rows to forecast and an ONNX export are one line with exit status 2."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.data import timeseries as ts
from seqlab.tasks.forecast import Forecast, forward

from test_forecast_task import FAST, run_cli  # pytest puts this directory on sys.path

L, H = 48, 12
COVARIATES = ["--features", "S", "--past-cols", "temp", "--future-cols", "plan", "--calendar", "hour"]


@pytest.fixture(scope="module")
def driven_csv(tmp_path_factory):
    """load = 3·plan + a daily cycle + noise (σ 0.1), where plan switches on and off at random each
    hour: known ahead, it explains most of the load; from the past alone it cannot be foreseen. temp
    (a past covariate) is a random walk."""
    rng = np.random.default_rng(0)
    n, t = 1000, np.arange(1000)
    plan = rng.integers(0, 2, n).astype(float)
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"),
                          "temp": rng.normal(0, 0.3, n).cumsum(), "plan": plan,
                          "load": 3 * plan + np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.1, n)})
    path = tmp_path_factory.mktemp("driven") / "driven.csv"
    frame.to_csv(path, index=False)
    return path


def train(tmp_path, csv, capsys, *flags):
    run = tmp_path / "run"
    code, _, err = run_cli("train", "forecast", "--csv", csv, "--target", "load", "--model", "linear",
                           "--out", run, "--max-steps", 100, "--set", "train.precision=fp32", *FAST, *flags,
                           capsys=capsys)
    assert code == 0, err
    return run, json.loads((run / "metrics.json").read_text())


def test_a_future_covariate_is_learned_and_lowers_the_error_far(tmp_path, driven_csv, capsys):
    # Without plan the load's standardised variance is mostly unforeseeable (3·plan is ~95 % of it);
    # with it the error falls to the daily cycle's and the noise's share.
    _, without = train(tmp_path / "without", driven_csv, capsys, "--features", "S")
    run, with_ = train(tmp_path / "with", driven_csv, capsys, *COVARIATES)
    assert without["test_mse"] > 0.7, without
    assert with_["test_mse"] < 0.1 * without["test_mse"], (with_, without)
    series = json.loads((run / "series.json").read_text())
    assert series["columns"] == ["load", "temp", "plan", "hour_sin", "hour_cos"]
    assert series["targets"] == [0] and series["past"] == [1] and series["future"] == [2, 3, 4]
    assert series["scaler"]["mean"][3:] == [0, 0] and series["scaler"]["scale"][3:] == [1, 1]  # sin/cos as they are


@pytest.fixture(scope="module")
def trained(tmp_path_factory, driven_csv):
    from seqlab.cli.main import main

    run = tmp_path_factory.mktemp("runs") / "quantiles"
    assert main([str(a) for a in ["train", "forecast", "--csv", driven_csv, "--target", "load", "--model", "patch",
                                  *COVARIATES, "--quantiles", "0.1,0.5,0.9", "--out", run, "--max-steps", 30,
                                  "--set", "train.precision=fp32", *FAST]]) == 0
    return run


def test_nothing_after_the_origin_but_the_future_covariates_changes_a_forecast(trained, driven_csv):
    forecast = Forecast.load(trained)
    series = forecast.read_csv(driven_csv, L + H, "")
    scaled = forecast.scaler.transform(series.values)
    assert forecast.past == [1] and forecast.future == [2, 3, 4]
    with torch.no_grad():
        for origin in (L, 300, len(scaled) - H):
            window = origin - L

            def forecast_at(values):
                return forward(forecast.model, ts.Windows(values, L, H, forecast.future).batch([window]))

            before = forecast_at(scaled)
            changed = scaled.copy()  # the target and the past covariate after the origin: never read
            changed[origin:, :2] = np.random.default_rng(origin).normal(0, 100, (len(scaled) - origin, 2))
            changed[origin + H:, 2] = 50.0  # the future covariate beyond the horizon: never read
            assert torch.equal(forecast_at(changed), before)
            changed[origin + 3, 2] += 1.0  # the future covariate in the horizon: read
            assert not torch.equal(forecast_at(changed), before)


def test_predict_reads_the_rows_to_forecast_and_reloads_the_same(trained, driven_csv, tmp_path, capsys):
    frame = pd.read_csv(driven_csv)
    ahead = frame.iloc[:900].copy()
    ahead.loc[888:, ["load", "temp"]] = np.nan  # the last 12 rows: to forecast, plan known
    path = tmp_path / "ahead.csv"
    ahead.to_csv(path, index=False)
    out, picture = tmp_path / "forecast.csv", tmp_path / "forecast.png"
    # --out into a folder that does not exist: refused before the picture is drawn (nothing half-made)
    code, _, err = run_cli("predict", trained, "--csv", path, "--out", tmp_path / "nowhere" / "forecast.csv",
                           "--plot", picture, capsys=capsys)
    assert code == 2 and "does not exist" in err and not picture.exists(), err
    # --out with a picture's name: CSV text would land in a .png; refused, pointing at --plot
    for name in ("forecast.png", "forecast.JPG"):  # the hint names a PNG, what --plot draws
        code, _, err = run_cli("predict", trained, "--csv", path, "--out", tmp_path / name, capsys=capsys)
        assert code == 2 and f"--plot {picture} draws the forecast" in err and not (tmp_path / name).exists(), err
    code, _, err = run_cli("predict", trained, "--csv", path, "--out", out, "--plot", picture, capsys=capsys)
    assert code == 0, err
    result = pd.read_csv(out, parse_dates=["date"])
    assert list(result.columns) == ["date", "load", "load_q0.1", "load_q0.9"]
    assert list(result["date"]) == list(pd.to_datetime(frame["date"].iloc[888:900]))
    assert (result["load_q0.1"] <= result["load"]).all() and (result["load"] <= result["load_q0.9"]).all()
    assert picture.is_file()
    forecast = Forecast.load(trained)
    np.testing.assert_allclose(forecast.predict_csv(path).iloc[:, 1:].to_numpy(), result.iloc[:, 1:].to_numpy(),
                               rtol=1e-6)  # the reloaded run's forecast is the one predict wrote
    # A past covariate written into the rows to forecast is not read; a future covariate there is.
    filled = ahead.assign(temp=ahead["temp"].fillna(1000.0))
    filled.to_csv(tmp_path / "filled.csv", index=False)
    pd.testing.assert_frame_equal(forecast.predict_csv(tmp_path / "filled.csv"), forecast.predict_csv(path),
                                  check_exact=True)
    flipped = ahead.assign(plan=np.where(ahead.index >= 888, 1 - ahead["plan"], ahead["plan"]))
    flipped.to_csv(tmp_path / "flipped.csv", index=False)
    moved = forecast.predict_csv(tmp_path / "flipped.csv")["load"] - forecast.predict_csv(path)["load"]
    assert (moved.abs() > 0).all()


@pytest.mark.parametrize("flags, message", [
    (["--past-cols", "humidity"], "has no column 'humidity' (--past-cols)"),
    (["--past-cols", "date"], "--past-cols names 'date', the timestamp column (--date-col)"),
    (["--future-cols", "load"], "data.future_cols names the target 'load'"),
    (["--past-cols", "plan", "--future-cols", "plan"], "'plan' is in both data.past_cols and data.future_cols"),
    (["--calendar", "hour,season"], "unknown cycle 'season'"),
    (["--calendar", "hour,hour"], "data.calendar names 'hour' twice"),
])
def test_contradictory_covariates_are_one_line_and_exit_2(tmp_path, driven_csv, capsys, flags, message):
    out_dir = tmp_path / "run"
    code, _, err = run_cli("train", "forecast", "--csv", driven_csv, "--target", "load", "--out", out_dir, *FAST,
                           *flags, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out_dir.exists()


def test_missing_rows_to_forecast_and_onnx_export_are_one_line_and_exit_2(trained, driven_csv, tmp_path, capsys):
    frame = pd.read_csv(driven_csv).iloc[:900]
    frame.loc[895:, "load"] = np.nan  # 5 rows to forecast; the horizon is 12
    frame.to_csv(tmp_path / "short.csv", index=False)
    for path in (tmp_path / "short.csv", driven_csv):
        code, _, err = run_cli("predict", trained, "--csv", path, capsys=capsys)
        assert code == 2 and "after the last value of 'load'; the forecast needs 12" in err, err
        assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli("export", trained, "--format", "onnx", "--out", tmp_path / "onnx", capsys=capsys)
    assert code == 2 and "reads covariates" in err and len(err.strip().splitlines()) == 1, err


def test_auto_searches_with_the_covariates_and_its_mean_of_two_reads_them(tmp_path, driven_csv, capsys):
    """--model auto trains every candidate with the covariates; --top-k 2's ensemble passes the future
    covariates to each member, and its run predicts from the rows to forecast."""
    run = tmp_path / "auto"
    code, out, err = run_cli("train", "forecast", "--csv", driven_csv, "--target", "load", *COVARIATES,
                             "--model", "auto", "--lookbacks", "48", "--top-k", "2", "--out", run,
                             "--max-steps", 60, *FAST, capsys=capsys)
    assert code == 0, err
    m = json.loads((run / "metrics.json").read_text())
    assert m["test_mse"] < 0.2, m  # without plan the load's error is above 0.7 (the test above)
    rows = pd.read_csv(driven_csv)
    rows.loc[len(rows) - H:, ["load", "temp"]] = np.nan  # the last H rows: the rows to forecast
    ahead = tmp_path / "ahead.csv"
    rows.to_csv(ahead, index=False)
    code, out, err = run_cli("predict", run, "--csv", ahead, capsys=capsys)
    assert code == 0, err
    forecast = pd.read_csv(pd.io.common.StringIO(out))
    assert len(forecast) == H and np.corrcoef(forecast["load"], rows["plan"].iloc[-H:])[0, 1] > 0.9


@pytest.mark.parametrize("plan, fill, says", [
    ("empty", "ffill", "has one value"), ("empty", "interpolate", "has one value"), ("constant", "error", "(1)")])
def test_a_covariate_without_values_over_the_training_rows_is_one_line_and_exit_2(tmp_path, driven_csv, capsys,
                                                                                  plan, fill, says):
    frame = pd.read_csv(driven_csv)  # split 0.7: the training rows are the first 700
    frame.loc[:699, "plan"] = np.nan if plan == "empty" else 1.0
    frame.to_csv(tmp_path / "f.csv", index=False)
    code, _, err = run_cli("train", "forecast", "--csv", tmp_path / "f.csv", "--target", "load", "--model", "linear",
                           "--features", "S", "--future-cols", "plan", "--fill", fill, "--out", tmp_path / "run",
                           *FAST, capsys=capsys)
    assert code == 2 and "covariate 'plan' (--future-cols)" in err and says in err, err
    assert "every training row (the first 700)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("covariates", [["--past-cols", "temp"], []])
def test_predict_without_future_covariates_forecasts_from_the_last_observed_row(tmp_path, driven_csv, capsys,
                                                                               covariates):
    run = tmp_path / "run"
    code, _, err = run_cli("train", "forecast", "--csv", driven_csv, "--target", "load", "--model", "linear",
                           "--features", "S", *covariates, "--out", run, "--max-steps", 5, *FAST, capsys=capsys)
    assert code == 0, err
    frame = pd.read_csv(driven_csv).iloc[:900]
    trailing = frame.copy()
    trailing.loc[895:, ["load", "temp"]] = np.nan  # five rows to forecast, under the default --fill error
    trailing.to_csv(tmp_path / "trailing.csv", index=False)
    forecast = Forecast.load(run)
    frame.iloc[:895].to_csv(tmp_path / "upto.csv", index=False)  # the same file without the rows to forecast
    expected = forecast.predict_csv(tmp_path / "upto.csv")
    code, out, err = run_cli("predict", run, "--csv", tmp_path / "trailing.csv", capsys=capsys)
    assert code == 0, err
    got = pd.read_csv(pd.io.common.StringIO(out), parse_dates=["date"])
    assert got["date"].iloc[0] == pd.Timestamp(frame["date"].iloc[895])  # right after the last observed row
    np.testing.assert_allclose(got["load"].to_numpy(), expected["load"].to_numpy(), rtol=1e-5)


def test_calendar_auto_is_decided_once_from_the_median_step(tmp_path, driven_csv, capsys):
    frame = pd.read_csv(driven_csv, parse_dates=["date"])
    frame.loc[1:, "date"] += pd.Timedelta(days=3)  # the first step is 3 days 1 hour, the rest an hour
    frame.to_csv(tmp_path / "gap.csv", index=False)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "forecast", "--csv", tmp_path / "gap.csv", "--target", "load", "--model",
                           "linear", "--features", "S", "--calendar", "auto", "--out", run, "--max-steps", 5, *FAST,
                           capsys=capsys)
    assert code == 0, err
    assert json.loads((run / "run.json").read_text())["config"]["data"]["calendar"] == "hour,weekday,dayofyear"
    assert json.loads((run / "series.json").read_text())["columns"][1:3] == ["hour_sin", "hour_cos"]
    later = frame.iloc[500:700].copy()
    later.loc[later.index[0], "date"] -= pd.Timedelta(days=30)  # a file whose first step is a month
    later.to_csv(tmp_path / "later.csv", index=False)
    code, out, err = run_cli("predict", run, "--csv", tmp_path / "later.csv", capsys=capsys)
    assert code == 0 and len(out.strip().splitlines()) == 13, err


def test_a_covariate_runs_offsets_come_from_its_target_alone(trained):
    # The validation windows' truths hold the covariates' columns after the modelled one: the offsets
    # are the conformal ones of the load's residuals only.
    from seqlab.models.quantiles import conformal_offsets
    from seqlab.tasks.forecast import predict_windows, read_series
    from seqlab.tasks.forecast_auto import windows_of

    forecast = Forecast.load(trained)
    offsets = forecast.model.config.calibration
    assert np.array(offsets).shape == (1, 3)
    bounds = json.loads((trained / "series.json").read_text())["bounds"]["valid"]
    windows = windows_of(forecast, read_series(forecast.config.data), bounds)
    forecast.model.config.calibration = []  # the raw forecasts
    prediction, truth = predict_windows(forecast.model, windows, 64, "cpu")
    assert truth.shape[-1] == 5 and prediction.shape[2] == 1
    np.testing.assert_allclose(offsets, conformal_offsets(prediction, truth[..., :1], (0.1, 0.5, 0.9)), rtol=1e-6)


def test_a_covariate_runs_forecast_is_calibrated_on_the_latest_observed_windows(trained, driven_csv, tmp_path):
    # predict on a file ending in rows to forecast: the offsets are the conformal ones of the latest 480
    # windows of the observed rows (the load's residuals alone); the rows to forecast are not history.
    from seqlab.data import covariates as cov
    from seqlab.models.quantiles import calibrated, conformal_offsets
    from seqlab.tasks.forecast import predict_windows, unscale

    ahead = pd.read_csv(driven_csv).iloc[:900].copy()
    ahead.loc[888:, ["load", "temp"]] = np.nan
    path = tmp_path / "ahead.csv"
    ahead.to_csv(path, index=False)
    forecast, raw = Forecast.load(trained), Forecast.load(trained)
    raw.model.config.calibration = []
    series = forecast.read_csv(path, L, "", ahead=True)
    scaled = forecast.scaler.transform(series.values)
    assert len(scaled) == 888 and forecast.config.model.calibration_window == 480
    known, truth = predict_windows(raw.model, ts.Windows(scaled[888 - (480 + L + H - 1):], L, H, forecast.future),
                                   64, "cpu")
    offsets = conformal_offsets(known, truth[..., :1], (0.1, 0.5, 0.9)).tolist()
    assert not np.allclose(offsets, forecast.model.config.calibration)  # not the validation offsets
    values, _ = cov.future_rows(series, H, path, forecast.config.data)
    future = (values - forecast.scaler.mean_[forecast.future]) / forecast.scaler.scale_[forecast.future]
    with torch.no_grad():
        y = raw.model(torch.as_tensor(scaled[-L:], dtype=torch.float32)[None],
                      torch.as_tensor(future, dtype=torch.float32)[None])
    expected = unscale(forecast.scaler, calibrated(y, offsets, (0.1, 0.5, 0.9)).numpy())[0, :, 0]  # (H, Q)
    np.testing.assert_allclose(forecast.predict_csv(path)[["load_q0.1", "load", "load_q0.9"]].to_numpy(), expected,
                               rtol=1e-5)
