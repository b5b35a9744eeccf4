"""Run directories replaced with --overwrite: the old run is set aside until the new one stands, also
across a command killed outright (nothing runs its cleanup then)."""

import json

import pytest

from seqlab.errors import UserError
from seqlab.tasks import run_dir as runs


def a_run(path, marker: str):
    path.mkdir()
    runs.write_run(path, "lm", {"marker": marker})
    return path


def marker(path) -> str:
    return json.loads((path / "run.json").read_text())["config"]["marker"]


def killed_while_replacing(path) -> None:
    """--overwrite of ``path`` killed (SIGKILL) after its new run began: the old run set aside, the new
    one half-made, and nothing that put either right."""
    runs.create_run_dir(path, overwrite=True)
    runs.write_run(path, "lm", {"marker": "half-made"})


def test_a_failed_overwrite_puts_the_old_run_back(tmp_path):
    good = a_run(tmp_path / "good", "original")
    with pytest.raises(RuntimeError):
        with runs.filling(runs.create_run_dir(good, overwrite=True)):
            raise RuntimeError("the new run failed")
    assert marker(good) == "original" and not runs.replaced(good).exists()


def test_an_overwrite_after_a_killed_one_never_loses_the_original(tmp_path):
    # the second --overwrite deleted the set-aside original as litter, and its own failure then put
    # back the half-made run of the first: the user's run was gone
    good = a_run(tmp_path / "good", "original")
    killed_while_replacing(good)
    assert marker(runs.replaced(good)) == "original"
    with pytest.raises(RuntimeError):
        with runs.filling(runs.create_run_dir(good, overwrite=True)):
            raise RuntimeError("the new run failed too")
    assert marker(good) == "original" and not runs.replaced(good).exists()
    # and one that succeeds replaces the original, leaving nothing hidden
    killed_while_replacing(good)
    with runs.filling(runs.create_run_dir(good, overwrite=True)):
        runs.write_run(good, "lm", {"marker": "new"})
    assert marker(good) == "new" and not runs.replaced(good).exists()


def test_without_overwrite_after_a_killed_one_the_original_is_back_and_kept(tmp_path):
    good = a_run(tmp_path / "good", "original")
    killed_while_replacing(good)
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        runs.create_run_dir(good, overwrite=False)
    assert marker(good) == "original" and not runs.replaced(good).exists()


def test_a_killed_run_that_reached_a_checkpoint_stands(tmp_path):
    # as a failure after a checkpoint keeps the new run (discard_unfinished), so does a kill
    good = a_run(tmp_path / "good", "original")
    killed_while_replacing(good)
    (good / "checkpoints").mkdir()
    with pytest.raises(UserError, match="already exists"):
        runs.create_run_dir(good, overwrite=False)
    assert marker(good) == "half-made" and (good / "checkpoints").is_dir() and not runs.replaced(good).exists()
