"""Trainer.resume when ``last`` cannot be read: from its previous version, else from ``best`` with a fresh
optimizer; never from ``best`` alone; and a clear refusal for a ``last`` without optimizer state."""

import shutil

import pytest
import torch
from safetensors.torch import load_file

from seqlab.errors import UserError

from test_engine import make_trainer  # pytest puts this directory on sys.path

SETTINGS = dict(max_steps=8, eval_every=4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run: ``best`` (weights and state, no optimizer) and ``last`` (step 8, with optimizer)."""
    run = tmp_path_factory.mktemp("trained")
    make_trainer(run, **SETTINGS).fit()
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def damage(directory):
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def saved_weights(directory):
    return {k: v.clone() for k, v in load_file(str(directory / "model.safetensors")).items()}  # not the mapped file


def same_weights(model, expected):
    state = model.state_dict()
    return all(torch.equal(state[k], expected[k]) for k in expected)


def saved_step(directory):
    import json

    return json.loads((directory / "state.json").read_text())["progress"]["step"]


def test_a_damaged_last_falls_back_to_best_with_a_fresh_optimizer(run, capsys):
    checkpoints = run / "checkpoints"
    best = saved_weights(checkpoints / "best")
    trainer = make_trainer(run, **SETTINGS)
    trainer.fit(resume=True)  # the optimizer now holds Adam's moments
    assert trainer.optimizer.state
    capsys.readouterr()
    damage(checkpoints / "last")
    assert trainer.resume()
    assert same_weights(trainer.model, best)
    assert not trainer.optimizer.state  # best holds no optimizer state: Adam starts again
    assert trainer.progress.step == saved_step(checkpoints / "best")
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {checkpoints / 'last' / 'model.safetensors'} is damaged (")
    assert err.endswith(f"; resuming from {checkpoints / 'best'} instead with a fresh optimizer state\n")
    assert err.count("\n") == 1


def test_a_damaged_last_falls_back_to_the_previous_version_of_best(run, capsys):
    """Killed between best's two renames: ``.best.old`` is best."""
    checkpoints = run / "checkpoints"
    (checkpoints / "best").rename(checkpoints / ".best.old")
    best = saved_weights(checkpoints / ".best.old")
    damage(checkpoints / "last")
    trainer = make_trainer(run, **SETTINGS)
    assert trainer.resume()
    assert same_weights(trainer.model, best) and not trainer.optimizer.state
    assert capsys.readouterr().err.endswith(
        f"resuming from {checkpoints / '.best.old'} instead with a fresh optimizer state\n")


def test_a_damaged_last_falls_back_to_its_previous_version_with_its_optimizer(run, capsys):
    checkpoints = run / "checkpoints"
    shutil.copytree(checkpoints / "last", checkpoints / ".last.old")
    last = saved_weights(checkpoints / "last")
    damage(checkpoints / "last")
    trainer = make_trainer(run, **SETTINGS)
    assert trainer.resume()
    assert same_weights(trainer.model, last) and trainer.optimizer.state  # its own Adam moments
    assert trainer.progress.step == 8
    err = capsys.readouterr().err
    assert err.endswith(f"; resuming from {checkpoints / '.last.old'} instead\n"), err  # no "fresh optimizer"
    assert err.count("\n") == 1


@pytest.mark.parametrize("name", ["best", ".best.old"])
def test_a_run_with_best_but_no_last_starts_again(run, name):
    """Without a ``last`` the run was killed before its first was written: it starts again from step 0."""
    checkpoints = run / "checkpoints"
    shutil.rmtree(checkpoints / "last")
    if name != "best":
        (checkpoints / "best").rename(checkpoints / name)
    trainer = make_trainer(run, **SETTINGS)
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer.resume() is False
    assert trainer.progress.step == 0 and same_weights(trainer.model, initial)


def test_a_last_without_optimizer_state_is_refused(run):
    last = run / "checkpoints" / "last"
    for path in last.glob("training_state*"):
        path.unlink()
    with pytest.raises(UserError, match=r"last holds no optimizer state \(written by an older seqlab\); "
                                        r"start a new run"):
        make_trainer(run, **SETTINGS).resume()


def test_resuming_after_the_first_step_keeps_adams_moments_and_at_step_0_has_none(tmp_path):
    """Step 1's checkpoint holds Adam's state after one update, which resume restores; step 0's (before
    any update) leaves the optimizer empty, as a fresh run's is."""
    make_trainer(tmp_path, max_steps=8, stop_at_step=1, eval_every=100).fit()
    trainer = make_trainer(tmp_path, max_steps=8)
    assert trainer.resume() and trainer.progress.step == 1
    steps = {float(state["step"]) for state in trainer.optimizer.state.values()}
    assert steps == {1.0}

    fresh = tmp_path / "fresh"
    make_trainer(fresh).save("last")  # a checkpoint of step 0
    trainer = make_trainer(fresh)
    assert trainer.resume() and trainer.progress.step == 0
    assert not trainer.optimizer.state
