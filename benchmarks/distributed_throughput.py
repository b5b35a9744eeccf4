"""Training throughput of `seqlab train lm` on 1 process against 2 processes in each parallel layout,
measured in one run on the same data and model. On a 2-core CPU no speed-up is expected (one process
already uses both cores through its threads; two processes get one core each and add communication);
the figures show what each layout costs, and the path to many GPUs is the same command.

    .venv/bin/python benchmarks/distributed_throughput.py [--steps 60] [--text FILE]

Every run: fp32, a 4-layer, 256-wide Transformer LM (8 heads, untied output layer so that the pipeline
can cut it), context 128, global batch 16, characters of the given text (default: the Python standard
library's source). Throughput is the median of the logged 10-step windows after the first (start-up and
the first steps' allocations excluded). One process runs with both cores' threads; torchrun gives each
of two processes one thread (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODEL = ["--set", "model.d_model=256", "--set", "model.n_heads=8", "--set", "model.n_layers=4",
         "--set", "model.tie_weights=false", "--set", "data.block_size=128", "--set", "train.batch_size=16",
         "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.log_every=10",
         "--set", "data.default_corpus_chars=500000", "--precision", "fp32"]

LAYOUTS = {
    "1 process (reference)": (1, []),
    "DDP, 2 ranks": (2, ["--set", "parallel.dp=2"]),
    "FSDP2, 2 ranks": (2, ["--set", "parallel.dp_mode='fsdp'"]),
    "tensor parallel, 2 ranks": (2, ["--set", "parallel.tp=2"]),
    "pipeline GPipe, 2 stages, 4 micro-batches": (2, ["--set", "parallel.pp=2", "--set", "parallel.schedule='gpipe'",
                                                      "--set", "parallel.microbatches=4"]),
    "pipeline 1F1B, 2 stages, 4 micro-batches": (2, ["--set", "parallel.pp=2", "--set", "parallel.schedule='1f1b'",
                                                     "--set", "parallel.microbatches=4"]),
}


def run(nproc: int, layout: list[str], steps: int, text: str | None, out: Path) -> float:
    command = [sys.executable, "-m", "seqlab", "train", "lm", "--out", str(out), "--max-steps", str(steps),
               "--set", f"train.eval_every={steps}", *MODEL, *layout]
    if text:
        command += ["--text", text]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    windows = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][1:]
    return statistics.median(windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--text", help="a UTF-8 text file (default: the Python standard library's source)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        results = {}
        for i, (name, (nproc, layout)) in enumerate(LAYOUTS.items()):
            results[name] = run(nproc, layout, args.steps, args.text, Path(scratch) / f"run{i}")
            print(f"{name}: {results[name]:,.0f} tokens/s", flush=True)
    reference = results["1 process (reference)"]
    print("\n| layout | processes | tokens/s | vs 1 process |\n|---|---|---|---|")
    for name, tokens in results.items():
        print(f"| {name} | {LAYOUTS[name][0]} | {tokens:,.0f} | {tokens / reference:.2f}× |")


if __name__ == "__main__":
    main()
