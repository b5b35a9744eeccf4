"""Forecasting many series from one long-format CSV (``--id-col``): one id trains exactly as the wide
file does, row order does not matter, each id has its own scaler, predict and eval cover every id, and
bad input is one line with exit status 2."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.cli.main import main
from seqlab.errors import UserError
from seqlab.tasks import task as registry
from seqlab.tasks.forecast import Forecast

from test_forecast_task import run_cli  # pytest puts this directory on sys.path

FAST = ["--input-len", "24", "--horizon", "6", "--split", "0.7,0.1,0.2", "--model", "linear",
        "--max-steps", "40", "--set", "train.progress=false", "--set", "train.tensorboard=false",
        "--set", "train.batch_size=16", "--set", "train.eval_every=20", "--set", "train.lr=0.01",
        "--set", "train.precision=fp32"]
LEVELS = {"a": 10.0, "b": 100.0, "c": -50.0}  # each store's own level: a shared scaler would get two wrong


def stores(sizes=(200, 160, 180)) -> pd.DataFrame:
    """Three hourly series with a daily cycle around their own levels, each starting at its own hour;
    rows grouped by store."""
    rng = np.random.default_rng(0)
    parts = []
    for k, ((name, level), n) in enumerate(zip(LEVELS.items(), sizes)):
        t = np.arange(n)
        parts.append(pd.DataFrame({
            "store": name, "date": pd.date_range("2024-01-01", periods=n, freq="h") + pd.Timedelta(hours=k),
            "load": level + (1 + k) * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.1, n),
            "OT": level / 2 + np.cos(2 * np.pi * t / 24) + rng.normal(0, 0.1, n)}))
    return pd.concat(parts, ignore_index=True)


def weights(run):
    return Forecast.load(run).model.state_dict()


SCORES = ("val_mse", "val_mae", "test_mse", "test_mae", "test_mse_original", "test_mae_original", "best_step")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run on the three stores' rows interleaved in time, and its CSV."""
    folder = tmp_path_factory.mktemp("long")
    frame = stores().sort_values(["date", "store"], kind="stable").reset_index(drop=True)
    path = folder / "stores.csv"
    frame.to_csv(path, index=False)
    run = folder / "run"
    assert main(["train", "forecast", "--csv", str(path), "--id-col", "store", "--out", str(run), *FAST]) in (0, None)
    return run, path, frame


def test_one_id_trains_exactly_as_the_wide_file(tmp_path, capsys):
    frame = stores(sizes=(300,)).drop(columns=["store"])
    wide, long = tmp_path / "wide.csv", tmp_path / "long.csv"
    frame.to_csv(wide, index=False)
    frame.assign(store="only")[["store", "date", "load", "OT"]].to_csv(long, index=False)
    for path, extra in ((wide, []), (long, ["--id-col", "store"])):
        code, _, err = run_cli("train", "forecast", "--csv", path, *extra, "--out", tmp_path / path.stem, *FAST,
                               capsys=capsys)
        assert code == 0, err
    a, b = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("wide", "long"))
    for key in SCORES:  # the same rows, scaler, windows and batches: bitwise the same run
        assert a[key] == b[key], key
    assert b["test_by_id"]["only"]["mse"] == a["test_mse"]
    for name, tensor in weights(tmp_path / "wide").items():
        torch.testing.assert_close(weights(tmp_path / "long")[name], tensor, rtol=0, atol=0)


def test_grouped_rows_train_as_the_interleaved_ones(tmp_path, trained, capsys):
    run, _, frame = trained
    grouped = tmp_path / "grouped.csv"
    frame.sort_values(["store", "date"], kind="stable").to_csv(grouped, index=False)
    code, _, err = run_cli("train", "forecast", "--csv", grouped, "--id-col", "store", "--out", tmp_path / "g",
                           *FAST, capsys=capsys)
    assert code == 0, err
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (run, tmp_path / "g"))
    for key in SCORES:
        assert a[key] == b[key], key
    assert a["test_by_id"] == b["test_by_id"]
    for name, tensor in weights(run).items():
        torch.testing.assert_close(weights(tmp_path / "g")[name], tensor, rtol=0, atol=0)


def test_each_id_has_its_own_scaler_split_and_scores(trained):
    run, _, frame = trained
    series = json.loads((run / "series.json").read_text())
    m = json.loads((run / "metrics.json").read_text())
    assert series["ids"] == ["a", "b", "c"] and series["columns"] == ["load", "OT"]
    for name, group in frame.groupby("store"):
        n_train = int(len(group) * 0.7)
        assert series["bounds"][name]["train"] == [0, n_train]
        rows = group.iloc[:n_train][["load", "OT"]]
        np.testing.assert_allclose(series["scaler"][name]["mean"], rows.mean().to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(series["scaler"][name]["scale"], rows.std(ddof=0).to_numpy(), rtol=1e-12)
    by_id = m["test_by_id"]
    # each id's own test rows (a fifth of its rows), each the last predicted row of one window
    assert {name: s["windows"] for name, s in by_id.items()} == {
        name: int(len(g) * 0.2) - 6 + 1 for name, g in frame.groupby("store")}
    pooled = sum(s["mse"] * s["windows"] for s in by_id.values()) / sum(s["windows"] for s in by_id.values())
    assert m["test_mse"] == pytest.approx(pooled, rel=1e-5)  # every window of every id weighs the same


def test_predict_writes_the_next_horizon_of_every_id(tmp_path, trained, capsys):
    run, path, frame = trained
    out = tmp_path / "forecast.csv"
    code, _, err = run_cli("predict", run, "--csv", path, "--out", out, capsys=capsys)
    assert code == 0, err
    forecast = pd.read_csv(out, parse_dates=["date"])
    assert list(forecast.columns) == ["store", "date", "load", "OT"] and len(forecast) == 3 * 6
    for name, group in frame.groupby("store"):
        own = forecast[forecast["store"] == name]
        last = pd.Timestamp(group["date"].iloc[-1])
        assert own["date"].tolist() == [last + pd.Timedelta(hours=k) for k in range(1, 7)]
        assert abs(own["load"].mean() - LEVELS[name]) < 5  # back in this store's own units

    # Each id's test rows (with the input_len rows before them): eval gives the run's test scores.
    series = json.loads((run / "series.json").read_text())
    test_rows = pd.concat([g.iloc[slice(*series["bounds"][name]["test"])] for name, g in frame.groupby("store")])
    rows = tmp_path / "test_rows.csv"
    test_rows.to_csv(rows, index=False)
    code, out, err = run_cli("eval", run, "--csv", rows, capsys=capsys)
    assert code == 0, err
    scores, m = json.loads(out), json.loads((run / "metrics.json").read_text())
    for key in ("mse", "mae", "mse_original", "mae_original"):
        assert scores[key] == pytest.approx(m[f"test_{key}"], rel=1e-5), key
    assert scores["by_id"].keys() == m["test_by_id"].keys()
    for name, own in scores["by_id"].items():
        assert own["mse"] == pytest.approx(m["test_by_id"][name]["mse"], rel=1e-5)
    test_rows[test_rows["store"] == "b"].to_csv(rows, index=False)  # one id alone: its windows are surely its own
    code, out, err = run_cli("eval", run, "--csv", rows, capsys=capsys)
    assert code == 0, err
    alone = json.loads(out)
    assert list(alone["by_id"]) == ["b"] and alone["windows"] == m["test_by_id"]["b"]["windows"]
    for key in ("mse", "mae", "mse_original"):
        assert alone[key] == pytest.approx(m["test_by_id"]["b"][key], rel=1e-5), key


def test_one_id_of_a_quantile_run(tmp_path, capsys):
    path = tmp_path / "stores.csv"
    stores().to_csv(path, index=False)
    code, _, err = run_cli("train", "forecast", "--csv", path, "--id-col", "store", "--out", tmp_path / "q", *FAST,
                           "--quantiles", "0.1,0.9", capsys=capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert "test_quantile_loss_original" in m and "coverage_80" in m["test_by_id"]["b"]
    only_b = tmp_path / "b.csv"
    stores().query("store == 'b'").to_csv(only_b, index=False)
    code, out, err = run_cli("predict", tmp_path / "q", "--csv", only_b, capsys=capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "store,date,load,load_q0.1,load_q0.9,OT,OT_q0.1,OT_q0.9" and len(lines) == 1 + 6
    assert all(line.startswith("b,") for line in lines[1:])


@pytest.mark.parametrize("edit, flags, message", [
    (lambda f: f, ["--id-col", "shop"], "has no column 'shop'"),
    (lambda f: f[~((f["store"] == "b") & (f.index > 210))], ["--id-col", "store"], "id 'b' (11 rows): the train split"),
    (lambda f: pd.concat([f.iloc[:5], f.iloc[4:5], f.iloc[5:]]), ["--id-col", "store"],
     "id 'a' has timestamp 2024-01-01 04:00:00 twice (rows 6 and 7)"),
    (lambda f: f, ["--id-col", "store", "--split", "ett"], "id 'a' has 200 rows; the default ETT split needs"),
    (lambda f: f, [], "timestamps are not in increasing order"),  # a long file read as one series
    (lambda f: f.assign(load=f["load"].where(f["store"] != "b")), ["--id-col", "store", "--fill", "ffill"],
     "id 'b': column 'load' is empty in every row; --fill has nothing to fill from"),  # not a "loss became nan"
    (lambda f: f, ["--id-col", "store", "--target", "date"], "the target 'date' is the date column"),
])
def test_bad_long_input_is_one_line_and_exit_2(tmp_path, capsys, edit, flags, message):
    path = tmp_path / "bad.csv"
    edit(stores()).to_csv(path, index=False)
    out_dir = tmp_path / "run"
    code, _, err = run_cli("train", "forecast", "--csv", path, "--out", out_dir, *FAST, *flags, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out_dir.exists()


def test_predict_and_eval_refuse_what_the_run_cannot_forecast(tmp_path, trained, capsys):
    run, path, frame = trained
    new = tmp_path / "new.csv"
    pd.concat([frame, frame[frame["store"] == "a"].assign(store="z")]).to_csv(new, index=False)
    for command in ("predict", "eval"):
        code, _, err = run_cli(command, run, "--csv", new, capsys=capsys)
        assert code == 2 and "not trained on id 'z'" in err and len(err.strip().splitlines()) == 1, err
    short = tmp_path / "short.csv"
    frame[(frame["store"] != "c") | (frame["date"] < pd.Timestamp("2024-01-01 12:00"))].to_csv(short, index=False)
    code, _, err = run_cli("predict", run, "--csv", short, capsys=capsys)
    assert code == 2 and "id 'c' has 10 rows; the model reads the last 24" in err, err
    code, _, err = run_cli("eval", run, "--csv", path, "--backtest", "--folds", 2, capsys=capsys)
    assert code == 2 and "--backtest scores a run on one series" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli("predict", run, "--csv", path.with_name("missing.csv"), capsys=capsys)
    assert code == 2, err
    forecast = Forecast.load(run)
    with pytest.raises(UserError, match="the explorer shows a run on one series"):
        registry.get("forecast").explorable(forecast, run)


def test_predict_in_chunks_of_ids_gives_the_one_pass_forecast(tmp_path, trained, capsys, monkeypatch):
    from seqlab.tasks import forecast_long

    run, path, _ = trained
    calls = []
    model = Forecast.load(run).model
    forward = type(model).forward

    def counted(self, x, *args, **kwargs):  # how many ids each model call forecasts
        calls.append(len(x))
        return forward(self, x, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", counted)
    code, one_pass, err = run_cli("predict", run, "--csv", path, capsys=capsys)
    assert code == 0 and calls == [3], err
    calls.clear()
    monkeypatch.setattr(forecast_long, "PREDICT_CHUNK", 2)
    code, chunked, err = run_cli("predict", run, "--csv", path, capsys=capsys)
    assert code == 0 and calls == [2, 1], err
    assert chunked == one_pass


def test_onnx_export_refuses_a_long_format_run(tmp_path, trained, capsys):
    run, _, _ = trained
    code, _, err = run_cli("export", run, "--format", "onnx", "--out", tmp_path / "onnx", capsys=capsys)
    assert code == 2 and "long-format CSV (--id-col store)" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "onnx").exists()
