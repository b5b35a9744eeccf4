"""TrainConfig's own checks: each bound is where its message says, inclusive or not, and a refused value is a
ValueError that names the setting and the value."""

import re

import numpy as np
import pytest

from seqlab.train.config import TrainConfig

MAX_SEED = 2**32 - 1  # numpy's seed bound: np.random.seed accepts [0, 2**32 - 1]


@pytest.mark.parametrize("name", ["max_steps", "batch_size", "grad_accum", "eval_every", "log_every"])
def test_counts_must_be_at_least_one(name):
    assert getattr(TrainConfig(**{name: 1}), name) == 1
    with pytest.raises(ValueError, match=rf"^train\.{name} must be at least 1; got 0$"):
        TrainConfig(**{name: 0})


@pytest.mark.parametrize("name, limit, text", [("lr", 10.0, "10"), ("eps", 1.0, "1"), ("weight_decay", 10.0, "10"),
                                               ("clip_norm", 1e6, "1e\\+06"), ("max_time", 1e8, "1e\\+08")])
def test_bounded_numbers_take_both_ends_of_their_range_and_nothing_past_them(name, limit, text):
    assert getattr(TrainConfig(**{name: 0.0}), name) == 0.0
    assert getattr(TrainConfig(**{name: limit}), name) == limit
    for bad in (-0.5, limit * 2, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=rf"^train\.{name} must be a number in \[0, {text}\]; got "):
            TrainConfig(**{name: bad})


@pytest.mark.parametrize("name", ["max_steps", "warmup_steps", "stop_at_step", "eval_every", "log_every"])
def test_step_counts_stop_at_a_trillion(name):
    assert getattr(TrainConfig(**{name: 10**12}), name) == 10**12
    with pytest.raises(ValueError, match=rf"^train\.{name} must be at most 1e\+12 steps; got 1000000000001$"):
        TrainConfig(**{name: 10**12 + 1})


def test_betas_and_label_smoothing_are_in_the_half_open_unit_interval():
    assert TrainConfig(betas=(0.0, 0.0)).betas == (0.0, 0.0)
    assert TrainConfig(label_smoothing=0.0).label_smoothing == 0.0
    for betas in ((1.0, 0.9), (0.9, 1.0), (-0.1, 0.9)):
        with pytest.raises(ValueError, match=re.escape(f"train.betas must both be in [0, 1); got {list(betas)}")):
            TrainConfig(betas=betas)
    for smoothing in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=re.escape(f"train.label_smoothing must be in [0, 1); got {smoothing}")):
            TrainConfig(label_smoothing=smoothing)


@pytest.mark.parametrize("name", ["warmup_steps", "patience", "stop_at_step"])
def test_warmup_patience_and_stop_step_may_be_zero_but_not_negative(name):
    assert getattr(TrainConfig(**{name: 0}), name) == 0
    message = "^train.warmup_steps, train.patience and train.stop_at_step must not be negative$"
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{name: -1})


def test_the_seed_takes_numpys_whole_range():
    np.random.RandomState(MAX_SEED)
    with pytest.raises(ValueError):
        np.random.RandomState(MAX_SEED + 1)
    assert TrainConfig(seed=0).seed == 0 and TrainConfig(seed=MAX_SEED).seed == MAX_SEED
    for seed in (-1, MAX_SEED + 1):
        with pytest.raises(ValueError, match=rf"^train\.seed must be in \[0, {MAX_SEED}\]; got {seed}$"):
            TrainConfig(seed=seed)
