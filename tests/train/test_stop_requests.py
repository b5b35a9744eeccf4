"""StopRequests: by default it takes over SIGINT and SIGTERM in the main thread and gives the previous
handlers back on close; a first signal is noted, a second stops at once."""

import signal

import pytest

from seqlab.train.interrupt import StopRequests


def test_by_default_both_signals_are_noted_and_the_old_handlers_come_back():
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    stops = StopRequests()
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            assert signal.getsignal(number) == stops._note
        assert stops.requested is False  # a bool, False until a signal comes
        signal.raise_signal(signal.SIGTERM)
        assert stops.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        stops.close()
    assert {number: signal.getsignal(number) for number in before} == before


def test_disabled_changes_nothing():
    before = signal.getsignal(signal.SIGINT)
    stops = StopRequests(enabled=False)
    assert signal.getsignal(signal.SIGINT) is before and stops.requested is False
    stops.close()
