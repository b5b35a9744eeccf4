import json

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
    assert sum(("✓" in line or "✗" in line) for line in lines) == 5  # five sample translations
