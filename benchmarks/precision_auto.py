"""`train.precision = "auto"` against fp32 and bf16 set by hand: the same training command three times,
one after the other, on the LM configs (a) and (b) of benchmarks/lm_throughput.py and on the demo's
model. Prints each run's training time (the trial that "auto" makes comes before the training clock
starts and is shown as the difference in whole-command time) and auto's ratio to the better of the two.
With ``--repeats N`` each precision runs N times, interleaved, and the medians are shown (auto's choice:
every precision it chose, its last trial's step times). ``--hand fp32`` leaves out the hand-set bf16
runs, for a CPU without bf16 instructions, where a bf16 step took 12-15x an fp32 step (auto's
own trial then shows why it skipped bf16).

    .venv/bin/python benchmarks/precision_auto.py --text tinyshakespeare.txt [--workloads a,b,demo]

Run it on an otherwise quiet machine: auto times the machine, and the target is that it is never
slower than the better of fp32 and bf16 by more than 5 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import down  # this folder's: figures truncated, never rounded up

SEQLAB = str(Path(sys.executable).with_name("seqlab"))


def lm(text: Path, steps: int, block: int, batch: int, width: int, heads: int, layers: int) -> list[str]:
    settings = ["data.tokenizer=char", f"data.block_size={block}", f"model.d_model={width}",
                f"model.n_heads={heads}", f"model.n_layers={layers}", "model.dropout=0.0",
                f"train.batch_size={batch}", f"train.max_steps={steps}", "train.eval_every=100000"]
    return ["train", "lm", "--text", str(text), *(a for s in settings for a in ("--set", s))]


def workloads(text: Path) -> dict[str, list[str]]:
    return {"a": lm(text, 600, block=64, batch=12, width=128, heads=4, layers=4),  # nanoGPT's CPU shape
            "b": lm(text, 30, block=256, batch=64, width=384, heads=6, layers=6),  # its GPU shape
            "demo": ["demo", "--set", "train.max_steps=400"]}


def run(command: list[str], precision: str, out: Path) -> dict:
    start = time.perf_counter()
    done = subprocess.run([SEQLAB, *command, "--set", f"train.precision={precision}", "--out", str(out), "--overwrite"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"failed: {' '.join(command)} --precision {precision}\n{done.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    chosen = json.loads((out / "precision.json").read_text()) if precision == "auto" else None
    return {"wall": wall, "train": metrics["train_seconds"], "steps": metrics["steps"], "chosen": chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, required=True, help="tiny-shakespeare (the LM workloads' text)")
    parser.add_argument("--workloads", default="a,b,demo")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each precision, interleaved (fp32, bf16, auto, fp32, ...); medians shown")
    parser.add_argument("--hand", default="fp32,bf16", help="the precisions set by hand that auto is compared with")
    args = parser.parse_args()
    hand = args.hand.split(",")
    every = workloads(args.text.resolve())
    print("| workload | steps | fp32 training s | bf16 training s | auto: chose | auto training s | auto / better | "
          "whole command s (fp32, bf16, auto) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.workloads.split(","):
            runs: dict[str, list[dict]] = {p: [] for p in [*hand, "auto"]}
            for _ in range(args.repeats):
                for p in runs:
                    runs[p].append(run(every[name], p, Path(tmp) / f"{name}-{p}"))
            r = {p: {"train": statistics.median(x["train"] for x in rs), "wall": statistics.median(x["wall"] for x in rs),
                     "steps": rs[0]["steps"], "chosen": rs[-1]["chosen"]} for p, rs in runs.items()}
            choices = {x["chosen"]["precision"] for x in runs["auto"]}
            chosen = r["auto"]["chosen"]
            trial = ", ".join(f"{k} {v:.1f}" for k, v in chosen["median_step_ms"].items())
            trial += "".join(f"; {k} skipped: {why}" for k, why in chosen.get("skipped", {}).items())
            better = min(r[p]["train"] for p in hand)
            cell = {p: f"{r[p]['train']:.2f}" if p in r else "not run" for p in ("fp32", "bf16")}
            walls = ", ".join(f"{r[p]['wall']:.1f}" if p in r else "—" for p in ("fp32", "bf16", "auto"))
            print(f"| {name} | {r['auto']['steps']} | {cell['fp32']} | {cell['bf16']} | "
                  f"{'/'.join(sorted(choices))} (trial ms a step: {trial}) | {r['auto']['train']:.2f} | "
                  f"{down(r['auto']['train'] / better, 3)} | {walls} |", flush=True)


if __name__ == "__main__":
    main()
