"""Length-bucketed batches of token-id sequences, in an order that is a pure function of
(seed, epoch) so that a resumed run sees exactly the batches an uninterrupted run would."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from .tokenizer import BOS_ID, EOS_ID, PAD_ID

BUCKET_SPAN = 50  # batches' worth of examples sorted together: similar lengths, still random


def pad(sequences: list[list[int]], pad_id: int = PAD_ID) -> Tensor:
    """(B, T_max) long tensor, right-padded."""
    out = np.full((len(sequences), max(map(len, sequences))), pad_id, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
    return torch.from_numpy(out)


def translation_batch(sources: list[list[int]], targets: list[list[int]]) -> dict[str, Tensor]:
    """Teacher forcing (Williams & Zipser 1989): the decoder reads ``<bos> y1 … yn`` and must emit ``y1 … yn <eos>``."""
    return {"src": pad(sources),
            "tgt_in": pad([[BOS_ID, *t] for t in targets]),
            "tgt_out": pad([[*t, EOS_ID] for t in targets])}


class BucketedBatches:
    """Endless iterator of translation batches; ``state_dict`` is (seed, epoch, index): the data position."""

    def __init__(self, sources: list[list[int]], targets: list[list[int]], batch_size: int, seed: int) -> None:
        self.sources, self.targets = sources, targets
        self.batch_size, self.seed = batch_size, seed
        self.lengths = np.array([len(s) + len(t) for s, t in zip(sources, targets)])
        self.epoch, self.index = 0, 0
        self._order: list[np.ndarray] = self._plan(0)

    def _plan(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        span = self.batch_size * BUCKET_SPAN
        batches = []
        for start in range(0, len(order), span):
            chunk = order[start : start + span]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        return self

    def __next__(self) -> dict[str, Tensor]:
        if self.index >= len(self._order):
            self.epoch, self.index = self.epoch + 1, 0
            self._order = self._plan(self.epoch)
        rows = self._order[self.index]
        self.index += 1
        return translation_batch([self.sources[i] for i in rows], [self.targets[i] for i in rows])

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed, self.epoch, self.index = state["seed"], state["epoch"], state["index"]
        self._order = self._plan(self.epoch)


def fixed_batches(sources: list[list[int]], targets: list[list[int]], batch_size: int) -> list[dict[str, Tensor]]:
    """Evaluation batches, sorted by length for little padding; ``rows`` maps back to input order."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = translation_batch([sources[i] for i in rows], [targets[i] for i in rows])
        batch["rows"] = torch.tensor(rows)
        batches.append(batch)
    return batches


class ShuffledBatches:
    """Endless batches of examples 0 … n-1 in a fresh random order each epoch; ``make_batch(indices)``
    builds a batch. The order is a pure function of (seed, epoch), so the state (seed, epoch, index)
    resumes exactly."""

    def __init__(self, n: int, batch_size: int, seed: int, make_batch: Callable[[np.ndarray], dict[str, Tensor]]) -> None:
        self.n, self.batch_size, self.seed, self.make_batch = n, batch_size, seed, make_batch
        self.epoch = self.index = 0
        self._order = self._plan(0)

    def _plan(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __iter__(self) -> "ShuffledBatches":
        return self

    def __next__(self) -> dict[str, Tensor]:
        if self.index >= len(self._order):
            self.epoch, self.index = self.epoch + 1, 0
            self._order = self._plan(self.epoch)
        rows = self._order[self.index : self.index + self.batch_size]
        self.index += self.batch_size
        return self.make_batch(rows)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed, self.epoch, self.index = state["seed"], state["epoch"], state["index"]
        self._order = self._plan(self.epoch)
