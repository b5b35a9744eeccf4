"""torchrun without its own report: ``python -m seqlab.parallel.torchrun [torchrun's arguments]`` starts
the ranks as ``python -m torch.distributed.run`` does, and ends as one process would: the line of the
rank that found bad input, and its exit status.

torchrun ends a failed job with its own traceback (``ChildFailedError``) and status 1, printed after
the rank's one-line error; with ``--nproc``, bad input must end as it does on one process: that one
line and status 2. A rank that finds bad input leaves its line here (``report``) rather than printing
it: any rank may be the one (each reads its own shard), several may find the same, and the others are
stopped mid-step. This launcher prints the first line left, once. A rank's traceback (a bug) is the
rank's own output; this launcher adds nothing to it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ERRORS_ENV = "SEQLAB_RANK_ERRORS"  # the folder where the ranks leave their lines for this launcher


def report(line: str) -> bool:
    """In a rank this launcher started: leave ``line`` (its error, one line) for the launcher to print,
    and True; elsewhere False, and the caller prints it."""
    folder = os.environ.get(ERRORS_ENV)
    if not folder or not Path(folder).is_dir():
        return False
    name = f"{time.time_ns():020d}-rank{os.environ.get('RANK', '0')}"  # the names sort in time order
    partial = Path(folder) / f".{name}"
    partial.write_text(line, encoding="utf-8")
    partial.rename(Path(folder) / name)  # whole or absent: the launcher never reads half a line
    return True


def _ended(failures: dict[int, Any], folder: Path) -> int:
    """Print the first line a rank left, and return the exit status the job ends with: that rank's, or
    for no line a rank killed by a signal (128 + N, as a shell says, and a line naming it), or the first
    failure's."""
    lines = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if lines:
        sys.stderr.write(lines[0].read_text(encoding="utf-8"))
        rank = int(lines[0].name.rpartition("-rank")[2])
        failure = failures.get(rank)  # the failures by global rank, the RANK each rank was given
        return failure.exitcode if failure and failure.exitcode > 0 else 2
    killed = sorted((f.timestamp, rank, -f.exitcode) for rank, f in failures.items() if f.exitcode < 0)
    if killed:
        _, rank, number = killed[0]
        why = " (what the kernel's out-of-memory killer sends)" if number == signal.SIGKILL else ""
        sys.stderr.write(f"seqlab: rank {rank} was killed by {signal.Signals(number).name}{why}; the job stopped\n")
        return 128 + number
    return min(failures.values(), key=lambda f: f.timestamp).exitcode


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # the agent's report of each rank's failure and of the ranks it stopped: the ranks already said why
    # (each of its modules' loggers has a level of its own, set when it was imported: above)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("torch.distributed.elastic") and isinstance(logger, logging.Logger):
            logger.setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="seqlab-ranks-") as folder:
        os.environ[ERRORS_ENV] = folder  # the ranks inherit it
        try:
            # its per-rank logs in this folder too: by default each job left an empty /tmp/torchelastic_* behind
            run(parse_args(["--log-dir", str(Path(folder) / "logs"), *(sys.argv[1:] if argv is None else argv)]))
        except ChildFailedError as error:
            return _ended(error.failures, Path(folder))
        except SignalException as error:  # Ctrl-C or SIGTERM to the launcher: the ranks were stopped
            return 128 + int(error.sigval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
