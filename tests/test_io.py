"""seqlab.io: the check that a new output file can be written, made before any work; reading a run's
metrics.jsonl."""

import os
import stat
import tempfile

import pytest

from seqlab.errors import UserError
from seqlab.io import check_new_file, read_metrics


def test_a_new_file_in_a_writable_folder_passes_and_leaves_nothing(tmp_path):
    check_new_file(tmp_path / "forecast.csv", "--out")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_an_existing_file_or_a_missing_folder_is_refused(tmp_path):
    (tmp_path / "mine.csv").write_text("the user's")
    with pytest.raises(UserError, match="mine.csv exists; give --out a new file name"):
        check_new_file(tmp_path / "mine.csv", "--out")
    with pytest.raises(UserError, match="the folder .*nowhere does not exist"):
        check_new_file(tmp_path / "nowhere" / "x.png", "--plot")


def test_a_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch):
    # Permission bits alone do not tell (root ignores them; immutable folders and read-only mounts
    # keep them): a file is made and removed there. Here the folder refuses it as one of those would.
    folder = tmp_path / "locked"
    folder.mkdir()
    made = tempfile.NamedTemporaryFile

    def refusing(*args, **kwargs):
        if str(kwargs.get("dir")) == str(folder):
            raise PermissionError(1, "Operation not permitted")
        return made(*args, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refusing)
    with pytest.raises(UserError, match=r"^--plot .*x.png: cannot write in .*locked \(Operation not permitted\)$"):
        check_new_file(folder / "x.png", "--plot")
    check_new_file(tmp_path / "x.png", "--plot")  # elsewhere: written as before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a folder without write permission")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(UserError, match="cannot write in"):
            check_new_file(folder / "x.csv", "--out")
    finally:
        folder.chmod(stat.S_IRWXU)


def test_metrics_rows_skip_a_line_cut_short_by_a_crash(tmp_path):
    """The explorer's curves and the curves picture read the rows of a run that crashed mid-write."""
    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 1, "loss": 2.5}\n[3]\n{"step": 2, "loss": 2.25}\n{"step": 3, "val_lo\xff')
    assert list(read_metrics(tmp_path)) == [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.25}]
    assert list(read_metrics(tmp_path / "nothing")) == []
