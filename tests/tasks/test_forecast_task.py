"""The forecasting task end to end on a synthetic seasonal series: every model learns it in seconds,
the scaler is the training rows', predictions come back in the data's units with timestamps, and bad
input is one line with exit status 2."""

import json

import numpy as np
import pandas as pd
import pytest

from cli_run import run_cli

FAST = ["--input-len", "48", "--horizon", "12", "--split", "0.7,0.1,0.2", "--set", "train.progress=false",
        "--set", "train.tensorboard=false", "--set", "train.batch_size=32", "--set", "train.eval_every=50",
        "--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
        "--set", "model.d_ff=32", "--set", "model.patch_len=8", "--set", "model.stride=4",
        "--set", "model.dropout=0.0", "--set", "train.lr=0.005"]


@pytest.fixture(scope="module")
def seasonal_csv(tmp_path_factory):
    """Three channels with a daily cycle, a weekly-ish drift and noise; OT in degrees around 30."""
    rng = np.random.default_rng(0)
    n = 1200
    t = np.arange(n)
    daily = np.sin(2 * np.pi * t / 24)
    frame = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=n, freq="h"),
        "load": 50 + 10 * daily + rng.normal(0, 0.5, n),
        "temp": 5 * np.cos(2 * np.pi * t / 24) + 0.3 * np.sin(2 * np.pi * t / 150) + rng.normal(0, 0.2, n),
        "OT": 30 + 4 * daily + rng.normal(0, 0.3, n),
    })
    path = tmp_path_factory.mktemp("series") / "seasonal.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("arch", ["transformer", "patch", "lstm", "gru", "conv1d", "linear", "periodic"])
def test_each_model_learns_a_seasonal_series(tmp_path, seasonal_csv, capsys, arch):
    run = tmp_path / arch
    code, out, err = run_cli("train", "forecast", "--csv", seasonal_csv, "--model", arch, "--out", run,
                             "--max-steps", 150, *FAST, capsys=capsys)
    assert code == 0, err
    m = json.loads((run / "metrics.json").read_text())
    # Standardised, the series has variance ~1; the noise floor is ~0.02 (OT) to ~0.005 (load).
    assert m["test_mse"] < 0.15, m
    assert m["test_mse_original"] > m["test_mse"]  # the data's units are wider than standard ones
    assert (run / "forecast.png").is_file() and (run / "curves.png").is_file()
    if arch in ("transformer", "patch"):
        assert (run / "attention.png").is_file()


def test_predict_writes_the_next_horizon_with_timestamps(tmp_path, seasonal_csv, capsys):
    run = tmp_path / "run"
    assert run_cli("train", "forecast", "--csv", seasonal_csv, "--model", "linear", "--features", "MS",
                   "--out", run, "--max-steps", 100, *FAST, capsys=capsys)[0] == 0
    series = json.loads((run / "series.json").read_text())
    frame = pd.read_csv(seasonal_csv)
    train_rows = frame.iloc[: series["bounds"]["train"][1], 1:]
    np.testing.assert_allclose(series["scaler"]["mean"], train_rows.mean().to_numpy())  # fitted on train only
    out = tmp_path / "forecast.csv"
    code, stdout, err = run_cli("predict", run, "--csv", seasonal_csv, "--out", out, capsys=capsys)
    assert code == 0, err
    forecast = pd.read_csv(out, parse_dates=["date"])
    assert list(forecast.columns) == ["date", "OT"] and len(forecast) == 12
    assert forecast["date"].iloc[0] == pd.Timestamp(frame["date"].iloc[-1]) + pd.Timedelta(hours=1)
    assert 20 < forecast["OT"].mean() < 40  # back in degrees, not standardised units

    # eval on the test period's rows (with the input_len rows before it) gives the run's test scores.
    start, end = series["bounds"]["test"]
    test_rows = tmp_path / "test_rows.csv"
    frame.iloc[start:end].to_csv(test_rows, index=False)
    code, out, err = run_cli("eval", run, "--csv", test_rows, capsys=capsys)
    assert code == 0, err
    scores, m = json.loads(out), json.loads((run / "metrics.json").read_text())
    assert scores["windows"] == end - start - 48 - 12 + 1
    for key in ("mse", "mae", "mse_original", "mae_original"):
        assert scores[key] == pytest.approx(m[f"test_{key}"], rel=1e-5)
    code, _, err = run_cli("eval", run, "--text", test_rows, capsys=capsys)
    assert code == 2 and err.strip().endswith("--text: not for a forecast run, which is scored on --csv")
    code, _, err = run_cli("eval", run, capsys=capsys)
    assert code == 2 and "give --csv" in err
    frame.iloc[:50].to_csv(test_rows, index=False)
    code, _, err = run_cli("eval", run, "--csv", test_rows, capsys=capsys)
    assert code == 2 and "50 rows; a window needs input_len + horizon = 60" in err


@pytest.mark.parametrize("edit, flags, message", [
    (lambda f: f.drop(columns=["OT"]), [], "no column 'OT'"),
    (lambda f: f.assign(load=f["load"].astype(object).where(f.index != 9, "x")), [], "row 11 is not a number"),
    (lambda f: f.assign(load=f["load"].where(f.index != 9)), [], "--fill"),
    (lambda f: f.iloc[::-1], [], "increasing order"),
    (lambda f: f.iloc[:50], [], "window needs"),
    (lambda f: f, ["--input-len", "0"], "input_len"),
    (lambda f: f, ["--split", "0.5,0.5"], "--split"),
    (lambda f: f, ["--model", "prophet"], "invalid choice: 'prophet'"),
    (lambda f: f, ["--model", "periodic", "--set", "model.period=64"], "model.period (64) must not exceed"),
    (lambda f: f, ["--model", "patch", "--set", "model.patch_len=64"], "model.patch_len (64) must not exceed"),
    (lambda f: f, ["--model", "transformer", "--set", "model.n_heads=5"], "divisible by model.n_heads (5)"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, seasonal_csv, capsys, edit, flags, message):
    path = tmp_path / "bad.csv"
    edit(pd.read_csv(seasonal_csv)).to_csv(path, index=False)
    out_dir = tmp_path / "run"
    code, _, err = run_cli("train", "forecast", "--csv", path, "--out", out_dir, *FAST, *flags, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out_dir.exists()


def test_series_json_is_checked_for_one_series_and_for_a_scaler_per_id(tmp_path):
    from seqlab.errors import DamagedFileError
    from seqlab.tasks.forecast import checked_series

    one = {"columns": ["a", "OT"], "targets": [1], "scaler": {"mean": [0.0, 1.5], "scale": [1.0, 2.0]}}
    per_id = {"columns": ["OT"], "targets": [0], "ids": ["x", "y"],
              "scaler": {"x": {"mean": [0.0], "scale": [1.0]}, "y": {"mean": [3.0], "scale": [0.5]}}}
    path = tmp_path / "series.json"
    for written, long in ((one, False), (per_id, True)):
        path.write_text(json.dumps(written))
        assert checked_series(path, per_id=long) == written
    damaged = [(one, False, lambda s: s["scaler"].update(scale=[1.0, 0.0])),  # a zero scale
               (one, False, lambda s: s["scaler"].update(mean=[0.0])),  # one mean for two columns
               (one, False, lambda s: s.update(targets=[2])), (one, False, lambda s: s.update(targets=[])),
               (one, False, lambda s: s.update(future=[-1])), (one, False, lambda s: s.pop("scaler")),
               (per_id, True, lambda s: s["scaler"]["y"].update(scale=[0.0])),
               (per_id, True, lambda s: s["scaler"].clear()), (per_id, True, lambda s: s.update(scaler={"x": 1})),
               (per_id, False, lambda s: None)]  # read as one series: a scaler per id is not one scaler
    for written, long, damage in damaged:
        value = json.loads(json.dumps(written))
        damage(value)
        path.write_text(json.dumps(value))
        with pytest.raises(DamagedFileError, match="series.json is damaged .not the columns, targets and scaler"):
            checked_series(path, per_id=long)
