"""torchrun without its own report: ``python -m seqlab.parallel.torchrun [torchrun's arguments]`` starts
the ranks as ``python -m torch.distributed.run`` does, and ends with the exit status of the rank that
failed first.

torchrun ends a failed job with its own traceback (``ChildFailedError``) and status 1, printed after
the rank's one-line error; with ``--nproc``, bad input must end as it does on one process: that one
line and status 2. The ranks print what they print (a traceback too, for a bug); this launcher adds
nothing to it.
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # the agent's report of each rank's failure and of the ranks it stopped: the ranks already said why
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(parse_args(sys.argv[1:] if argv is None else argv))
    except ChildFailedError as error:
        _, failure = error.get_first_failure()
        code = failure.exitcode
        return code if code > 0 else 128 - code  # a rank killed by signal N: 128 + N, as a shell says
    except SignalException as error:  # Ctrl-C or SIGTERM to the launcher: the ranks were stopped
        return 128 + int(error.sigval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
