"""How a run shows its progress: tqdm's bar on a terminal; elsewhere (a log file, CI, ``nohup``) a line
every ``LINE_SECONDS`` — step, training loss, rate and time left — so that a log says how far a run got
and when it will end, without a bar's carriage returns."""

from __future__ import annotations

import sys
from typing import Callable, TextIO

from tqdm import tqdm

LINE_SECONDS = 30.0


class ProgressDisplay:
    """A bar when ``file`` (standard error by default) is a terminal, else a line every ``every`` seconds
    of ``clock``; nothing when not ``enabled`` (progress turned off, or a rank other than the main one)."""

    def __init__(self, total: int, initial: int, enabled: bool, clock: Callable[[], float],
                 file: TextIO | None = None, every: float = LINE_SECONDS) -> None:
        self.file = sys.stderr if file is None else file
        terminal = bool(getattr(self.file, "isatty", lambda: False)())
        self.lines = enabled and not terminal
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False,
                        file=self.file, disable=not (enabled and terminal))
        self.clock, self.every = clock, every
        self._start, self._start_step = clock(), initial  # of the current line's window
        self._loss, self._tokens = 0.0, 0

    def update(self, step: int, total: int, loss_sum: float, tokens: int) -> None:
        """After optimizer step ``step`` of ``total`` (which a time budget may move), whose summed loss
        over ``tokens`` items was ``loss_sum``."""
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(1)
        if not self.lines:
            return
        self._loss, self._tokens = self._loss + loss_sum, self._tokens + tokens
        now = self.clock()
        seconds = now - self._start
        if seconds < self.every:
            return
        rate = (step - self._start_step) / seconds  # steps a second over the window
        speed = f"{rate:.3g} steps/s" if rate >= 1 else f"{1 / rate:.3g} s/step"
        left = tqdm.format_interval((total - step) / rate)
        self.file.write(f"step {step}/{total}  loss {self._loss / max(self._tokens, 1):.4g}  {speed}  ETA {left}\n")
        self.file.flush()
        self._start, self._start_step, self._loss, self._tokens = now, step, 0.0, 0

    def set_postfix(self, **values: str) -> None:
        self.bar.set_postfix(**values)

    def close(self) -> None:
        self.bar.close()
