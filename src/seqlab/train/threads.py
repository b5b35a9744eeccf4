"""How many threads a run's CPU kernels use, set once for torch and for NumPy's BLAS.

By default a process takes the cores it may run on (its CPU affinity, which containers and ``taskset``
narrow) shared out among the processes of a multi-process job on this machine (torchrun's
``LOCAL_WORLD_SIZE``): two ranks on 16 cores get 8 threads each instead of 16 each, which would make
them fight over the cores. A machine whose load already fills its cores makes every step slower
whatever the setting, hence the warning.
"""

from __future__ import annotations

import os
import sys

import torch
from threadpoolctl import threadpool_limits

from ..errors import UserError

MAX_THREADS = 1024  # a bound on --threads: far more would only ask the OS for stacks it may not have


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def local_ranks() -> int:
    """Processes of this job on this machine: torchrun's LOCAL_WORLD_SIZE, 1 outside torchrun."""
    return max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)


def default_threads(cores: int | None = None, ranks: int | None = None) -> int:
    """``cores`` (default: :func:`available_cores`) divided among ``ranks`` (default: :func:`local_ranks`),
    at least one thread each."""
    cores = available_cores() if cores is None else cores
    ranks = local_ranks() if ranks is None else ranks
    return max(cores // max(ranks, 1), 1)


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads (default: :func:`default_threads`) for torch's intra-op kernels, its inter-op
    pool and NumPy's BLAS / OpenMP pools (through threadpoolctl); returns ``n``. Call it once, early:
    torch fixes its inter-op pool at the first parallel work, after which only the others change."""
    n = min(default_threads(), MAX_THREADS) if n is None else n
    if not 1 <= n <= MAX_THREADS:
        raise UserError(f"--threads must be between 1 and {MAX_THREADS}; got {n} (this machine has "
                        f"{os.cpu_count()} cores; more threads than cores only slow a run down)")
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # the inter-op pool has already started; it then keeps its size
        pass
    threadpool_limits(limits=n)  # applied now, for the rest of the process (not used as a context)
    return n


def busy_warning(cores: int | None = None, load: float | None = None) -> str | None:
    """One line when the 1-minute load average already uses the cores, else None."""
    cores = available_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average on this system
            return None
    if load < cores:
        return None
    return (f"warning: the machine is busy (1-minute load average {load:.1f} on {cores} cores); "
            f"steps will be slower and their timings unreliable")


def warn_if_busy(stream=None) -> None:
    """Print :func:`busy_warning`, if any, on stderr."""
    message = busy_warning()
    if message:
        print(message, file=stream or sys.stderr)
