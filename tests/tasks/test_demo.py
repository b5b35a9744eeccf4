import json
import unicodedata

from seqlab.tasks.demo import run_demo


def test_demo_pipeline_writes_metrics_checkpoint_and_heatmap(tmp_path):
    # The main job's whole path at a toy budget (make demo runs it at full size).
    lines = []
    metrics = run_demo(tmp_path / "demo", overwrite=False, n_train=2000, n_test=50, log=lines.append,
                       overrides=["train.max_steps=6", "train.eval_every=3", "train.progress=false",
                                  "train.tensorboard=false"])
    saved = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert saved == metrics
    for key in ("exact_match", "bleu", "train_seconds"):
        assert key in saved
    assert (tmp_path / "demo" / "cross_attention.png").stat().st_size > 1000
    assert (tmp_path / "demo" / "checkpoints" / "best" / "model.safetensors").is_file()
    assert any("held-out exact match" in line for line in lines)
    samples = [line for line in lines if "✓" in line or "✗" in line]
    assert len(samples) == 5  # five sample translations
    # their arrows in one screen column, a Han or Hangul character taking two (Unicode's East Asian Width)
    assert len({columns(line[: line.index(" -> ")]) for line in samples}) == 1, samples


def test_a_failed_demo_leaves_nothing_and_gives_back_the_demo_it_replaced(tmp_path, monkeypatch):
    import pytest

    from seqlab.errors import DataError
    from seqlab.tasks import demo

    def fails(config, run, splits, log):
        (run / "tokenizer.json").write_text("half-made")
        raise DataError("a sentence is too long")

    monkeypatch.setattr(demo, "train", fails)
    make_splits = demo.make_splits
    monkeypatch.setattr(demo, "make_splits", lambda seed, n_train, n_test: make_splits(seed, 10, 5))
    with pytest.raises(DataError):
        run_demo(tmp_path / "demo", overwrite=False, overrides=[], log=lambda line: None)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "run.json").write_text("the demo before")
    with pytest.raises(DataError):
        run_demo(tmp_path / "demo", overwrite=True, overrides=[], log=lambda line: None)
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
    assert [p.name for p in (tmp_path / "demo").iterdir()] == ["run.json"]
    assert (tmp_path / "demo" / "run.json").read_text() == "the demo before"


def columns(text):
    return sum(0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else
               2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)
