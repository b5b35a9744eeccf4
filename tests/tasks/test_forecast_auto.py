"""``--model auto``: the choice is made on the validation split alone (the test rows can be anything:
the table and the choice stay the same; the test windows are read once, after the last candidate),
the same seed gives the same table, the chosen run is the run a direct training of its config makes,
the budget guard skips and says so, and ``--top-k`` forecasts the mean of its members."""

import json

import numpy as np
import pandas as pd
import pytest

from seqlab.cli.main import main
from seqlab.config import build
from seqlab.data import timeseries as ts
from seqlab.errors import UserError
from seqlab.models import forecasters as fm
from seqlab.tasks import forecast as fc
from seqlab.tasks import forecast_auto as auto
from seqlab.tasks import task as registry

N = 600  # split 0.7,0.1,0.2: train rows 0-419, validation 420-479, test 480-599
AUTO = ["--threads", 1, "--horizon", 12, "--split", "0.7,0.1,0.2", "--max-steps", 40, "--lookbacks", "24,48",
        "--set", "train.progress=false", "--set", "train.tensorboard=false"]
NAMES = ["linear-L24", "linear-lr1e-3-L24", "rlinear-L24", "periodic-L24", "linear-L48", "linear-lr1e-3-L48",
         "rlinear-L48", "periodic-L48", "patch-L24", "patch-L48"]  # by the module's order, written by hand


def write_series(path, test_rows=None):
    rng = np.random.default_rng(3)
    t = np.arange(N)
    frame = pd.DataFrame({"date": pd.date_range("2024-02-01", periods=N, freq="h"),
                          "load": 50 + 10 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1.0, N),
                          "OT": 30 + 4 * np.cos(2 * np.pi * t / 24) + 0.01 * t + rng.normal(0, 0.5, N)})
    if test_rows is not None:
        frame.loc[480:, ["load", "OT"]] = test_rows(frame.loc[480:, ["load", "OT"]])
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One search, with every call of train() and every read of test-sized windows logged in order."""
    root = tmp_path_factory.mktemp("auto")
    csv = write_series(root / "series.csv")
    events, train, predict = [], fc.train, fc.predict_windows

    def logged_train(config, run, *args, **kwargs):
        events.append(f"train {run.name}")
        return train(config, run, *args, **kwargs)

    def logged_predict(model, windows, *args, **kwargs):
        if len(windows.values) - windows.input_len == 120:  # the test split's rows (the validation has 60)
            events.append("test")
        return predict(model, windows, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fc, "train", logged_train)
        patch.setattr(fc, "predict_windows", logged_predict)
        code = run_cli("train", "forecast", "--csv", csv, "--out", root / "run", *AUTO, capsys=None)
    assert code == 0
    return root, csv, events


def run_cli(*args, capsys):
    """``seqlab ARGS`` -> its exit status (what it printed stays for capsys)."""
    try:
        return main([str(a) for a in args])
    except SystemExit as exit_:
        return exit_.code


def report(run):
    return json.loads((run / "auto.json").read_text())


def test_candidates_train_in_order_and_the_test_windows_are_read_once_after_the_choice(searched):
    root, _, events = searched
    assert events == [f"train {name}" for name in NAMES] + ["test"]
    table = report(root / "run")["candidates"]
    assert [row["name"] for row in table] == NAMES
    best = min(table, key=lambda row: row["val_mse"])
    assert report(root / "run")["choice"] == [best["name"]]
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert metrics["auto_choice"] == best["name"] and metrics["val_mse"] == best["val_mse"]
    assert not (root / "run" / "auto").exists()  # the candidates' folders are gone


def test_the_table_is_the_validation_rows_own_scores(searched, capsys):
    """The chosen row's figure is what `seqlab eval` gives on the validation rows alone."""
    root, csv, _ = searched
    run = root / "run"
    start, end = json.loads((run / "series.json").read_text())["bounds"]["valid"]
    pd.read_csv(csv).iloc[start:end].to_csv(root / "valid.csv", index=False)
    scores = eval_json(run, root / "valid.csv", capsys)
    chosen = report(run)["choice"][0]
    row = next(row for row in report(run)["candidates"] if row["name"] == chosen)
    assert scores["mse"] == pytest.approx(row["val_mse"], rel=1e-5)


def eval_json(run, csv, capsys):
    capsys.readouterr()
    assert run_cli("eval", run, "--csv", csv, capsys=capsys) == 0
    return json.loads(capsys.readouterr().out)


def test_other_test_rows_and_a_second_search_give_the_same_table_and_choice(searched, tmp_path):
    """Test rows scaled by 3 and moved by 100 change nothing before the choice; the same seed repeats."""
    root, _, _ = searched
    csv = write_series(tmp_path / "series.csv", test_rows=lambda rows: rows * 3 + 100)
    assert run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "run", *AUTO, capsys=None) == 0
    first, again = report(root / "run"), report(tmp_path / "run")
    assert again["choice"] == first["choice"]
    strip = lambda table: [{k: v for k, v in row.items() if k != "seconds"} for row in table]  # noqa: E731
    assert strip(again["candidates"]) == strip(first["candidates"])
    test = json.loads((tmp_path / "run" / "metrics.json").read_text())["test_mse"]
    assert test > 10 * json.loads((root / "run" / "metrics.json").read_text())["test_mse"]  # the test rows did change


def test_the_chosen_run_is_a_direct_run_of_its_config(searched, tmp_path, capsys):
    root, csv, _ = searched
    run = root / "run"
    info = json.loads((run / "run.json").read_text())
    assert info["config"]["model"]["arch"] != "auto" and info["config"]["train"]["precision"] == "fp32"
    series = fc.read_series(build(fc.ForecastConfig, info["config"]).data)
    direct, metrics = fc.train(build(fc.ForecastConfig, info["config"]), tmp_path, series, log=lambda *a: None)
    mine = fc.Forecast.load(run)
    pd.testing.assert_frame_equal(mine.predict_csv(csv), direct.predict_csv(csv))
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("val_mse", "test_mse", "test_mae", "test_mse_original", "steps", "best_step"):
        assert saved[key] == metrics[key], key
    # eval and predict read it as any run
    start, end = json.loads((run / "series.json").read_text())["bounds"]["test"]
    pd.read_csv(csv).iloc[start:end].to_csv(tmp_path / "test.csv", index=False)
    assert eval_json(run, tmp_path / "test.csv", capsys)["mse"] == pytest.approx(saved["test_mse"], rel=1e-5)
    assert run_cli("predict", run, "--csv", csv, "--out", tmp_path / "next.csv", capsys=capsys) == 0
    assert len(pd.read_csv(tmp_path / "next.csv")) == 12
    assert {"forecast.png", "curves.png", "metrics.jsonl", "series.json"} <= {p.name for p in run.iterdir()}


def test_a_spent_budget_skips_the_rest_and_says_so(tmp_path, capsys):
    csv = write_series(tmp_path / "series.csv")
    code = run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "run", *AUTO, "--max-time", 0.001,
                   capsys=capsys)
    err = capsys.readouterr().err
    assert code == 0 and "9 of 10 candidates skipped" in err and "depends on this machine" in err
    r = report(tmp_path / "run")
    assert [row["name"] for row in r["candidates"]] == NAMES[:1] and r["candidates"][0]["cut"]
    assert r["skipped"] == [{"name": name, "skipped": "budget"} for name in NAMES[1:]] and r["budget_spent"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["auto_budget_spent"] is True


def test_top_k_forecasts_the_mean_of_its_members(tmp_path, capsys):
    csv = write_series(tmp_path / "series.csv")
    code = run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "run", *AUTO, "--top-k", 2, capsys=capsys)
    assert code == 0, capsys.readouterr().err
    r = report(tmp_path / "run")
    ranked = sorted(r["candidates"], key=lambda row: row["val_mse"])
    assert r["choice"] == [row["name"] for row in ranked[:2]]
    # each member trained again on its own from its recorded config; the run forecasts their mean
    members = []
    for i, chosen in enumerate(r["chosen"]):
        config = build(fc.ForecastConfig, chosen["config"])
        (tmp_path / f"member{i}").mkdir()
        forecast, _ = fc.train(config, tmp_path / f"member{i}", fc.read_series(config.data), log=lambda *a: None)
        members.append(forecast.predict_csv(csv))
    mean = (members[0].iloc[:, 1:] + members[1].iloc[:, 1:]) / 2
    ensemble = fc.Forecast.load(tmp_path / "run")
    assert ensemble.config.model.arch == "auto"
    assert ensemble.config.data.input_len == max(row["input_len"] for row in ranked[:2])
    np.testing.assert_allclose(ensemble.predict_csv(csv).iloc[:, 1:].to_numpy(), mean.to_numpy(), rtol=1e-5)
    capsys.readouterr()
    code = run_cli("train", "forecast", "--resume", tmp_path / "run", capsys=capsys)
    assert code == 2 and "does not resume" in capsys.readouterr().err
    assert run_cli("eval", tmp_path / "run", "--csv", csv, "--backtest", "--folds", 2, capsys=capsys) == 0
    code = run_cli("eval", tmp_path / "run", "--csv", csv, "--backtest", "--folds", 2, "--refit", capsys=capsys)
    assert code == 2 and "without --refit" in capsys.readouterr().err


def test_an_interrupted_search_leaves_no_run_directory_and_says_so(tmp_path, capsys, monkeypatch):
    csv = write_series(tmp_path / "series.csv")
    train, calls = fc.train, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    monkeypatch.setattr(fc, "train", interrupted)
    assert run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "run", *AUTO, capsys=capsys) == 130
    assert not (tmp_path / "run").exists()  # it held nothing but the candidates' folder
    err = capsys.readouterr().err
    assert "interrupted before anything was saved" in err and "removed" in err and "checkpoint" not in err, err


def test_a_top_k_over_the_candidates_is_said_once_and_recorded(tmp_path, capsys):
    csv = write_series(tmp_path / "series.csv")
    code = run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "run", *AUTO, "--lookbacks", 24,
                   "--top-k", 7, capsys=capsys)
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("--top-k 7: only 5 candidates trained") == 1, err
    r = report(tmp_path / "run")
    assert r["top_k"] == 7 and r["top_k_used"] == 5 and len(r["choice"]) == 5


def test_a_candidate_that_fails_is_skipped_and_if_all_fail_the_search_is_one_line(tmp_path, capsys, monkeypatch):
    csv = write_series(tmp_path / "series.csv")
    train = fc.train

    def diverging(config, run, *args, **kwargs):
        if config.model.arch == "periodic":
            raise UserError("the training loss became nan at step 3")
        return train(config, run, *args, **kwargs)

    monkeypatch.setattr(fc, "train", diverging)
    flags = [*AUTO, "--lookbacks", "48", "--max-steps", 10]
    assert run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "run", *flags, capsys=capsys) == 0
    r = report(tmp_path / "run")
    assert r["skipped"] == [{"name": "periodic-L48", "skipped": "failed: the training loss became nan at step 3"}]
    assert [row["name"] for row in r["candidates"]] == ["linear-L48", "linear-lr1e-3-L48", "rlinear-L48", "patch-L48"]
    monkeypatch.setattr(fc, "train", lambda *a, **k: (_ for _ in ()).throw(UserError("the loss became nan")))
    capsys.readouterr()
    code = run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "every", *flags, capsys=capsys)
    err = capsys.readouterr().err
    assert code == 2 and "every candidate failed; patch-L48: the loss became nan" in err and err.count("\n") == 1
    assert not (tmp_path / "every").exists()


def test_with_quantiles_the_choice_is_by_the_validation_quantile_loss(tmp_path):
    csv = write_series(tmp_path / "series.csv")
    flags = [*AUTO, "--lookbacks", "48", "--max-steps", 10, "--quantiles", "0.1,0.9"]
    assert run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "run", *flags, capsys=None) == 0
    r = report(tmp_path / "run")
    assert r["selected_by"] == "val_quantile_loss"
    assert r["choice"] == [min(r["candidates"], key=lambda row: row["val_quantile_loss"])["name"]]
    rlinear = next(c for c in auto.plan(build(fc.ForecastConfig, r["chosen"][0]["config"]), fc.read_series(
        build(fc.ForecastConfig, r["chosen"][0]["config"]).data))[0] if c.name.startswith("rlinear"))
    assert rlinear.config.model.loss == "mse"  # the pinball loss, not the recipe's MAE
    assert "test_coverage_80" in json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_a_quantile_ensemble_is_calibrated_as_a_whole(tmp_path):
    # --top-k with quantiles: the members' own offsets are dropped, the mean forecast gets its own from
    # the validation windows, and covers at least 80 % of them.
    csv = write_series(tmp_path / "series.csv")
    flags = [*AUTO, "--lookbacks", "48", "--max-steps", 10, "--quantiles", "0.1,0.9", "--top-k", 2]
    assert run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "run", *flags, capsys=None) == 0
    ensemble = fc.Forecast.load(tmp_path / "run").model
    assert isinstance(ensemble, fm.ForecastEnsemble) and len(ensemble.members) == 2
    assert np.array(ensemble.config.calibration).shape == (2, 3)
    assert [member.config.calibration for member in ensemble.members] == [[], []]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["val_coverage_80"] >= 0.8 and 0.0 <= m["val_coverage_80_uncalibrated"] <= 1.0


@pytest.mark.parametrize("spacing, period", [("h", 24), ("15min", 96), ("D", 7), ("W", 52), ("MS", 12), ("5h", None)])
def test_the_season_follows_the_timestamps_spacing(spacing, period):
    assert auto.seasonal_period(pd.date_range("2020-01-01", periods=30, freq=spacing)) == period


def test_a_short_weekly_series_gets_short_input_lengths():
    """ILI-like: 966 weekly rows, split 0.7,0.1,0.2 -> 676 training rows, fewer than 720 + 24."""
    config = build(fc.ForecastConfig, {"data": {"horizon": 24, "split": "0.7,0.1,0.2"}})
    assert auto.lookbacks(config, 966) == [36, 96, 104, 336]
    series = ts.Series(np.zeros((966, 1)), pd.date_range("2002-01-01", periods=966, freq="W"), ["OT"], [0], [0])
    candidates, left_out = auto.plan(config, series)
    assert {entry["name"] for entry in left_out} == {"periodic-L36"}  # 52 weeks do not fit in 36
    assert [c.name for c in candidates][:4] == ["linear-L36", "linear-lr1e-3-L36", "rlinear-L36", "linear-L96"]
    assert candidates[3].config.train.max_steps == 1500 and candidates[3].config.train.max_time == 0
    assert candidates[0].config.train.precision == "fp32"
    # the ETT-sized hourly series: 96, 336, 720 and nothing shorter
    ett = build(fc.ForecastConfig, {"data": {"horizon": 96}})
    assert auto.lookbacks(ett, 17420) == [96, 336, 720]
    hourly = ts.Series(np.zeros((17420, 1)), pd.date_range("2016-07-01", periods=17420, freq="h"), ["OT"], [0], [0])
    candidates, left_out = auto.plan(ett, hourly)
    assert [c.name for c in candidates][-2:] == ["patch-L96", "patch-L336"]  # PatchTST up to its own 336
    assert left_out == [{"name": "patch-L720", "reason": "patch is tried up to L = 336"}]


@pytest.mark.parametrize("flags, message", [
    (["--lookbacks", "x"], "--lookbacks (model.lookbacks) must be input lengths"),
    (["--top-k", "0"], "model.top_k must be at least 1"),
    (["--lookbacks", "500"], "window needs"),
])
def test_bad_auto_settings_are_one_line_and_exit_2(tmp_path, capsys, flags, message):
    csv = write_series(tmp_path / "series.csv")
    code = run_cli("train", "forecast", "--csv", csv, "--out", tmp_path / "run", *AUTO, *flags, capsys=capsys)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_top_k_on_a_one_model_run_is_refused_when_resumed_too(tmp_path, capsys):
    # it was taken, kept in run.json and ignored: the resumed linear model is still one model
    csv = write_series(tmp_path / "series.csv")
    run = tmp_path / "run"
    one = ["--threads", 1, "--horizon", 12, "--input-len", 24, "--split", "0.7,0.1,0.2", "--max-steps", 5,
           "--set", "train.progress=false", "--set", "train.tensorboard=false"]
    assert run_cli("train", "forecast", "--csv", csv, "--out", run, "--model", "linear", *one, capsys=capsys) == 0
    before = (run / "run.json").read_text()
    capsys.readouterr()
    for flags in (["--top-k", 2], ["--lookbacks", "24"]):
        assert run_cli("train", "forecast", "--resume", run, "--max-steps", 10, *flags, capsys=capsys) == 2
        err = capsys.readouterr().err
        assert "--model linear trains one model" in err and len(err.strip().splitlines()) == 1, err
    assert (run / "run.json").read_text() == before


def test_auto_is_the_default_and_compare_leaves_it_out():
    assert fc.ForecastConfig().model.arch == "auto"
    assert "auto" not in registry.get("forecast").architectures
    with pytest.raises(Exception, match="search over forecasters"):
        fc.build_forecaster(fc.ForecastConfig().model, 2, 24, 4)


def test_compare_forecast_has_no_flags_of_the_search_it_leaves_out(capsys):
    # --top-k and --lookbacks choose among auto's candidates: compare never trains auto, so it does not
    # list them (it used to, and then refused every model they were given with)
    from seqlab.cli.main import main

    listed = {}
    for command in ("train", "compare"):
        with pytest.raises(SystemExit) as help_exit:
            main([command, "forecast", "--help"])
        assert help_exit.value.code == 0
        listed[command] = capsys.readouterr().out
    assert "--top-k" in listed["train"] and "--lookbacks" in listed["train"]
    assert "--quantiles" in listed["compare"]
    assert "--top-k" not in listed["compare"] and "--lookbacks" not in listed["compare"]
    with pytest.raises(SystemExit) as refused:
        main(["compare", "forecast", "--models", "linear", "--top-k", "2"])
    assert refused.value.code == 2 and "--top-k: not a flag of compare forecast" in capsys.readouterr().err
