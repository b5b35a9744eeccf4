"""Backtesting (``seqlab eval RUN --csv FILE --backtest --folds K [--refit]``): the folds' origins
written by hand from the row count, each fold's scores against Forecast's own single-window forecast,
K=1 against plain eval of the last window, determinism, the plot, quantile scores, bad input as one
line with exit status 2, and a refit that sees no row after its origin."""

import json

import numpy as np
import pandas as pd
import pytest

from seqlab.cli.main import main
from seqlab.tasks.forecast import Forecast
from seqlab.tasks.forecast_backtest import backtest, rows_needed

from test_forecast_task import run_cli  # pytest puts this directory on sys.path

N, L, H = 600, 24, 8  # split 0.6,0.2,0.2: train rows 0-359, valid 360-479, test 480-599 (120 rows = 15 folds of 8)
TINY = ["--input-len", L, "--horizon", H, "--split", "0.6,0.2,0.2", "--model", "linear", "--max-steps", 30,
        "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.batch_size=32",
        "--set", "train.eval_every=15", "--set", "train.lr=0.01"]


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    rng = np.random.default_rng(1)
    t = np.arange(N)
    frame = pd.DataFrame({"date": pd.date_range("2024-03-01", periods=N, freq="h"),
                          "load": 50 + 10 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, N),
                          "OT": 30 + 4 * np.cos(2 * np.pi * t / 24) + rng.normal(0, 0.3, N)})
    path = tmp_path_factory.mktemp("backtest") / "series.csv"
    frame.to_csv(path, index=False)
    return path


def trained(folder, csv, capsys, *flags):
    code, _, err = run_cli("train", "forecast", "--csv", csv, "--out", folder, *TINY, *flags, capsys=capsys)
    assert code == 0, err
    return folder


@pytest.fixture(scope="module")
def point_run(tmp_path_factory, series_csv):
    folder = tmp_path_factory.mktemp("runs") / "point"
    assert main([str(a) for a in ["train", "forecast", "--csv", series_csv, "--out", folder, *TINY,
                                  "--features", "M"]]) == 0
    return folder


def eval_json(run, csv, capsys, *flags):
    code, out, err = run_cli("eval", run, "--csv", csv, *flags, capsys=capsys)
    assert code == 0, err
    return json.loads(out)


def test_folds_are_the_last_k_horizons_and_match_single_window_forecasts(point_run, series_csv, capsys, tmp_path):
    report = eval_json(point_run, series_csv, capsys, "--backtest", "--folds", 3)
    stamps = pd.read_csv(series_csv, parse_dates=["date"])["date"]
    # By hand: 600 rows, H = 8, 3 folds -> forecasts of rows 576-583, 584-591, 592-599; origins 575, 583, 591.
    assert [f["origin"] for f in report["folds"]] == [str(stamps[i]) for i in (575, 583, 591)]
    assert [f["forecast_start"] for f in report["folds"]] == [str(stamps[i]) for i in (576, 584, 592)]
    assert [f["forecast_end"] for f in report["folds"]] == [str(stamps[i]) for i in (583, 591, 599)]
    assert report["folds_requested"] == 3

    # Each fold against ``seqlab predict``'s path: the file cut at the origin, its next H rows forecast.
    forecast, frame = Forecast.load(point_run), pd.read_csv(series_csv)
    scale = forecast.scaler.scale_
    for fold, start in zip(report["folds"], (576, 584, 592)):
        cut = tmp_path / f"cut{start}.csv"
        frame.iloc[:start].to_csv(cut, index=False)
        predicted = forecast.predict_csv(cut)[["load", "OT"]].to_numpy()  # (H, C) in the data's units
        truth = frame.iloc[start:start + H][["load", "OT"]].to_numpy()
        assert fold["mse_original"] == pytest.approx(np.mean((predicted - truth) ** 2), rel=1e-5)
        assert fold["mae_original"] == pytest.approx(np.mean(np.abs(predicted - truth)), rel=1e-5)
        assert fold["mse"] == pytest.approx(np.mean(((predicted - truth) / scale) ** 2), rel=1e-4)
    for key in ("mse", "mae", "mse_original", "mae_original"):
        assert report["mean"][key] == pytest.approx(np.mean([f[key] for f in report["folds"]]), rel=1e-9)

    # Deterministic: the same command prints the same scores.
    assert eval_json(point_run, series_csv, capsys, "--backtest", "--folds", 3) == report


def test_one_fold_is_plain_eval_of_the_last_window(point_run, series_csv, capsys, tmp_path):
    last = tmp_path / "last.csv"
    pd.read_csv(series_csv).iloc[N - L - H:].to_csv(last, index=False)  # exactly one window
    plain = eval_json(point_run, last, capsys)
    assert plain["windows"] == 1
    fold = eval_json(point_run, series_csv, capsys, "--backtest", "--folds", 1)["folds"][0]
    for key in ("mse", "mae", "mse_original", "mae_original"):
        assert fold[key] == pytest.approx(plain[key], rel=1e-6)


def test_the_plot_is_written_only_where_asked_and_never_over_a_file(point_run, series_csv, capsys, tmp_path):
    picture = tmp_path / "bt.png"
    eval_json(point_run, series_csv, capsys, "--backtest", "--folds", 4, "--plot", picture)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (point_run / "backtest.png").exists()
    code, _, err = run_cli("eval", point_run, "--csv", series_csv, "--backtest", "--folds", 2, "--plot", picture,
                           capsys=capsys)
    assert code == 2 and "exists" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flags, message", [
    (["--backtest", "--folds", 0], "--folds must be at least 1; got 0"),
    (["--folds", 3], "--folds only goes with --backtest"),
    (["--refit"], "--refit only goes with --backtest"),
    (["--plot", "x.png"], "--plot only goes with --backtest"),
    (["--backtest"], "--backtest needs --folds K"),
    # 15 folds of 8 fill the 120 test rows; 16 need int(0.2 n) >= 128, so n = 640 rows.
    (["--backtest", "--folds", 16], "give a file of at least 640 rows or at most 15 folds"),
    (["--backtest", "--folds", 2, "--plot", "x.txt"], "ending in .png"),
    (["--folds", 3, "--refit"], "--folds, --refit only go with --backtest"),
])
def test_bad_backtest_input_is_one_line_and_exit_2(point_run, series_csv, capsys, flags, message):
    code, out, err = run_cli("eval", point_run, "--csv", series_csv, *flags, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert out == ""


def test_a_file_too_short_for_the_split_says_how_many_rows(point_run, series_csv, capsys, tmp_path):
    short = tmp_path / "short.csv"
    pd.read_csv(series_csv).iloc[:100].to_csv(short, index=False)  # 0.2 of 100 rows: 20 test rows
    code, _, err = run_cli("eval", point_run, "--csv", short, "--backtest", "--folds", 3, capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    # 3 folds of 8 need int(0.2 n) >= 24: n = 120 (and 0.6 n = 72 training rows hold a window of 32).
    assert "has 100 rows, 20 of them in its test part" in err and "at least 120 rows or at most 2 folds" in err
    pd.read_csv(series_csv).iloc[:40].to_csv(short, index=False)  # the split leaves valid 8 rows: no window
    code, _, err = run_cli("eval", point_run, "--csv", short, "--backtest", "--folds", 1, capsys=capsys)
    assert code == 2 and "too few for the run's split" in err and "at least" in err and "--split" not in err, err


def test_a_quantile_run_adds_coverage_and_quantile_loss(tmp_path, series_csv, capsys):
    run = trained(tmp_path / "q", series_csv, capsys, "--features", "S", "--quantiles", "0.1,0.5,0.9")
    picture = tmp_path / "q.png"
    report = eval_json(run, series_csv, capsys, "--backtest", "--folds", 2, "--plot", picture)
    for scores in (*report["folds"], report["mean"]):
        assert {"quantile_loss", "quantile_loss_original", "coverage_80"} <= set(scores)
    assert 0 <= report["mean"]["coverage_80"] <= 1 and picture.is_file()


def test_refit_sees_no_row_after_its_origin(tmp_path, series_csv, capsys):
    run = trained(tmp_path / "r", series_csv, capsys, "--features", "S", "--max-steps", 10)
    forecast = Forecast.load(run)
    result = backtest(forecast, series_csv, 2, refit=True)
    assert result.starts == [584, 592]
    changed = tmp_path / "changed.csv"
    frame = pd.read_csv(series_csv)
    frame.loc[584:, "OT"] = frame.loc[584:, "OT"] * 3 + 100  # everything from fold 1's first forecast row on
    frame.to_csv(changed, index=False)
    again = backtest(forecast, changed, 2, refit=True)
    np.testing.assert_array_equal(again.prediction[0], result.prediction[0])  # fold 1 never saw the change
    assert not np.allclose(again.prediction[1], result.prediction[1])  # fold 2 trained on some changed rows
    # Refit is a different model from the fixed one (trained on 584 rows, not 360).
    fixed = backtest(forecast, series_csv, 2)
    assert not np.allclose(fixed.prediction, result.prediction)
    report = eval_json(run, series_csv, capsys, "--backtest", "--folds", 2, "--refit")
    assert report["model"] == "refit before each origin"
    assert report["folds"][0]["mse"] == pytest.approx(result.scores[0]["mse"], rel=1e-6)


def test_a_refit_quantile_fold_is_calibrated_on_the_rows_before_its_origin(tmp_path, series_csv, capsys, monkeypatch):
    # Each refit fold's forecast goes through the rolling calibration with the refit model and, as its
    # history, the rows before the fold's first forecast row on the refit's own scale: nothing after it.
    from seqlab.tasks import forecast_backtest

    run = trained(tmp_path / "rq", series_csv, capsys, "--features", "S", "--max-steps", 10,
                  "--quantiles", "0.1,0.9", "--set", "model.calibration_window=20")
    forecast = Forecast.load(run)
    seen, real = [], forecast_backtest.forecast_after

    def recording(model, config, history, batch, device, future):
        seen.append((model is forecast.model, config.model.calibration_window, len(history)))
        np.testing.assert_array_equal(batch["x"][0].cpu().numpy(), history[-L:].astype(np.float32))
        return real(model, config, history, batch, device, future)

    monkeypatch.setattr(forecast_backtest, "forecast_after", recording)
    backtest(forecast, series_csv, 2, refit=True)
    backtest(forecast, series_csv, 2)
    assert seen == [(False, 20, 584), (False, 20, 592), (True, 20, 584), (True, 20, 592)]


def test_rows_needed_under_the_ett_split():
    # ETT: 8,640 training and 2,880 validation rows, then the test part runs to the file's end.
    assert rows_needed("ett", 336, 96, 4) == 14_400  # 384 test rows fit in the split's own 2,880
    assert rows_needed("ett", 336, 96, 40) == 8_640 + 2_880 + 40 * 96
    assert rows_needed("0.6,0.2,0.2", 24, 8, 16) == 640  # int(0.2 n) >= 128
