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


def test_rank_0_leaves_its_line_before_it_removes_the_run(tmp_path, monkeypatch, capsys):
    """Under --nproc, rank 0 removed the run directory it made, then left its line: another rank still
    reading the directory found it gone and left "... is missing" first, which the launcher printed."""
    from seqlab.cli.main import main
    from seqlab.tasks import run_dir

    folder = tmp_path / "lines"
    folder.mkdir()
    monkeypatch.setenv(torchrun.ERRORS_ENV, str(folder))
    discard = run_dir.discard_unfinished
    seen = []

    def discard_after_the_line(run):
        seen.append(sorted(p.read_text() for p in folder.iterdir() if p.is_file()))
        return discard(run)

    monkeypatch.setattr(run_dir, "discard_unfinished", discard_after_the_line)
    series = tmp_path / "s.csv"
    series.write_text("date,OT\n" + "".join(f"2020-01-01 {h:02d}:00,{h % 5}\n" for h in range(24)))
    out = tmp_path / "run"
    assert main(["train", "forecast", "--csv", str(series), "--model", "linear", "--input-len", "96",
                 "--out", str(out)]) == 2
    line = "seqlab train: error: "
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].startswith(line), seen
    assert sorted(p.read_text() for p in folder.iterdir() if p.is_file()) == seen[0]  # left once, not again
    assert capsys.readouterr().err == "" and not out.exists()
