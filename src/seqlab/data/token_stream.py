"""Language-model data: one long text -> token ids in a memory-mapped file on disk -> random
contiguous blocks. The text is read line by line and the ids written in chunks, so a corpus larger
than memory works; training reads only the blocks it draws.

    split_text(path, 0.1)      the first 90 % of the characters train, the last 10 % validate
    encode_to_file(...)        ids -> RUN_DIR/train.bin, valid.bin (uint16, or uint32 for big vocabularies)
    BlockBatches(ids, T, B)    x = ids[i : i+T], y = ids[i+1 : i+T+1] at random offsets i
"""

from __future__ import annotations

import contextlib
import sysconfig
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from ..errors import DataError

CHUNK_CHARS = 1 << 20  # characters tokenised at a time


def _lines(path: Path) -> Iterator[str]:
    """The file's lines with their line endings, as written; bad UTF-8 is a DataError."""
    try:
        with open(path, encoding="utf-8", newline="") as file:
            yield from file
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not valid UTF-8 ({error.reason}); convert it to UTF-8") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error}") from None


def count_characters(path: str | Path) -> int:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    n, blank = 0, True
    for line in _lines(path):  # one pass: the length and whether anything but whitespace is there
        n += len(line)
        blank = blank and not line.strip()
    if blank:
        raise DataError(f"{path} is empty")
    return n


def _pieces(path: Path, start: int, end: int) -> Iterator[str]:
    """Characters start … end-1 of the file, in pieces of about CHUNK_CHARS (whole lines but for the
    split point)."""
    position, buffer, size = 0, [], 0
    for line in _lines(path):
        line_end = position + len(line)
        if line_end > start and position < end:
            piece = line[max(start - position, 0) : end - position]
            buffer.append(piece)
            size += len(piece)
            if size >= CHUNK_CHARS:
                yield "".join(buffer)
                buffer, size = [], 0
        position = line_end
        if position >= end:
            break
    if buffer:
        yield "".join(buffer)


def text_pieces(path: str | Path) -> Iterator[str]:
    """The whole file in pieces of about CHUNK_CHARS (a missing, empty or non-UTF-8 file is a DataError)."""
    return _pieces(Path(path), 0, count_characters(path))


def check_split_lengths(path: str | Path, valid_fraction: float, block_size: int) -> None:
    """A DataError unless each part of ``split_text`` holds at least ``block_size + 1`` characters:
    a character tokenizer gives one token a character, so shorter parts cannot fill one block."""
    n = count_characters(path)
    cut = int(n * (1.0 - valid_fraction))
    for name, chars in (("training", cut), ("validation", n - cut)):
        if chars < block_size + 1:
            raise DataError(f"{path} has {n} characters, {chars} of them in the {name} part; a block of "
                            f"{block_size} needs at least {block_size + 1} (use a longer text, a smaller "
                            f"data.block_size{' or a larger data.valid_fraction' if name == 'validation' else ''})")


def split_text(path: str | Path, valid_fraction: float) -> dict[str, Callable[[], Iterator[str]]]:
    """{"train": pieces of the first (1 - valid_fraction) of the characters, "valid": the rest}; each
    value makes a fresh iterator (the file is read again, never held whole)."""
    path = Path(path)
    n = count_characters(path)
    cut = int(n * (1.0 - valid_fraction))
    return {"train": lambda: _pieces(path, 0, cut), "valid": lambda: _pieces(path, cut, n)}


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32)


def encode_to_file(tokenizer: Tokenizer, pieces: Iterable[str], path: str | Path) -> tuple[int, int]:
    """Tokenise text pieces into a flat binary file of ids -> (tokens, characters) written."""
    dtype = token_dtype(tokenizer.get_vocab_size())
    tokens = characters = 0
    with open(path, "wb") as file:
        for piece in pieces:
            ids = np.asarray(tokenizer.encode(piece).ids, dtype=dtype)
            ids.tofile(file)
            tokens += ids.size
            characters += len(piece)
    return tokens, characters


def open_tokens(path: str | Path, vocab_size: int) -> np.memmap:
    """The ids of ``encode_to_file``, memory-mapped read-only: pages load as blocks are drawn (an empty
    file, which cannot be mapped, is no ids: the readers of the blocks say what is too short)."""
    if Path(path).stat().st_size == 0:
        return np.zeros(0, dtype=token_dtype(vocab_size))
    return np.memmap(path, dtype=token_dtype(vocab_size), mode="r")


@contextlib.contextmanager
def tokenised_text(tokenizer: Tokenizer, path: str | Path) -> Iterator[tuple[np.ndarray, int]]:
    """``path``'s whole text tokenised into a temporary memory-mapped file (so it may be larger than
    memory): yields (ids, characters); the file goes when the block ends."""
    with tempfile.TemporaryDirectory() as tmp:
        _, characters = encode_to_file(tokenizer, text_pieces(path), Path(tmp) / "ids.bin")
        yield open_tokens(Path(tmp) / "ids.bin", tokenizer.get_vocab_size()), characters


class BlockBatches:
    """Endless random contiguous blocks. Batch n's offsets are a pure function of (seed, n), so the
    ``state_dict`` is just that pair and a resumed run draws exactly the blocks it would have."""

    def __init__(self, ids: np.ndarray, block_size: int, batch_size: int, seed: int) -> None:
        if len(ids) < block_size + 1:
            raise DataError(f"the training text has {len(ids)} tokens; a block of {block_size} needs "
                            f"at least {block_size + 1} (use a longer text or a smaller data.block_size)")
        self.ids, self.block_size, self.batch_size = ids, block_size, batch_size
        self.seed, self.index = seed, 0

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        return self

    def __next__(self) -> dict[str, Tensor]:
        rng = np.random.default_rng([self.seed, self.index])
        self.index += 1
        starts = rng.integers(0, len(self.ids) - self.block_size, size=self.batch_size)
        return blocks_at(self.ids, starts, self.block_size)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "index": self.index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed, self.index = state["seed"], state["index"]


def blocks_at(ids: np.ndarray, starts: np.ndarray, block_size: int) -> dict[str, Tensor]:
    """{"x": (B, T) inputs, "y": (B, T) the next token of each position}."""
    rows = np.stack([np.asarray(ids[s : s + block_size + 1], dtype=np.int64) for s in starts])
    tensor = torch.from_numpy(rows)
    return {"x": tensor[:, :-1], "y": tensor[:, 1:]}


def evaluation_blocks(ids: np.ndarray, block_size: int, max_tokens: int = 0) -> np.ndarray:
    """Offsets of non-overlapping blocks covering the validation ids (up to ``max_tokens``; 0 = all)."""
    usable = len(ids) - 1
    if max_tokens:
        usable = min(usable, max_tokens)
    if usable < block_size:
        raise DataError(f"the validation text has {len(ids)} tokens; a block of {block_size} needs at "
                        f"least {block_size + 1} (lower data.block_size or raise data.valid_fraction)")
    return np.arange(0, usable - block_size + 1, block_size)


def python_stdlib_corpus(max_chars: int) -> Iterator[str]:
    """The default corpus every Python user has: the source of this interpreter's standard library
    (its ``*.py`` files under ``sysconfig``'s stdlib path, tests and site-packages left out, in sorted
    path order), up to ``max_chars`` characters."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "site-packages", "idlelib", "lib2to3"}
    left = max_chars
    for path in sorted(root.rglob("*.py")):
        if skip & set(path.relative_to(root).parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        yield text[:left]
        left -= min(len(text), left)
        if left == 0:
            return
