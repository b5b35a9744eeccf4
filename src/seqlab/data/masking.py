"""BERT's masked-language-model corruption (Devlin et al., 2019 §3.1, "Task #1: Masked LM"):

    "we mask 15% of all WordPiece tokens in each sequence at random … If the i-th token is chosen, we
    replace the i-th token with (1) the [MASK] token 80% of the time (2) a random token 10% of the time
    (3) the unchanged i-th token 10% of the time. Then, T_i will be used to predict the original token."

Each ordinary token is chosen independently with probability ``probability``; special tokens ([CLS],
[SEP], [PAD], …) never are. With ``whole_word`` (BERT's whole-word-masking release) a word is chosen as
a unit: its first piece draws, its ``##`` pieces follow. Labels hold the original id at chosen positions
and ``IGNORE`` (-100, what ``torch.nn.functional.cross_entropy`` skips) everywhere else.

:class:`MaskedBlockBatches` wraps the language model's :class:`~seqlab.data.token_stream.BlockBatches`:
batch n's blocks *and* its masking are pure functions of (seed, n), so a resumed run sees exactly the
corrupted batches an uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from .token_stream import BlockBatches, blocks_at
from .tokenizer import CONTINUATION

IGNORE = -100  # the label of a position the loss skips
MASK_FRACTION, RANDOM_FRACTION = 0.8, 0.1  # of the chosen tokens; the remaining 10 % stay unchanged
_MASKING_STREAM = 1  # batch n's masking draws from default_rng([seed, n, 1]); its offsets from [seed, n]


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class Masking:
    """What the corruption needs to know of the vocabulary. ``special``: (V,) bool, True for ids never
    chosen nor drawn as random replacements; ``continuation``: (V,) bool, True for a piece that continues
    a word (None: every token is its own word)."""

    mask_id: int
    special: np.ndarray
    continuation: np.ndarray | None = None
    probability: float = 0.15

    def __post_init__(self) -> None:
        if not 0.0 < self.probability < 1.0:
            raise ValueError(f"the masking probability must be in (0, 1); got {self.probability}")

    @classmethod
    def for_tokenizer(cls, tokenizer: Tokenizer, specials: list[str], probability: float = 0.15,
                      whole_word: bool = False) -> "Masking":
        """The masking of a WordPiece tokenizer (:func:`seqlab.data.tokenizer.train_wordpiece`)."""
        vocab = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
        special = np.array([token in specials for token in vocab])
        continuation = np.array([token.startswith(CONTINUATION) for token in vocab]) if whole_word else None
        return cls(tokenizer.token_to_id("[MASK]"), special, continuation, probability)

    def __call__(self, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """ids: (B, T) int64 -> (inputs, labels), both (B, T) int64: the corrupted ids and the originals
        at the chosen positions (``IGNORE`` elsewhere)."""
        ids = np.asarray(ids, dtype=np.int64)
        candidate = ~self.special[ids]  # (B, T)
        draw = rng.random(ids.shape)
        if self.continuation is not None:
            # Every piece takes its word's draw: the draw at the last position that starts a word. A
            # special token is no ## piece, so it starts one too, and the pieces of a word cut off at a
            # block's start ([CLS] before them) share [CLS]'s draw: chosen together, [CLS] never.
            starts = ~self.continuation[ids]
            columns = np.arange(ids.shape[1])
            start_of_word = np.maximum.accumulate(np.where(starts, columns, 0), axis=1)
            draw = np.take_along_axis(draw, start_of_word, axis=1)
        chosen = candidate & (draw < self.probability)
        action = rng.random(ids.shape)  # 80 / 10 / 10, drawn for each chosen token
        replacements = np.flatnonzero(~self.special)
        random_ids = replacements[rng.integers(0, len(replacements), size=ids.shape)]
        inputs = np.where(chosen & (action < MASK_FRACTION), self.mask_id, ids)
        inputs = np.where(chosen & (action >= MASK_FRACTION) & (action < MASK_FRACTION + RANDOM_FRACTION),
                          random_ids, inputs)
        labels = np.where(chosen, ids, IGNORE)
        return inputs, labels


def with_ends(blocks: np.ndarray | Tensor, cls_id: int, sep_id: int) -> np.ndarray:
    """(B, T) token blocks -> (B, T + 2): [CLS] block [SEP], BERT's single-segment input."""
    blocks = np.asarray(blocks, dtype=np.int64)
    rows = blocks.shape[0]
    return np.concatenate([np.full((rows, 1), cls_id), blocks, np.full((rows, 1), sep_id)], axis=1)


def masked_batch(ids: np.ndarray, masking: Masking, rng: np.random.Generator) -> dict[str, Tensor]:
    """{"x": (B, T) corrupted ids, "labels": (B, T) originals at the chosen positions, else IGNORE}."""
    inputs, labels = masking(ids, rng)
    return {"x": torch.from_numpy(inputs), "labels": torch.from_numpy(labels)}


class MaskedBlockBatches:
    """Endless batches of [CLS] block [SEP] rows, masked: the blocks of :class:`BlockBatches` (random
    contiguous stretches of the training ids), corrupted by ``masking`` with a generator seeded by
    (seed, n) — so the state is still just (seed, n)."""

    def __init__(self, ids: np.ndarray, block_size: int, batch_size: int, seed: int, masking: Masking,
                 cls_id: int, sep_id: int) -> None:
        self.blocks = BlockBatches(ids, block_size, batch_size, seed)
        self.masking, self.cls_id, self.sep_id = masking, cls_id, sep_id

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        return self

    def __next__(self) -> dict[str, Tensor]:
        rng = np.random.default_rng([self.blocks.seed, self.blocks.index, _MASKING_STREAM])
        rows = next(self.blocks)["x"]  # (B, block_size); the next-token targets are not used
        return masked_batch(with_ends(rows, self.cls_id, self.sep_id), self.masking, rng)

    def state_dict(self) -> dict[str, Any]:
        return self.blocks.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.blocks.load_state_dict(state)


EVALUATION_SEED = 20190524  # one fixed masking of held-out text, whatever the run's seed: figures compare


def evaluation_batches(ids: np.ndarray, starts: np.ndarray, block_size: int, batch_size: int, masking: Masking,
                       cls_id: int, sep_id: int) -> Iterator[dict[str, Tensor]]:
    """The blocks of held-out ``ids`` at ``starts``, as masked batches of ``batch_size`` rows. Each block's
    masking is drawn from (EVALUATION_SEED, its offset) alone, so the figures do not depend on the batch
    size, the run's seed or how often the text was scored before."""
    for i in range(0, len(starts), batch_size):
        chunk = starts[i : i + batch_size]
        rows = with_ends(blocks_at(ids, chunk, block_size)["x"], cls_id, sep_id)
        pairs = [masking(row[None], np.random.default_rng([EVALUATION_SEED, int(start)]))
                 for row, start in zip(rows, chunk)]
        yield {"x": torch.from_numpy(np.concatenate([p[0] for p in pairs])),
               "labels": torch.from_numpy(np.concatenate([p[1] for p in pairs]))}
