"""``seqlab train TASK --nproc N``: start N ranks of the same command under torchrun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import UserError


def launch_torchrun(args, task, config, resume_run: Path | None) -> None:
    """``--nproc N``: check what can be checked here, then start N ranks of this same command under
    torchrun (on one machine) and wait for them."""
    from ..config import input_paths
    from ..tasks import run_dir as runs

    n = args.nproc
    if n < 1:
        raise UserError(f"--nproc must be at least 1; got {n}")
    task.check_processes(config, n)
    device = config.train.device
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"train.device is {device!r} but this machine has no CUDA device; "
                            f"--device cpu trains the {n} processes on the CPU")
        index = device.partition(":")[2]
        if index.isdigit() and int(index) >= torch.cuda.device_count():
            raise UserError(f"train.device is {device!r} but this machine has {torch.cuda.device_count()} "
                            f"CUDA device(s)")
    argv = list(args.argv)  # the same command for every rank, without --nproc (or its abbreviation)
    i = next(i for i, a in enumerate(argv) if a.startswith("--n") and "--nproc".startswith(a.split("=")[0]))
    del argv[i : i + (1 if "=" in argv[i] else 2)]
    if resume_run is None:
        out = args.out or runs.default_run_dir(args.task)
        runs.check_run_dir(out, args.overwrite, input_paths(config), resumable=not task.no_resume)
        if args.out is None:
            argv += ["--out", str(out)]
    # torchrun's own launcher, ending with the failed rank's status and no traceback of its own
    command = [sys.executable, "-m", "seqlab.parallel.torchrun", "--standalone", "--nproc_per_node", str(n),
               "-m", "seqlab", *argv]
    before = identity(Path(out)) if resume_run is None else None
    # torchrun in a process group of its own (its ranks lead sessions of their own): a Ctrl-C in the terminal,
    # or a SIGINT or SIGTERM sent to this process alone, reaches it once, from here; it tells the ranks, which
    # save and say how they ended, and it cleans up. (Killed after a quarter second, as subprocess.run does
    # on KeyboardInterrupt, it left its ranks running and its folder behind.)
    # OMP_NUM_THREADS=1 is what torchrun sets when it is unset, with a four-line banner saying so
    process = subprocess.Popen(command, process_group=0, env={"OMP_NUM_THREADS": "1", **os.environ})
    while (code := wait(process)) is None:
        process.send_signal(signal.SIGINT)  # again on a second Ctrl-C: torchrun then stops waiting for the ranks
    if code and resume_run is None and code not in (130, 143):  # failed, not interrupted (Ctrl-C, SIGTERM)
        discard_if_made(Path(out), before)
    if code:
        raise SystemExit(code)


def wait(process: subprocess.Popen) -> int | None:
    """The process's exit status, or None when this process is interrupted while it waits."""
    try:
        return process.wait()
    except KeyboardInterrupt:
        return None


def identity(path: Path) -> tuple[int, int] | None:
    """The directory entry's file (device, inode), or None when there is none."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def discard_if_made(run: Path, before: tuple[int, int] | None) -> None:
    """A fresh run that failed leaves nothing half-made, as on one process (``runs.discard_unfinished``,
    which also puts back a run it replaced with --overwrite): rank 0 does so when it fails itself, but
    when another rank fails first torchrun stops rank 0 mid-step. Only a directory this job made goes:
    one that is not the file ``before`` named (an old run the ranks never reached, or one rank 0 put
    back, stays)."""
    from ..tasks import run_dir as runs

    if (now := identity(run)) is not None and now != before:
        runs.discard_unfinished(run)
