"""Positions at the same budget: the same model trained the same number of steps with each way of
giving it positions — learned, sinusoidal, rotary (Su et al. 2021) and relative (Shaw et al. 2018,
clipped at 16) — one after the other in this process, step-bound, fp32.

    .venv/bin/python benchmarks/positions.py --text tinyshakespeare.txt [--lm-steps 1000]
    .venv/bin/python benchmarks/positions.py --multi30k data/multi30k [--mt-steps 1500]

Language model: the ``shakespeare-char-77s`` recipe's shape (4 × 128, context 64, batch 32) with its
time cap removed; validation loss on the last 10 % of the text, whole blocks. Translation: the
``multi30k-de-en`` recipe (3 + 3 layers × 256, BPE 8,000) at a shorter budget; BLEU on the 2016 test
set with beam 4 (rotary is for decoder-only models here, so it is not in the translation rows).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

COMMON = ["--precision", "fp32", "--set", "train.progress=false", "--set", "train.tensorboard=false",
          "--set", "train.curves=false"]


def train(task: str, out: Path, args: list[str], threads: int) -> dict:
    from seqlab.cli.main import main

    assert main(["train", task, "--out", str(out), "--threads", str(threads), *COMMON, *args]) == 0
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, help="a text for the language model (tiny-shakespeare)")
    parser.add_argument("--multi30k", type=Path, help="the folder seqlab data download multi30k writes")
    parser.add_argument("--lm-steps", type=int, default=1000)
    parser.add_argument("--mt-steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="seqlab-positions-"))
    rows = []
    if args.text:
        for positional in ("learned", "sinusoidal", "rotary", "relative"):
            m = train("lm", root / f"lm-{positional}",
                      ["--text", str(args.text), "--config", "shakespeare-char-77s", "--max-steps", str(args.lm_steps),
                       "--set", "train.max_time=0", "--set", f"model.positional='{positional}'"], args.threads)
            rows.append(("lm", positional, f"val loss {m['val_loss']:.4f}", m["train_seconds"] / m["steps"]))
    if args.multi30k:
        d = args.multi30k
        files = {"src": "train.de.gz", "tgt": "train.en.gz", "valid_src": "val.de.gz", "valid_tgt": "val.en.gz",
                 "test_src": "test_2016_flickr.de.gz", "test_tgt": "test_2016_flickr.en.gz"}
        paths = [x for key, name in files.items() for x in ("--set", f"data.{key}='{d / name}'")]
        for positional in ("sinusoidal", "learned", "relative"):
            m = train("translate", root / f"mt-{positional}",
                      ["--config", "multi30k-de-en", *paths, "--max-steps", str(args.mt_steps),
                       "--set", f"train.eval_every={args.mt_steps}", "--set", f"model.positional='{positional}'"],
                      args.threads)
            rows.append(("translate", positional, f"test BLEU {m['bleu']:.2f}", m["train_seconds"] / m["steps"]))
    print(f"\n{'task':<10} {'positions':<11} {'result':<22} {'s/step':>7}")
    for task, positional, result, per_step in rows:
        print(f"{task:<10} {positional:<11} {result:<22} {per_step:>7.3f}")


if __name__ == "__main__":
    main()
