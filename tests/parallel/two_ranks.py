"""Two spawned processes for a test's own gloo job, with a deadline, so that a hung collective fails the
test instead of stalling the suite."""

import time

import pytest
import torch.multiprocessing as mp


def run_two_ranks(worker, args: tuple, what: str, deadline_s: float) -> None:
    """``worker(rank, *args)`` on ranks 0 and 1; fails the test if they have not finished in ``deadline_s``."""
    context = mp.start_processes(worker, args=args, nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + deadline_s
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"{what} on 2 gloo ranks did not finish in {deadline_s} s (hang)")
