"""``python kill_at.py MOMENT seqlab-arguments...``: run the seqlab command line and SIGKILL this very
process at MOMENT, as a power cut or the out-of-memory killer would — no handler runs, no file is closed:

    step:N          as training step N begins (its batch drawn by nothing yet)
    staging:NAME:K  while the K-th checkpoint NAME (best, last) is being written: its weights are in
                    checkpoints/.NAME.staging, its state not yet
    swap:NAME:K     between the two renames that swap the K-th checkpoint NAME in (only .NAME.old exists)

The moments are counted in the process, so a kill falls where it is asked to, on any machine's speed."""

import os
import signal
import sys
from pathlib import Path

from seqlab.cli.main import main
from seqlab.train import checkpoint, loop


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(moment: str) -> None:
    kind, *where = moment.split(":")
    seen: dict[str, int] = {}

    def due(name: str) -> bool:
        seen[name] = seen.get(name, 0) + 1
        return name == where[0] and seen[name] == int(where[1])

    if kind == "step":
        real_step = loop.Trainer._step

        def step(self):
            if self.progress.step + 1 == int(where[0]):
                die()
            return real_step(self)

        loop.Trainer._step = step
    elif kind == "staging":
        real_write = checkpoint.write_checkpoint

        def write_checkpoint(staging: Path, model, state) -> None:
            if due(staging.name.removeprefix(".").removesuffix(".staging")):
                checkpoint.save_pretrained(model, staging)
                die()
            real_write(staging, model, state)

        checkpoint.write_checkpoint = write_checkpoint
    elif kind == "swap":
        real_swap = checkpoint.swap_in

        def swap_in(staging: Path, directory: Path) -> None:
            if due(Path(directory).name) and Path(directory).exists():
                os.replace(directory, Path(directory).with_name(f".{Path(directory).name}.old"))
                die()
            real_swap(staging, directory)

        checkpoint.swap_in = swap_in
    else:
        raise SystemExit(f"unknown moment {moment!r}")


if __name__ == "__main__":
    arm(sys.argv[1])
    raise SystemExit(main(sys.argv[2:]))
