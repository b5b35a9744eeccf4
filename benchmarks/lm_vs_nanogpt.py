"""Time to a result, side by side: nanoGPT's own CPU recipe for tiny-shakespeare by character, then
seqlab on the same text, one after the other on the same machine; seqlab's whole-command wall time to
reach nanoGPT's final validation loss.

    .venv/bin/python benchmarks/lm_vs_nanogpt.py --nanogpt PATH/TO/nanoGPT --text tinyshakespeare.txt \
        [--seqlab shakespeare-char-quick,shakespeare-char-77s:700]

``--seqlab``: the seqlab runs, one after the other after nanoGPT's, each a recipe with ``:STEPS`` to end
it at that step instead of the recipe's own (and without a time budget).

nanoGPT is a checkout the user points to (github.com/karpathy/nanoGPT); its code runs unchanged. Its data
script reads data/shakespeare_char/input.txt, which this script copies from ``--text`` when it is missing
(so nothing is downloaded); that script imports ``requests``, so the Python given by ``--nanogpt-python``
needs it. nanoGPT's command is the CPU line of its README (4 layers, 128 wide, context 64, batch 12,
2,000 steps, no dropout) with two additions that change no number: ``--always_save_checkpoint=True``,
so the last model is on disk, and ``--out_dir`` in a temporary folder.

Both validation losses are also measured here the same way, on the whole validation text (the last
10 % of the characters for both: nanoGPT's data script and seqlab split at the same character) in
non-overlapping blocks of 64, since nanoGPT prints an estimate from 20 random batches.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import down  # this folder's: figures truncated, never rounded up

NANOGPT_CPU = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
               "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
               "--n_embd=128", "--max_iters=2000", "--lr_decay_iters=2000", "--dropout=0.0"]


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def prepare_nanogpt_data(checkout: Path, text: Path, python: str) -> Path:
    data = checkout / "data" / "shakespeare_char"
    corpus = data / "input.txt"
    if not corpus.exists():
        shutil.copyfile(text, corpus)
    elif corpus.read_bytes() != text.read_bytes():
        sys.exit(f"{corpus} is not the same text as {text}: remove it or pass that text")
    if not (data / "val.bin").exists():
        timed([python, "prepare.py"], cwd=data)
    return data


def nanogpt_whole_text_loss(checkout: Path, out_dir: Path, data: Path, block: int = 64) -> float:
    """The saved nanoGPT model's mean next-character loss over the whole validation text."""
    import numpy as np
    import torch

    sys.path.insert(0, str(checkout))
    from model import GPT, GPTConfig  # nanoGPT's own model.py

    checkpoint = torch.load(out_dir / "ckpt.pt", map_location="cpu", weights_only=False)
    model = GPT(GPTConfig(**checkpoint["model_args"]))
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in checkpoint["model"].items()})
    model.eval()
    ids = np.fromfile(data / "val.bin", dtype=np.uint16).astype(np.int64)
    starts = range(0, len(ids) - 1 - block + 1, block)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(starts), 64):
            rows = [ids[s : s + block + 1] for s in starts[i : i + 64]]
            batch = torch.from_numpy(np.stack(rows))
            _, loss = model(batch[:, :-1].contiguous(), batch[:, 1:].contiguous())
            total += loss.item() * batch[:, 1:].numel()
            count += batch[:, 1:].numel()
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", type=Path, required=True, help="a nanoGPT checkout")
    parser.add_argument("--text", type=Path, required=True, help="tiny-shakespeare (input.txt)")
    parser.add_argument("--nanogpt-python", default=sys.executable, help="the Python that runs nanoGPT")
    parser.add_argument("--seqlab", default="shakespeare-char-quick,shakespeare-char-77s:700",
                        help="seqlab's runs: recipes, each RECIPE or RECIPE:STEPS, separated by commas")
    args = parser.parse_args()
    checkout, text = args.nanogpt.resolve(), args.text.resolve()
    data = prepare_nanogpt_data(checkout, text, args.nanogpt_python)

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp) / "nanogpt"
        nano = [args.nanogpt_python, "train.py", *NANOGPT_CPU, "--always_save_checkpoint=True",
                f"--out_dir={out_dir}"]
        nano_seconds, log = timed(nano, cwd=checkout)
        evals = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", log)
        nano_step, _, nano_estimate = evals[-1]
        nano_loss = nanogpt_whole_text_loss(checkout, out_dir, data)

        rows = []
        for i, spec in enumerate(filter(None, map(str.strip, args.seqlab.split(",")))):
            recipe, _, steps = spec.partition(":")
            flags = ["--config", recipe, *(["--max-steps", steps, "--max-time", "0"] if steps else [])]
            run = Path(tmp) / f"seqlab{i}"
            seconds, _ = timed([str(Path(sys.executable).with_name("seqlab")), "train", "lm", "--text", str(text),
                                *flags, "--out", str(run)])
            rows.append((flags, seconds, json.loads((run / "metrics.json").read_text())))

    print(f"nanoGPT: {' '.join(['python', 'train.py', *NANOGPT_CPU])}")
    print("| | wall time (whole command) | steps | val loss, whole text | nanoGPT's printed estimate | "
          "wall time / nanoGPT's (truncated) |")
    print("|---|---|---|---|---|---|")
    print(f"| nanoGPT | {down(nano_seconds, 1)} s | {nano_step} | {down(nano_loss, 4)} | {nano_estimate} | 1 |")
    for flags, seconds, metrics in rows:
        reached = metrics["val_loss"] <= nano_loss
        ratio = seconds / nano_seconds
        print(f"| seqlab `--text {text.name} {' '.join(flags)}` | {down(seconds, 1)} s (training "
              f"{metrics['train_seconds']} s) | {metrics['steps']} | {down(metrics['val_loss'], 4)} | | "
              f"{down(ratio, 3)}: {'reached' if reached else 'did NOT reach'} nanoGPT's loss; target <= 1/3 "
              f"{'met' if reached and ratio <= 1 / 3 else 'missed'} |")
    assert math.isfinite(nano_loss)


if __name__ == "__main__":
    main()
