"""``seqlab demo`` — the main job: learn to read dates written in 16 locales and write them as ISO 8601.

The corpus is generated at run time (see :mod:`seqlab.data.dates`); test dates never occur in
training, so exact match on them measures generalisation, not memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..config import load_config
from ..data import dates
from ..tables import display_width, pad
from . import run_dir as runs
from .translate import TranslateConfig, train

RECIPE = "demo-dates"
N_TRAIN, N_VALID, N_TEST = 200_000, 1_000, 5_000


def make_splits(seed: int, n_train: int = N_TRAIN, n_test: int = N_TEST) -> dict[str, tuple[list[str], list[str]]]:
    """Train, validation and test pairs on three disjoint sets of days."""
    train_days, test_days = dates.split_dates(seed)
    n_valid = len(train_days) // 20
    valid_days, train_days = train_days[:n_valid], train_days[n_valid:]
    return {"train": dates.date_pairs(train_days, n_train, seed + 1),
            "valid": dates.date_pairs(valid_days, N_VALID, seed + 2),
            "test": dates.date_pairs(test_days, n_test, seed + 3)}


def run_demo(out: Path, overwrite: bool, overrides: list[str], log=print, n_train: int = N_TRAIN,
             n_test: int = N_TEST) -> dict[str, Any]:
    config = load_config(TranslateConfig, RECIPE, overrides)
    runs.check_not_paused(config, "seqlab demo")
    started = time.perf_counter()
    with runs.filling(runs.create_run_dir(out, overwrite)) as run:  # a failure or Ctrl-C leaves no half-made demo
        splits = make_splits(config.train.seed, n_train, n_test)
        log(f"data: {len(dates.styles())} date styles in {len(dates.LOCALES)} locales, "
            f"{dates.FIRST_DAY.year}-{dates.LAST_DAY.year}; {n_train:,} training pairs, "
            f"{n_test:,} test pairs on {len(set(splits['test'][1])):,} dates never seen in training "
            f"({time.perf_counter() - started:.1f} s)")
        _, result = train(config, run, splits, log=log)
    metrics = result["metrics"]
    log(f"\nheld-out exact match: {metrics['exact_match']:.2%}   BLEU: {metrics['bleu']:.2f}   "
        f"trained {metrics['train_seconds']:.0f} s ({metrics['steps']} steps)")
    shown = list(zip(result["sources"], result["hypotheses"], result["references"]))[:5]
    width = max(display_width(source) for source, _, _ in shown)  # a Han or Hangul character: two columns
    for source, hypothesis, reference in shown:
        mark = "✓" if hypothesis == reference else f"✗ (expected {reference})"
        log(f"  {pad(source, width)} -> {hypothesis}  {mark}")
    example = next(s for s in result["sources"] if s.isascii())  # train drew cross_attention.png for it
    log(f"\nrun directory: {run}  (metrics.json, checkpoints/, curves.png, cross_attention.png)")
    log(f'try: seqlab translate {run} "{example}"')
    return metrics
