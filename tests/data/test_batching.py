"""Batching: length buckets built as the docstring says (checked against a plain-Python reference of
the documented plan), every example once an epoch, epochs numbered from 0, and exact resume."""

import numpy as np
import torch

from seqlab.data.batching import BucketedBatches, ShuffledBatches, fixed_batches, pad
from seqlab.data.tokenizer import PAD_ID


def _rows(batch) -> list[int]:
    """Each example's source is [100 + i, ...]: its first token names it."""
    return [r - 100 for r in batch["src"][:, 0].tolist()]


def test_pad_is_a_right_padded_long_tensor():
    out = pad([[5, 6, 7], [8]], pad_id=-1)
    assert out.dtype == torch.int64
    assert out.tolist() == [[5, 6, 7], [8, -1, -1]]


def test_buckets_group_examples_by_source_plus_target_length():
    # totals 2, 8, 5, 9 (source + target): sorted, the pairs are {0, 2} and {1, 3}; source - target
    # or source alone would pair them otherwise
    lengths = [(1, 1), (1, 7), (4, 1), (5, 4)]
    sources = [[100 + i] * s for i, (s, _) in enumerate(lengths)]
    targets = [[7] * t for _, t in lengths]
    batches = BucketedBatches(sources, targets, batch_size=2, seed=0)
    assert len(batches) == 2
    assert sorted(sorted(_rows(next(batches))) for _ in range(2)) == [[0, 2], [1, 3]]


def _reference_plan(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The documented plan in plain Python: a seeded permutation, cut in spans of 50 batches, each span
    sorted by length with ties kept in the permutation's order (Python's sort is stable)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(lengths)).tolist()
    span = batch_size * 50
    batches = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return batches


def test_buckets_keep_the_random_order_among_equal_lengths_and_span_several_chunks():
    n, batch_size, seed = 130, 2, 4  # spans of 100 examples: two chunks
    lengths = [1 + i % 2 for i in range(n)]  # many ties: an unstable sort would reorder them
    sources = [[100 + i] * (lengths[i] - 1) + [100 + i] for i in range(n)]
    targets = [[7]] * n
    batches = BucketedBatches(sources, targets, batch_size, seed)
    assert len(batches) == 65
    for epoch in range(2):
        got = sorted(_rows(next(batches)) for _ in range(len(batches)))
        assert got == sorted(_reference_plan(lengths, batch_size, seed, epoch))
        assert batches.state_dict() == {"seed": seed, "epoch": epoch, "index": 65}


def test_bucketed_epochs_count_from_zero_and_resume_at_an_epoch_start():
    sources = [[100 + i] * (1 + i % 3) for i in range(9)]
    batches = BucketedBatches(sources, sources, batch_size=2, seed=7)
    assert batches.state_dict() == {"seed": 7, "epoch": 0, "index": 0}
    first_epoch = [_rows(next(batches)) for _ in range(len(batches))]
    assert sorted(r for rows in first_epoch for r in rows) == list(range(9))
    second = _rows(next(batches))
    assert batches.state_dict() == {"seed": 7, "epoch": 1, "index": 1}
    rest = [_rows(next(batches)) for _ in range(len(batches) - 1)]
    assert sorted(r for rows in [second, *rest] for r in rows) == list(range(9))  # every example, once

    fresh = BucketedBatches(sources, sources, batch_size=2, seed=7)
    fresh.load_state_dict({"seed": 7, "epoch": 0, "index": 0})
    assert [_rows(next(fresh)) for _ in range(len(fresh))] == first_epoch
    resumed = BucketedBatches(sources, sources, batch_size=2, seed=0)
    resumed.load_state_dict({"seed": 7, "epoch": 1, "index": 0})
    assert _rows(next(resumed)) == second


def test_fixed_batches_are_sorted_by_source_length():
    sources = [[4] * n for n in (5, 1, 3, 2)]
    batches = fixed_batches(sources, sources, 2)
    assert [b["rows"].tolist() for b in batches] == [[1, 3], [2, 0]]  # lengths 1, 2 | 3, 5
    assert batches[0]["src"].tolist() == [[4, PAD_ID], [4, 4]]


def _shuffled(n: int, batch_size: int, seed: int) -> ShuffledBatches:
    return ShuffledBatches(n, batch_size, seed, make_batch=lambda rows: {"rows": torch.as_tensor(rows)})


def test_shuffled_batches_cover_each_epoch_in_the_seeded_order():
    n, batch_size, seed = 6, 3, 2
    batches = _shuffled(n, batch_size, seed)
    assert batches.state_dict() == {"seed": seed, "epoch": 0, "index": 0}
    for epoch in range(3):
        order = np.random.default_rng([seed, epoch]).permutation(n).tolist()
        got = [next(batches)["rows"].tolist() for _ in range(2)]
        assert got == [order[:3], order[3:]]
        assert batches.state_dict() == {"seed": seed, "epoch": epoch, "index": 6}


def test_shuffled_batches_resume_and_end_an_epoch_with_a_short_batch():
    batches = _shuffled(5, 2, seed=1)
    sizes = [len(next(batches)["rows"]) for _ in range(4)]
    assert sizes == [2, 2, 1, 2]  # the epoch's last batch holds what is left
    state = batches.state_dict()
    assert state == {"seed": 1, "epoch": 1, "index": 2}
    expected = [next(batches)["rows"].tolist() for _ in range(3)]
    resumed = _shuffled(5, 2, seed=9)
    resumed.load_state_dict(state)
    assert [next(resumed)["rows"].tolist() for _ in range(3)] == expected
    fresh = _shuffled(5, 2, seed=1)
    fresh.load_state_dict({"seed": 1, "epoch": 0, "index": 0})
    assert next(fresh)["rows"].tolist() == np.random.default_rng([1, 0]).permutation(5)[:2].tolist()
