import json

import numpy as np
import pandas as pd
import pytest

from seqlab.cli.main import main


def test_compare_writes_one_table_for_every_model(tmp_path, capsys, monkeypatch):
    out = tmp_path / "cmp"
    args = ["compare", "translate", "--dates", "--models", "attention,conv,transformer", "--out", str(out),
            "--max-steps", "4", "--set", "train.eval_every=2", "--set", "train.progress=false",
            "--set", "train.tensorboard=false", "--set", "model.rnn.hidden_size=16", "--set", "model.d_model=16",
            "--set", "model.conv.hidden_size=16"]
    from seqlab.tasks import demo

    original = demo.make_splits
    monkeypatch.setattr(demo, "make_splits", lambda seed: original(seed, n_train=500, n_test=20))
    assert main(args) == 0, capsys.readouterr().err
    frame = pd.read_csv(out / "compare.csv")
    assert frame["model"].tolist() == ["attention", "conv", "transformer"]
    assert (frame["parameters"] > 0).all() and frame.notna().all().all()  # no column left empty
    assert "tokens_per_s" not in frame.columns  # a language-model column
    table = (out / "compare.md").read_text().splitlines()
    assert table[2].startswith("| attention ") and len({len(line) for line in table}) == 1  # columns lined up
    assert (out / "curves.png").is_file()
    assert all((out / f"alignment-{m}.png").is_file() for m in frame["model"])
    assert frame["scored_split"].tolist() == ["test"] * 3 and "| scored on |" in (out / "compare.md").read_text()
    config = json.loads((out / "transformer" / "run.json").read_text())["config"]
    assert config["data"]["tokenizer"] == "char" and config["train"]["batch_size"] == 128  # compare-dates.toml


def test_a_model_that_fails_after_another_trained_leaves_no_directory(tmp_path, capsys, monkeypatch):
    """Nothing half-made: the first model's folder and run.json go with the failure of the second."""
    from seqlab.errors import DataError
    from seqlab.tasks import demo
    from seqlab.tasks.task import get

    original = demo.make_splits
    monkeypatch.setattr(demo, "make_splits", lambda seed: original(seed, n_train=100, n_test=5))
    task = get("translate")
    train = type(task).train

    def second_fails(self, config, run, data, **kwargs):
        if config.model.arch == "transformer":
            raise DataError("the second model's data went wrong")
        return train(self, config, run, data, **kwargs)

    monkeypatch.setattr(type(task), "train", second_fails)
    out = tmp_path / "cmp"
    code = main(["compare", "translate", "--dates", "--models", "conv,transformer", "--out", str(out), "--max-steps", "2",
                 "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "model.d_model=16",
                 "--set", "model.conv.hidden_size=16"])
    assert code == 2 and "the second model's data went wrong" in capsys.readouterr().err
    assert not out.exists()
    # with --overwrite the comparison it was to replace comes back whole
    out.mkdir()
    (out / "run.json").write_text('{"task": "compare-translate", "config": {}}')
    (out / "compare.csv").write_text("model\nconv\n")
    code = main(["compare", "translate", "--dates", "--models", "conv,transformer", "--out", str(out), "--overwrite",
                 "--max-steps", "2", "--set", "train.progress=false", "--set", "train.tensorboard=false",
                 "--set", "model.d_model=16", "--set", "model.conv.hidden_size=16"])
    assert code == 2 and (out / "compare.csv").read_text() == "model\nconv\n"
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "run.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["cmp"]  # nothing set aside is left


def test_without_test_files_the_table_says_the_validation_split_was_scored(tmp_path, capsys):
    words = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"] * 6
    (tmp_path / "a.src").write_text("\n".join(words) + "\n")
    (tmp_path / "a.tgt").write_text("\n".join(w[::-1] for w in words) + "\n")
    out = tmp_path / "cmp"
    code = main(["compare", "translate", "--src", str(tmp_path / "a.src"), "--tgt", str(tmp_path / "a.tgt"),
                 "--models", "simple", "--out", str(out), "--max-steps", "1", "--set", "train.progress=false",
                 "--set", "train.tensorboard=false", "--set", "data.tokenizer='char'",
                 "--set", "model.rnn.hidden_size=16", "--set", "model.rnn.embed_dim=8"])
    assert code == 0, capsys.readouterr().err
    assert pd.read_csv(out / "compare.csv")["scored_split"].tolist() == ["valid"]


def test_each_models_run_names_its_data_by_absolute_path(tmp_path, monkeypatch):
    """A compared model is a run of its own: its run.json resumes from any working directory."""
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.txt").write_text("to be or not to be, that is the question\n" * 200)
    code = main(["compare", "lm", "--text", "text.txt", "--models", "transformer", "--out", "cmp", "--max-steps", "1",
                 "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "model.d_model=16",
                 "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--set", "data.block_size=16",
                 "--precision", "fp32"])
    assert code == 0
    for run_json in (tmp_path / "cmp" / "run.json", tmp_path / "cmp" / "transformer" / "run.json"):
        assert str(tmp_path / "text.txt") in run_json.read_text(), run_json.read_text()


def test_compare_refuses_unknown_models_and_missing_data(tmp_path, capsys):
    assert main(["compare", "translate", "--dates", "--models", "lstm,transformer", "--out", str(tmp_path / "a")]) == 2
    assert "unknown model kind lstm" in capsys.readouterr().err
    assert main(["compare", "translate", "--out", str(tmp_path / "b")]) == 2
    assert "give the data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # a flag of another task: the parser's one line
        main(["compare", "lm", "--csv", "x.csv", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--csv: not a flag of compare lm" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:  # train's --model: it was taken for --models, replacing the list
        main(["compare", "lm", "--models", "rnn,lstm", "--model", "gru", "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--model: not a flag of compare lm" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "d").exists()


def labelled_csv(path, n=200):
    """Texts whose label is carried by one sentiment word among neutral ones."""
    rng = np.random.default_rng(0)
    neutral = "the a film story plot was is and".split()
    rows = [" ".join([*rng.choice(neutral, 4), ("superb" if i % 2 else "dull")]) + ("," + ("pos" if i % 2 else "neg"))
            for i in range(n)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def test_compare_classify_one_split_and_folds(tmp_path, capsys):
    data = labelled_csv(tmp_path / "reviews.csv")
    out = tmp_path / "cmp"
    fast = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "model.d_model=16",
            "--set", "model.n_filters=8", "--set", "train.eval_every=20", "--max-steps", "40"]
    assert main(["compare", "classify", "--csv", str(data), "--models", "nbsvm,conv1d,tfidf", "--out", str(out),
                 *fast]) == 0, capsys.readouterr().err
    frame = pd.read_csv(out / "compare.csv")
    assert frame["model"].tolist() == ["nbsvm", "conv1d", "tfidf"] and frame.notna().all().all()
    for row in frame.itertuples():  # each row is its run's own figures
        m = json.loads((out / row.model / "metrics.json").read_text())
        assert (row.test_accuracy, row.parameters) == (m["test_accuracy"], m["parameters"]) and row.parameters > 0
    assert frame.set_index("model").loc["nbsvm", "test_accuracy"] == 1.0
    assert (out / "curves.png").is_file()  # conv1d's curve
    capsys.readouterr()
    assert main(["eval", str(out / "nbsvm"), "--csv", str(data)]) == 0  # each model is a run of its own
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0
    assert main(["eval", str(out), "--csv", str(data)]) == 2
    assert f"seqlab eval {out}/MODEL" in capsys.readouterr().err

    assert main(["compare", "classify", "--csv", str(data), "--models", "nbsvm,tfidf", "--cv", "3",
                 "--out", str(tmp_path / "cv")]) == 0
    frame = pd.read_csv(tmp_path / "cv" / "compare.csv")
    assert list(frame.columns) == ["model", "parameters", "seconds", "cv_accuracy", "cv_accuracy_std", "cv_macro_f1"]
    assert main(["compare", "classify", "--csv", str(data), "--cv", "101", "--out", str(tmp_path / "bad")]) == 2
    assert "needs at least 101 per class" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_compare_forecast_scores_every_model_on_the_same_windows(tmp_path, capsys):
    t = np.arange(400)
    series = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=400, freq="h"),
                           "OT": np.sin(2 * np.pi * t / 24) + 0.05 * np.random.default_rng(0).normal(size=400)})
    series.to_csv(tmp_path / "series.csv", index=False)
    out = tmp_path / "cmp"
    assert main(["compare", "forecast", "--csv", str(tmp_path / "series.csv"), "--models", "linear,periodic",
                 "--input-len", "48", "--horizon", "12", "--split", "0.7,0.1,0.2", "--max-steps", "60",
                 "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.eval_every=20",
                 "--set", "train.lr=0.01", "--out", str(out)]) == 0, capsys.readouterr().err
    frame = pd.read_csv(out / "compare.csv")
    assert frame["model"].tolist() == ["linear", "periodic"]
    for row in frame.itertuples():
        m = json.loads((out / row.model / "metrics.json").read_text())
        assert (row.test_mse, row.test_mae_original) == (m["test_mse"], m["test_mae_original"])
    assert (frame["test_mse"] < 0.5).all()  # a daily cycle, standardised variance ~1: both learned it
    assert (out / "curves.png").is_file()
