"""Every task is reproducible: two fresh runs with the same --seed, in one process (so the global random
state differs between them), write bit-identical weights and identical metrics (timings aside)."""

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from seqlab.cli.main import main

# fp32 pinned: precision "auto" times the machine, so two runs could choose differently
QUIET = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--seed", "7", "--precision", "fp32"]
SMALL = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--set", "model.d_ff=32"]


def translate_args(data: Path) -> list[str]:
    words = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"] * 6
    (data / "a.txt").write_text("\n".join(words) + "\n")
    (data / "b.txt").write_text("\n".join(w[::-1] for w in words) + "\n")
    return ["translate", "--src", data / "a.txt", "--tgt", data / "b.txt", *SMALL, "--set", "data.tokenizer='char'",
            "--set", "data.max_len=24", "--set", "train.batch_size=8", "--set", "train.eval_every=3",
            "--set", "decode.max_output_len=8", "--max-steps", "6"]


def lm_args(data: Path) -> list[str]:
    rng = random.Random(0)
    lines = [f"{rng.choice(['the cat', 'a dog'])} {rng.choice(['sees', 'likes'])} the sun.\n" for _ in range(300)]
    (data / "corpus.txt").write_text("".join(lines))
    return ["lm", "--text", data / "corpus.txt", *SMALL, "--set", "data.block_size=16", "--set", "train.batch_size=8",
            "--set", "train.eval_every=3", "--max-steps", "6"]


def forecast_args(data: Path) -> list[str]:
    t = np.arange(400)
    rng = np.random.default_rng(0)
    pd.DataFrame({"date": pd.date_range("2024-01-01", periods=400, freq="h"),
                  "load": np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.1, 400),
                  "OT": np.cos(2 * np.pi * t / 24) + rng.normal(0, 0.1, 400)}).to_csv(data / "series.csv", index=False)
    return ["forecast", "--csv", data / "series.csv", "--input-len", "24", "--horizon", "6",
            "--split", "0.7,0.1,0.2", "--model", "transformer", *SMALL, "--set", "train.batch_size=16",
            "--set", "train.eval_every=3", "--max-steps", "6"]


def classify_args(data: Path) -> list[str]:
    rng = random.Random(0)
    rows = [(" ".join(rng.sample("the a film story plot was is and".split(), 4) + [("great" if i % 2 else "dull")]),
             "pos" if i % 2 else "neg") for i in range(80)]
    (data / "reviews.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    return ["classify", "--csv", data / "reviews.csv", "--model", "transformer", *SMALL, "--set", "train.batch_size=8",
            "--set", "train.eval_every=3", "--max-steps", "6"]


def vision_args(data: Path) -> list[str]:
    return ["vision", *SMALL, "--set", "train.batch_size=8", "--set", "train.eval_every=3", "--max-steps", "6"]


TASKS = {"translate": translate_args, "lm": lm_args, "forecast": forecast_args, "classify": classify_args,
         "vision": vision_args}


def without_timings(row: dict) -> dict:
    return {k: v for k, v in row.items() if not (k.endswith("seconds") or k.endswith("_per_s"))}


def outcome(run: Path) -> tuple[dict, list, dict]:
    """(metrics.json, metrics.jsonl rows, every checkpoint's tensors), timings left out."""
    metrics = without_timings(json.loads((run / "metrics.json").read_text()))
    log = [without_timings(json.loads(line)) for line in (run / "metrics.jsonl").read_text().splitlines()]
    weights = {str(path.relative_to(run)): load_file(path) for path in sorted(run.rglob("model.safetensors"))}
    return metrics, log, weights


@pytest.mark.parametrize("task", TASKS)
def test_two_fresh_runs_with_one_seed_are_identical(task, tmp_path):
    args = TASKS[task](tmp_path)
    runs = [tmp_path / "first", tmp_path / "second"]
    for run in runs:
        assert main(["train", *map(str, args), *QUIET, "--out", str(run)]) == 0
    (metrics, log, weights), (metrics2, log2, weights2) = map(outcome, runs)
    assert weights and list(weights) == list(weights2)
    for path, tensors in weights.items():
        assert tensors.keys() == weights2[path].keys()
        for name, tensor in tensors.items():
            assert tensor.equal(weights2[path][name]), f"{path}: {name} differs"
    assert metrics == metrics2
    assert log == log2
