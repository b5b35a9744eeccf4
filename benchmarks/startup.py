"""How long a seqlab command takes before it does anything: `python -m seqlab --help` and
`python -m seqlab train lm --help` in fresh processes (the interpreter, torch, and every task's flags),
against `python -c "import torch"` (the floor) and, with --baseline SRC, the same commands run from another
checkout's `src/` (an earlier commit: `git worktree add /tmp/old COMMIT`). The runs alternate between the
variants, so a busy moment costs each alike; prints the median wall time of each.

    .venv/bin/python benchmarks/startup.py [--repeats 9] [--baseline /tmp/old/src]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
COMMANDS = {"import torch": ["-c", "import torch"], "seqlab --help": ["-m", "seqlab", "--help"],
            "seqlab train lm --help": ["-m", "seqlab", "train", "lm", "--help"]}


def timed(args: list[str], src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}  # ahead of the installed (editable) seqlab
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--baseline", type=Path, help="another checkout's src/ folder, timed alongside")
    args = parser.parse_args()
    variants = {"this checkout": SRC, **({"baseline": args.baseline} if args.baseline else {})}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            for variant, src in variants.items():
                if name == "import torch" and variant != "this checkout":
                    continue
                times.setdefault((name, variant), []).append(timed(command, src))
    for (name, variant), values in times.items():
        print(f"{name:24s} {variant:14s} median {statistics.median(values):.3f} s "
              f"(min {min(values):.3f}, max {max(values):.3f}, n {len(values)})")


if __name__ == "__main__":
    main()
