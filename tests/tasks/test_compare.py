import pandas as pd

from seqlab.cli.main import main


def test_compare_writes_one_table_for_every_model(tmp_path, capsys, monkeypatch):
    out = tmp_path / "cmp"
    args = ["compare", "translate", "--dates", "--models", "attention,conv,transformer", "--out", str(out),
            "--max-steps", "4", "--set", "train.eval_every=2", "--set", "train.progress=false",
            "--set", "train.tensorboard=false", "--set", "model.rnn.hidden_size=16", "--set", "model.d_model=16",
            "--set", "model.conv.hidden_size=16"]
    from seqlab.tasks import compare

    original = compare.make_splits
    monkeypatch.setattr(compare, "make_splits", lambda seed: original(seed, n_train=500, n_test=20))
    assert main(args) == 0, capsys.readouterr().err
    frame = pd.read_csv(out / "compare.csv")
    assert frame["model"].tolist() == ["attention", "conv", "transformer"]
    assert (frame["parameters"] > 0).all() and frame.notna().all().all()  # no column left empty
    assert "tokens_per_s" not in frame.columns  # a language-model column
    assert "| attention |" in (out / "compare.md").read_text()
    assert (out / "curves.png").is_file()
    assert all((out / f"alignment-{m}.png").is_file() for m in frame["model"])


def test_compare_refuses_unknown_models_and_missing_data(tmp_path, capsys):
    assert main(["compare", "translate", "--dates", "--models", "lstm,transformer", "--out", str(tmp_path / "a")]) == 2
    assert "unknown model kind lstm" in capsys.readouterr().err
    assert main(["compare", "translate", "--out", str(tmp_path / "b")]) == 2
    assert "give the data" in capsys.readouterr().err
