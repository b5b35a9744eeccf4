"""Quantile forecasts: calibrated intervals on a series whose noise is known, the CLI flow (train ->
metrics -> predict columns -> eval -> reload), old runs without the option, and bad levels refused."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.config import build
from seqlab.data import timeseries as ts
from seqlab.errors import UserError
from seqlab.models import forecasters as fm
from seqlab.models import from_pretrained
from seqlab.models.quantiles import calibrated, conformal_offsets, quantile_errors
from seqlab.tasks import views
from seqlab.tasks.forecast import (Forecast, ForecastConfig, forecast_loss, predict_windows, read_series, unscale,
                                   window_errors)
from seqlab.tasks import forecast_calibration as rolling
from seqlab.tasks.forecast_backtest import backtest

from test_forecast_task import FAST, run_cli  # pytest puts this directory on sys.path

SIGMA, PERIOD = 0.3, 24
Z90 = 1.2816  # the standard normal's 0.9 quantile


def noisy_sine(n: int, seed: int) -> np.ndarray:
    """y_t = sin(2πt/24) + N(0, σ²), (n, 1)."""
    t = np.arange(n)
    return (np.sin(2 * np.pi * t / PERIOD) + np.random.default_rng(seed).normal(0, SIGMA, n))[:, None]


def test_a_trained_80_percent_interval_covers_80_percent_of_new_data():
    # Known Gaussian noise: the 0.1 and 0.9 quantiles of the next value are (about) the clean sine
    # ∓ 1.2816σ, so 80 % of held-out values must fall between them. The periodic model (a few dozen
    # weights) is trained on one noise draw, full batch, and scored on another.
    torch.manual_seed(0)
    levels, L, H = (0.1, 0.5, 0.9), 96, 24
    model = fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(1, L, H, period=PERIOD, quantiles=levels))
    train = ts.Windows(noisy_sine(4000, seed=0).astype(np.float32), L, H).batch(np.arange(4000 - L - H + 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 300)
    for _ in range(300):
        optimizer.zero_grad()
        forecast_loss(model, train, [0], levels=levels)[0].backward()
        optimizer.step()
        schedule.step()
    test = ts.Windows(noisy_sine(2000, seed=1).astype(np.float32), L, H)
    prediction, truth = predict_windows(model.eval(), test, 512, "cpu")  # (N, H, 1, 3), (N, H, 1)
    scores = quantile_errors(prediction, truth, levels)
    assert 0.77 <= scores["coverage_80"] <= 0.83, scores
    for k, level in enumerate(levels):  # each level alone is calibrated too
        assert abs((truth <= prediction[..., k]).mean() - level) < 0.03
    # The interval's half-widths approach 1.2816σ (a little wider: the median itself is estimated).
    upper, lower = (prediction[..., 2] - prediction[..., 1]).mean(), (prediction[..., 1] - prediction[..., 0]).mean()
    assert 0.95 * Z90 * SIGMA < upper < 1.15 * Z90 * SIGMA and 0.95 * Z90 * SIGMA < lower < 1.15 * Z90 * SIGMA
    # The Gaussian's mean pinball loss over 0.1, 0.5, 0.9 is σ·(2φ(1.2816) + φ(0))/3 ≈ 0.250σ.
    assert scores["quantile_loss"] == pytest.approx(0.250 * SIGMA, rel=0.1)


@pytest.fixture(scope="module")
def sine_csv(tmp_path_factory):
    n = 1200
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"),
                          "load": 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 24),
                          "OT": 30 + 4 * noisy_sine(n, seed=2)[:, 0]})
    path = tmp_path_factory.mktemp("series") / "sine.csv"
    frame.to_csv(path, index=False)
    return path


def test_quantile_run_scores_predicts_evaluates_and_reloads(tmp_path, sine_csv, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli("train", "forecast", "--csv", sine_csv, "--model", "linear", "--features", "MS",
                             "--quantiles", "0.9,0.1", "--out", run, "--max-steps", 100, *FAST, capsys=capsys)
    assert code == 0, err
    assert "80% interval covers" in out
    m = json.loads((run / "metrics.json").read_text())
    assert m["quantiles"] == [0.1, 0.5, 0.9]
    assert json.loads((run / "run.json").read_text())["config"]["model"]["quantiles"] == "0.1,0.5,0.9"
    for key in ("test_quantile_loss", "test_quantile_loss_original", "test_coverage_80", "test_mse"):
        assert np.isfinite(m[key]), key
    assert 0.0 <= m["test_coverage_80"] <= 1.0
    # OT is 4·(sine + noise) + 30 and standardised by its training spread: the original pinball is wider.
    assert m["test_quantile_loss_original"] > m["test_quantile_loss"]

    out_csv = tmp_path / "forecast.csv"
    assert run_cli("predict", run, "--csv", sine_csv, "--out", out_csv, capsys=capsys)[0] == 0
    frame = pd.read_csv(out_csv)
    assert list(frame.columns) == ["date", "OT", "OT_q0.1", "OT_q0.9"] and len(frame) == 12
    assert (frame["OT_q0.1"] <= frame["OT"]).all() and (frame["OT"] <= frame["OT_q0.9"]).all()
    assert 20 < frame["OT"].mean() < 40  # the data's units

    # The saved model reloads (from_pretrained and as a run) and forecasts the same.
    forecast = Forecast.load(run)
    x = torch.randn(3, 48, 2)
    reloaded = from_pretrained(run / "checkpoints" / "best")
    torch.testing.assert_close(reloaded.eval()(x), forecast.model(x))
    assert reloaded(x).shape == (3, 12, 2, 3)
    pd.testing.assert_frame_equal(forecast.forecast(sine_csv), Forecast.load(run).forecast(sine_csv))
    np.testing.assert_allclose(forecast.forecast(sine_csv)["OT_q0.9"], frame["OT_q0.9"], rtol=1e-5)
    # The explorer shows the median: at the file's last row it is predict's OT column.
    shown = views.forecast(forecast, pd.read_csv(sine_csv)["date"].iloc[-1])["series"]
    np.testing.assert_allclose(shown["forecast"], frame["OT"], rtol=1e-5)
    # ... and shades the 80 % interval between predict's 0.1 and 0.9 columns.
    assert list(shown["bands"]) == ["80"]
    np.testing.assert_allclose(shown["bands"]["80"], [frame["OT_q0.1"], frame["OT_q0.9"]], rtol=1e-5)
    # Times it cannot place are one line each, not a server error or a forecast from the wrong row.
    last = pd.Timestamp(pd.read_csv(sine_csv)["date"].iloc[-1])
    for when, said in ((f"{last.isoformat()}Z", "has a time zone and the file's times have none"),
                       ("NaT", "is not a date and time"),
                       (str(last + pd.Timedelta(hours=1)), "is after the file's last row")):
        with pytest.raises(UserError, match=said):
            views.forecast(forecast, when)

    # eval on the test rows (with the input_len rows before them) gives the run's test scores.
    start, end = json.loads((run / "series.json").read_text())["bounds"]["test"]
    rows = tmp_path / "test_rows.csv"
    pd.read_csv(sine_csv).iloc[start:end].to_csv(rows, index=False)
    code, out, err = run_cli("eval", run, "--csv", rows, capsys=capsys)
    assert code == 0, err
    scores = json.loads(out)
    for key in ("mse", "quantile_loss", "quantile_loss_original", "coverage_80"):
        assert scores[key] == pytest.approx(m[f"test_{key}"], rel=1e-5)


def test_a_config_saved_without_quantiles_loads_as_point_forecasts():
    config = build(ForecastConfig, {"model": {"arch": "linear", "d_model": 16}})
    assert config.model.quantiles == "" and config.model.levels == ()
    old = {k: v for k, v in vars(fm.LinearForecasterConfig(1, 8, 4)).items() if k != "quantiles"}
    assert fm.LinearForecasterConfig(**old).quantiles == ()


@pytest.mark.parametrize("flags, message", [
    (["--quantiles", "0.1,1.5"], "strictly between 0 and 1; got 1.5"),
    (["--quantiles", "0,0.9"], "strictly between 0 and 1; got 0"),
    (["--quantiles", "low"], "numbers in (0, 1)"),
    (["--quantiles", "0.1,0.9", "--set", "model.loss=huber"], "the pinball loss"),
])
def test_bad_levels_are_one_line_and_exit_2(tmp_path, sine_csv, capsys, flags, message):
    out_dir = tmp_path / "run"
    code, _, err = run_cli("train", "forecast", "--csv", sine_csv, "--out", out_dir, *FAST, *flags, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out_dir.exists()


def test_compare_forecast_with_quantiles_adds_their_columns(tmp_path, sine_csv, capsys):
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", "forecast", "--csv", sine_csv, "--models", "linear,periodic",
                           "--quantiles", "0.05,0.1,0.9,0.95", "--max-steps", 40, "--out", out, *FAST, capsys=capsys)
    assert code == 0, err
    frame = pd.read_csv(out / "compare.csv")
    assert list(frame.columns)[-3:] == ["test_quantile_loss", "test_coverage_90", "test_coverage_80"]
    for row in frame.itertuples():
        m = json.loads((out / row.model / "metrics.json").read_text())
        assert (row.test_quantile_loss, row.test_coverage_90) == (m["test_quantile_loss"], m["test_coverage_90"])


def test_a_run_calibrates_its_quantiles_on_validation_and_keeps_the_offsets(tmp_path, sine_csv, capsys):
    # Conformal offsets from the validation windows: stored in the checkpoint's config (channels ×
    # levels, the median unmoved), applied wherever the run forecasts; the validation interval then
    # covers at least its nominal 80 %. model.calibrate=false trains the same model and leaves them out.
    args = ("train", "forecast", "--csv", sine_csv, "--model", "linear", "--quantiles", "0.1,0.9",
            "--max-steps", 60, "--set", "train.precision=fp32", *FAST)  # fp32: the same raw model both times
    assert run_cli(*args, "--out", tmp_path / "on", capsys=capsys)[0] == 0
    assert run_cli(*args, "--out", tmp_path / "off", "--set", "model.calibrate=false", capsys=capsys)[0] == 0
    on, off = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("on", "off"))
    offsets = Forecast.load(tmp_path / "on").model.config.calibration
    assert np.array(offsets).shape == (2, 3) and [row[1] for row in offsets] == [0.0, 0.0]
    assert Forecast.load(tmp_path / "off").model.config.calibration == []
    assert on["val_coverage_80"] >= 0.8 and "val_coverage_80_uncalibrated" not in off
    assert on["val_coverage_80_uncalibrated"] == off["val_coverage_80"]  # the same raw model before
    assert on["test_mse"] == off["test_mse"]  # the median is not moved
    # the calibrated forecasts are the raw ones shifted by the offsets, never past the median
    raw, shifted = (Forecast.load(tmp_path / name) for name in ("off", "on"))
    windows = ts.Windows(np.random.default_rng(0).normal(size=(80, 2)).astype(np.float32), 48, 12)
    low, median, high = np.moveaxis(predict_windows(raw.model, windows, 64, "cpu")[0], -1, 0)
    (low_offset, _, high_offset), = [np.array(offsets, dtype=np.float32).T[:, None, None]]
    expected = np.stack([np.minimum(low + low_offset, median), median, np.maximum(high + high_offset, median)], -1)
    np.testing.assert_allclose(predict_windows(shifted.model, windows, 64, "cpu")[0], expected, rtol=1e-5, atol=1e-6)
    # resumed with calibrate=false (no step left to train: the best checkpoint stays the calibrated one's),
    # the run's forecasts are raw again, as its metrics then say
    assert run_cli("train", "forecast", "--resume", tmp_path / "on", "--set", "model.calibrate=false",
                   capsys=capsys)[0] == 0
    resumed = json.loads((tmp_path / "on" / "metrics.json").read_text())
    assert "val_coverage_80_uncalibrated" not in resumed and resumed["val_coverage_80"] == off["val_coverage_80"]
    assert Forecast.load(tmp_path / "on").model.config.calibration == []


def test_a_rolling_run_calibrates_each_forecast_on_the_windows_known_before_it(tmp_path, sine_csv, capsys):
    # model.calibration_window=20: every H = 12 origins, the conformal offsets of the latest 20 windows
    # whose values are all known at the block's first origin. The expected forecasts are built here from
    # the raw model (its own offsets left out) and windows picked by their rows.
    run = tmp_path / "run"
    assert run_cli("train", "forecast", "--csv", sine_csv, "--model", "linear", "--quantiles", "0.1,0.9",
                   "--max-steps", 60, "--set", "model.calibration_window=20", "--out", run, *FAST, capsys=capsys)[0] == 0
    m = json.loads((run / "metrics.json").read_text())
    forecast, raw = Forecast.load(run), Forecast.load(run)
    raw.model.config.calibration = []
    levels, L, H, K = forecast.levels, 48, 12, 20
    values = forecast.scaler.transform(read_series(forecast.config.data).values)  # (1200, C)

    def calibrated_by_hand(first: int, count: int):
        """Forecasts and truths of the ``count`` windows whose input starts at row ``first`` on, each block
        of H shifted by the offsets of the K windows whose input starts H + K - 1 … H rows before it."""
        blocks, truths = [], []
        for start in range(first, first + count, H):
            known, known_truth = predict_windows(raw.model, ts.Windows(values[start - H - K + 1:start + L], L, H), 64, "cpu")
            assert len(known) == K
            offsets = conformal_offsets(known, known_truth[..., :known.shape[2]], levels).tolist()
            rows = values[start:min(start + H, first + count) + L + H - 1]
            block, truth = predict_windows(raw.model, ts.Windows(rows, L, H), 64, "cpu")
            blocks.append(calibrated(torch.as_tensor(block), offsets, levels).numpy())
            truths.append(truth)
        return np.concatenate(blocks), np.concatenate(truths)

    # the test windows (inputs from row 912 on; every one calibrated on windows of rows 792 on, the validation split's)
    bounds = json.loads((run / "series.json").read_text())["bounds"]
    (valid_start, _), (test_start, test_end) = bounds["valid"], bounds["test"]
    assert (valid_start, test_start, test_end) == (792, 912, 1200)
    prediction, truth = calibrated_by_hand(test_start, test_end - test_start - L - H + 1)
    expected = window_errors(prediction, truth, forecast.targets, forecast.scaler, levels)
    for key in ("quantile_loss", "coverage_80", "mse"):
        assert m[f"test_{key}"] == pytest.approx(expected[key], rel=1e-5), key
    once = window_errors(*predict_windows(forecast.model, ts.Windows(values[test_start:test_end], L, H), 64, "cpu"),
                         forecast.targets, forecast.scaler, levels)
    assert abs(once["quantile_loss"] - m["test_quantile_loss"]) > 1e-4  # the validation offsets give other intervals
    # no calibration window before row ``since``: from row 900 on, the blocks 912-923 and 924-935 know fewer
    # than 20 windows (1 and 13) and keep the run's offsets; from 936 on, windows of rows 905 on
    rolled, _ = rolling.scored_windows(forecast.model, forecast.config, values, (912, 1200), "cpu", [], since=900)
    np.testing.assert_allclose(rolled[:24], predict_windows(forecast.model, ts.Windows(values[912:935 + L + H], L, H),
                                                            64, "cpu")[0], rtol=1e-6)
    np.testing.assert_allclose(rolled[24:], calibrated_by_hand(936, len(rolled) - 24)[0], rtol=1e-5, atol=1e-6)

    # predict: the file's latest 20 windows (inputs from rows 1121-1140) calibrate the forecast from row 1200;
    # the explorer shades the same interval at the file's last row
    out_csv = tmp_path / "forecast.csv"
    assert run_cli("predict", run, "--csv", sine_csv, "--out", out_csv, capsys=capsys)[0] == 0
    known, known_truth = predict_windows(raw.model, ts.Windows(values[1121:], L, H), 64, "cpu")
    offsets = conformal_offsets(known, known_truth[..., :known.shape[2]], levels).tolist()
    with torch.no_grad():
        y = calibrated(raw.model(torch.as_tensor(values[-L:], dtype=torch.float32)[None]), offsets, levels).numpy()
    y = unscale(forecast.scaler, y)[0, :, forecast.columns.index("OT")]  # (H, Q) in the data's units
    frame = pd.read_csv(out_csv)
    np.testing.assert_allclose(frame[["OT_q0.1", "OT", "OT_q0.9"]].to_numpy(), y, rtol=1e-5)
    shown = views.forecast(forecast, pd.read_csv(sine_csv)["date"].iloc[-1])["series"]
    np.testing.assert_allclose(shown["bands"]["80"], [frame["OT_q0.1"], frame["OT_q0.9"]], rtol=1e-5)

    # --backtest: each fold on the 20 windows before it (fold 1 of 2 forecasts rows 1176-1187 from inputs at 1128)
    result = backtest(forecast, sine_csv, 2)
    assert result.starts == [1176, 1188]
    np.testing.assert_allclose(result.prediction, calibrated_by_hand(1128, 24)[0][[0, 12]], rtol=1e-5, atol=1e-6)

    # eval FILE: blocks of H from the file's first window, each on the file's own windows before it; the
    # blocks 0-11, 12-23 and 24-35 know fewer than 20 (at window 24, windows 0-12) and keep the run's offsets
    code, out, err = run_cli("eval", run, "--csv", sine_csv, capsys=capsys)
    assert code == 0, err
    first = 36
    early, early_truth = predict_windows(forecast.model, ts.Windows(values[:first + L + H - 1], L, H), 64, "cpu")
    late, late_truth = calibrated_by_hand(first, len(values) - L - H + 1 - first)
    expected = window_errors(np.concatenate([early, late]), np.concatenate([early_truth, late_truth]),
                             forecast.targets, forecast.scaler, levels)
    assert json.loads(out)["quantile_loss"] == pytest.approx(expected["quantile_loss"], rel=1e-5)


def test_quantile_levels_keep_every_digit():
    """Levels written back into the config, and the names of their columns, are the numbers given: a
    rounded 0.9999999 was 1 (outside (0, 1): a crash) and 0.1234567 and 0.1234568 shared one name."""
    from seqlab.models.quantiles import level_text
    from seqlab.tasks.forecast_config import ForecastModelConfig

    config = ForecastModelConfig(quantiles="0.9999999,0.1234567,0.1234568,0.1")
    assert config.quantiles == "0.1,0.1234567,0.1234568,0.5,0.9999999"
    assert config.levels == (0.1, 0.1234567, 0.1234568, 0.5, 0.9999999)
    assert ForecastModelConfig(quantiles=config.quantiles).levels == config.levels  # as run.json reads back
    assert len({level_text(q) for q in config.levels}) == 5
