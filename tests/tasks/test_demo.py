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


def columns(text):
    return sum(0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else
               2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)
