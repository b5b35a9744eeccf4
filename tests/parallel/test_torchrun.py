"""seqlab's torchrun launcher ends a failed job as one process would: one line, the failed rank's
status (the job itself: tests/parallel/test_train_lm_parallel.py)."""

from types import SimpleNamespace

import pytest

from seqlab.parallel import torchrun


def failure(exitcode: int, timestamp: int = 100) -> SimpleNamespace:
    return SimpleNamespace(exitcode=exitcode, timestamp=timestamp)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(torchrun.ERRORS_ENV, str(tmp_path))
    return tmp_path


def test_a_rank_reports_only_under_the_launcher(tmp_path, monkeypatch):
    monkeypatch.delenv(torchrun.ERRORS_ENV, raising=False)
    assert torchrun.report("seqlab train: error: x\n") is False
    monkeypatch.setenv(torchrun.ERRORS_ENV, str(tmp_path / "gone"))  # a launcher that already cleaned up
    assert torchrun.report("seqlab train: error: x\n") is False


def test_the_first_line_left_is_printed_once_with_its_ranks_status(folder, monkeypatch, capsys):
    for rank, text in ((1, "first\n"), (0, "second\n"), (1, "third\n")):
        monkeypatch.setenv("RANK", str(rank))
        assert torchrun.report(text)
    # rank 1 said why first; rank 0 ended with 1 after its peer went away
    assert torchrun._ended({0: failure(1, 99), 1: failure(2)}, folder) == 2
    assert capsys.readouterr().err == "first\n"


def test_a_rank_killed_by_a_signal_is_named(folder, capsys):
    assert torchrun._ended({0: failure(1, 99), 1: failure(-9)}, folder) == 137
    assert "rank 1 was killed by SIGKILL" in capsys.readouterr().err


def test_with_no_line_and_no_signal_the_first_failures_status_is_kept(folder, capsys):
    assert torchrun._ended({0: failure(3, 101), 1: failure(4, 100)}, folder) == 4
    assert capsys.readouterr().err == ""
