"""Fixtures shared by the training tests."""

import signal

import pytest


@pytest.fixture
def handlers_from_before_the_run():
    """SIGINT and SIGTERM handlers of the calling program that fail the test if the run leaves a signal to
    them: a one-process run must take both itself while it trains."""

    def not_the_runs(signum, frame):
        raise AssertionError(f"signal {signum} reached the handler installed before the run")

    previous = {s: signal.signal(s, not_the_runs) for s in (signal.SIGINT, signal.SIGTERM)}
    yield not_the_runs
    for s, handler in previous.items():
        signal.signal(s, handler)
