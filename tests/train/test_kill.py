"""SIGKILL a real ``seqlab train`` at a chosen moment — between steps, while a checkpoint is being
written, between the two renames that swap it in — then ``--resume``: the final weights must be
bit-identical to an uninterrupted run of the same command, and metrics.jsonl must hold each step once,
as the uninterrupted run's does. The moments are drawn by a seeded generator (so the test is
reproducible) and counted inside the killed process (tests/train/kill_at.py), not timed."""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

SRC = Path(__file__).parents[2] / "src"
KILL_AT = Path(__file__).parent / "kill_at.py"
STEPS, EVERY = 40, 8  # five checkpoints
COMMON = ["--max-steps", str(STEPS), "--set", f"train.eval_every={EVERY}", "--set", "train.log_every=4",
          "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.curves=false",
          "--set", "train.warmup_steps=5", "--set", "model.d_model=16", "--set", "model.n_heads=2",
          "--set", "model.n_layers=1", "--set", "model.d_ff=32",
          "--precision", "fp32"]  # pinned: precision "auto" times the machine, so two runs could choose differently

MOMENT = random.Random(20261129)
CASES = [
    # between two checkpoints, after a row of metrics.jsonl that the resumed run writes again
    ("lm", f"step:{EVERY * MOMENT.randint(1, STEPS // EVERY - 1) + MOMENT.randint(6, EVERY)}"),
    ("lm", "staging:last:1"),  # the first `last` half-written while `best` exists: the run starts again
    ("translate", f"swap:last:{MOMENT.randint(2, STEPS // EVERY)}"),  # only .last.old is left
    ("forecast", f"staging:last:{MOMENT.randint(2, STEPS // EVERY)}"),
]


def data_flags(task: str, tmp: Path) -> list[str]:
    rng = random.Random(0)
    if task == "lm":
        words = ["the cat", "a dog", "sees", "likes", "the sun", "a tree"]
        (tmp / "corpus.txt").write_text("".join(f"{rng.choice(words)} {rng.choice(words)}.\n" for _ in range(300)))
        return ["--text", str(tmp / "corpus.txt"), "--set", "data.block_size=16", "--set", "train.batch_size=8"]
    if task == "translate":
        words = [rng.choice(["abc", "hello", "cat", "dog", "sun", "moon", "tree", "zebra"]) for _ in range(80)]
        (tmp / "train.src").write_text("\n".join(words) + "\n")
        (tmp / "train.tgt").write_text("\n".join(w[::-1] for w in words) + "\n")
        return ["--src", str(tmp / "train.src"), "--tgt", str(tmp / "train.tgt"), "--set", "data.tokenizer='char'",
                "--set", "train.batch_size=8", "--set", "decode.beam_size=1", "--set", "decode.max_output_len=8"]
    t = np.arange(400)
    noise = np.random.default_rng(0).normal(0, 0.3, (2, 400))
    pd.DataFrame({"date": pd.date_range("2024-01-01", periods=400, freq="h"),
                  "load": 50 + 10 * np.sin(2 * np.pi * t / 24) + noise[0],
                  "OT": 30 + 4 * np.cos(2 * np.pi * t / 24) + noise[1]}).to_csv(tmp / "series.csv", index=False)
    return ["--csv", str(tmp / "series.csv"), "--input-len", "24", "--horizon", "6", "--split", "0.7,0.1,0.2",
            "--model", "transformer", "--set", "train.batch_size=16"]


def seqlab(*args: str, moment: str | None = None) -> subprocess.Popen:
    command = [sys.executable, str(KILL_AT), moment] if moment else [sys.executable, "-m", "seqlab"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}  # tiny models: threads only contend
    return subprocess.Popen([*command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=300)
    return process.returncode, err


def rows(run: Path) -> list[dict]:
    """metrics.jsonl without its clock readings."""
    return [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("task, moment", CASES, ids=[f"{t}-{m}" for t, m in CASES])
def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, task, moment):
    flags = [*data_flags(task, tmp_path), *COMMON]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    straight = seqlab("train", task, *flags, "--out", str(whole))
    victim = seqlab("train", task, *flags, "--out", str(killed), moment=moment)
    code, err = finish(victim)
    assert code == -signal.SIGKILL, f"not killed at {moment}: {err}"
    assert finish(straight)[0] == 0
    code, err = finish(seqlab("train", task, "--resume", str(killed)))
    assert code == 0, err

    expected, final = (load_file(str(run / "checkpoints" / "last" / "model.safetensors")) for run in (whole, killed))
    assert expected.keys() == final.keys()
    for name in expected:
        assert torch.equal(expected[name], final[name]), name
    assert rows(killed) == rows(whole)  # each step once, with the same losses
