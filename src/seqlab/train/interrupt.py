"""Ctrl-C (SIGINT) and SIGTERM during training: noted, and acted on between two steps, where the model,
optimizer, schedule, random generators and data position agree, so that the checkpoint written there
resumes exactly. A second signal stops at once (a step that never ends, say)."""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """While open, SIGINT and SIGTERM set ``requested`` instead of raising; the previous handlers are back
    after :meth:`close`. Signal handlers belong to the main thread: elsewhere, or when not ``enabled``,
    nothing changes and ``requested`` stays False."""

    def __init__(self, enabled: bool = True) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}
        if enabled and threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._note)

    def _note(self, signum, frame) -> None:
        if self.requested:  # the second time: now
            raise KeyboardInterrupt
        self.requested = True

    def close(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
