"""The masked LM learns, and what a step of it costs: ``seqlab train mlm`` (the ``mlm-tiny`` recipe:
4 layers, 128 wide, blocks of 64 tokens, batch 32, WordPiece 4,000) on a text, its masked-token accuracy
and perplexity on the held-out last 10 %, and the milliseconds per training step against ``seqlab train
lm`` at the same size (4 × 128, 4 heads, dropout 0.1, blocks of 64 tokens, batch 32, byte-level BPE
4,000), both fp32 and step-bound, one after the other in this process.

    .venv/bin/python benchmarks/mlm.py --text tinyshakespeare.txt [--text train.en.gz ...] [--steps 1500]

A ``.gz`` text is read decompressed (Multi30k's English side is shipped gzipped).
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
from pathlib import Path

COMMON = ["--precision", "fp32", "--set", "train.progress=false", "--set", "train.tensorboard=false",
          "--set", "train.curves=false"]
SIZE = ["--set", "model.d_model=128", "--set", "model.n_heads=4", "--set", "model.n_layers=4",
        "--set", "model.dropout=0.1", "--set", "train.batch_size=32"]


def plain_text(path: Path, root: Path) -> Path:
    if path.suffix != ".gz":
        return path
    out = root / path.stem
    out.write_bytes(gzip.decompress(path.read_bytes()))
    return out


def train(task: str, text: Path, out: Path, steps: int, threads: int, extra: list[str]) -> dict:
    from seqlab.cli.main import main

    assert main(["train", task, "--text", str(text), "--out", str(out), "--max-steps", str(steps),
                 "--threads", str(threads), *COMMON, *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, action="append", required=True)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="seqlab-mlm-bench-"))
    rows = []
    for path in args.text:
        text = plain_text(path, root)
        mlm = train("mlm", text, root / f"mlm-{path.name}", args.steps, args.threads,
                    ["--config", "mlm-tiny", "--set", f"train.eval_every={args.steps}", *SIZE])
        lm = train("lm", text, root / f"lm-{path.name}", args.steps, args.threads,
                   ["--set", "data.tokenizer='bpe'", "--set", "data.vocab_size=4000", "--set", "data.block_size=64",
                    "--set", f"train.eval_every={args.steps}", *SIZE])
        rows.append((path.name, mlm, lm))
    print(f"\n{'text':<22} {'masked acc':>10} {'masked ppl':>10} {'mlm ms/step':>11} {'lm ms/step':>10} "
          f"{'ratio':>6} {'lm val ppl':>10}")
    for name, mlm, lm in rows:
        mlm_ms, lm_ms = 1000 * mlm["train_seconds"] / mlm["steps"], 1000 * lm["train_seconds"] / lm["steps"]
        print(f"{name:<22} {mlm['val_accuracy']:>10.2%} {mlm['val_perplexity']:>10.2f} {mlm_ms:>11.1f} "
              f"{lm_ms:>10.1f} {mlm_ms / lm_ms:>6.2f} {lm['val_perplexity']:>10.2f}")


if __name__ == "__main__":
    main()
