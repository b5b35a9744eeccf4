"""Language-model data: one long text -> token ids in a memory-mapped file on disk -> random
contiguous blocks. The text is read a block of characters at a time and the ids written in chunks, so a
corpus larger than memory works; training reads only the blocks it draws.

    text_files(source)         a file, a folder (its files, recursively) or a glob pattern -> the files
    split_text(source, 0.1)    the first 90 % of the characters train, the last 10 % validate
    encode_to_file(...)        ids -> RUN_DIR/train.bin, valid.bin (uint16, or uint32 for big vocabularies)
    BlockBatches(ids, T, B)    x = ids[i : i+T], y = ids[i+1 : i+T+1] at random offsets i

The files of a folder or a pattern read as one text: their contents joined in sorted path order.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import itertools
import os
import re
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from ..errors import DataError
from . import fast_bpe
from .download import file_not_found
from .tokenizer import char_lookup

CHUNK_CHARS = 1 << 16  # characters read, and about the characters of one piece tokenised
BATCH_PIECES = 16  # pieces tokenised together (in parallel) by one HF encode_batch
GLOB_MAGIC = re.compile(r"[*?[]")
# A piece ends just before the last line break (or, in a very long line, space) of a run of whitespace,
# where a non-space character follows: GPT-2's byte-level pre-tokenizer (Radford et al. 2019 §2.2,
# whose pattern ends in \s+(?!\S)|\s+) splits there anyway, so the pieces' ids are those of the
# whole text. Whole lines would not be: "\n\n" is one pre-token, and so is the "\n " before an
# indented line.


def text_files(source: str | Path) -> list[Path]:
    """The files a text source names: a file; every regular file under a folder, recursively, hidden
    files and folders left out; or the files a glob pattern (``**`` included) matches. Sorted by path;
    none is a DataError."""
    source = str(source)
    path = Path(os.path.expanduser(source))
    if path.is_file():
        return [path]
    if path.is_dir():
        def refuse(error: OSError) -> None:
            raise DataError(f"cannot read {error.filename}: {error.strerror}")

        files = []
        for folder, subfolders, names in os.walk(path, onerror=refuse):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            files += [Path(folder, name) for name in names if not name.startswith(".")]
        files = sorted(file for file in files if file.is_file())
        if not files:
            raise DataError(f"{source} is a folder with no files in it (hidden files are skipped)")
        return files
    if GLOB_MAGIC.search(source):
        files = sorted(Path(name) for name in glob.glob(str(path), recursive=True) if os.path.isfile(name))
        if not files:
            raise DataError(f"no files match {source}")
        return files
    raise file_not_found(source)


def _read(path: Path, size: int) -> Iterator[str]:
    """The file's text, ``size`` characters at a time, line endings as written, without a leading
    byte-order mark (each file's own: an editor's mark, not text); bad UTF-8 is a DataError."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            while block := file.read(size):
                yield block
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not valid UTF-8 ({error.reason}); convert it to UTF-8") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None


def _blocks(files: list[Path]) -> Iterator[str]:
    """The files' texts joined, in blocks of up to CHUNK_CHARS characters."""
    for path in files:
        yield from _read(path, CHUNK_CHARS)


def _count(files: list[Path], source: str | Path) -> int:
    n, blank = 0, True
    for block in _blocks(files):  # one pass: the length and whether anything but whitespace is there
        n += len(block)
        blank = blank and not block.strip()
    if blank:
        raise DataError(f"{source} is empty")
    return n


def count_characters(source: str | Path) -> int:
    """The characters of a text source (see ``text_files``); a missing, empty, unreadable or non-UTF-8
    one is a DataError."""
    return _count(text_files(source), source)


def _pieces(files: list[Path], start: int, end: int) -> Iterator[str]:
    """Characters start … end-1 of the files' joined text, in pieces of about CHUNK_CHARS, each cut
    where the pre-tokenizer splits anyway (a piece grows to 8 × CHUNK_CHARS looking for such a place)."""
    position, pending = 0, ""
    for block in _blocks(files):
        block_start, position = position, position + len(block)
        if position <= start:
            continue
        pending += block[max(start - block_start, 0) : end - block_start]
        if len(pending) >= CHUNK_CHARS:
            cut = _last_safe_cut(pending)
            if cut:
                yield pending[:cut]
                pending = pending[cut:]
            elif len(pending) >= 8 * CHUNK_CHARS:  # no space at all in 8 blocks: cut anyway
                yield pending
                pending = ""
        if position >= end:
            break
    if pending:
        yield pending


def _last_safe_cut(text: str) -> int:
    """The offset of the last line break, or failing one the last space, past the first quarter of
    ``text`` that a non-space character follows; 0 if none."""
    for space in ("\n", " "):
        at = len(text) - 1  # a space at the very end waits: what follows it is unknown
        while (at := text.rfind(space, len(text) // 4, at)) > 0:
            if not text[at + 1].isspace():
                return at
    return 0


def text_pieces(source: str | Path) -> Iterator[str]:
    """The whole text source in pieces of about CHUNK_CHARS (a missing, empty or non-UTF-8 one is a
    DataError)."""
    files = text_files(source)
    return _pieces(files, 0, _count(files, source))


def check_split_lengths(source: str | Path, valid_fraction: float, block_size: int,
                        characters: int | None = None) -> None:
    """A DataError unless each part of ``split_text`` holds at least ``block_size + 1`` characters:
    a character tokenizer gives one token a character, so shorter parts cannot fill one block.
    ``characters``: the source's count, when known."""
    n = characters if characters is not None else count_characters(source)
    cut = int(n * (1.0 - valid_fraction))
    for name, chars in (("training", cut), ("validation", n - cut)):
        if chars < block_size + 1:
            raise DataError(f"{source} has {n} characters, {chars} of them in the {name} part; a block of "
                            f"{block_size} needs at least {block_size + 1} (use a longer text, a smaller "
                            f"data.block_size{' or a larger data.valid_fraction' if name == 'validation' else ''})")


def split_text(source: str | Path, valid_fraction: float) -> dict[str, Callable[[], Iterator[str]]]:
    """{"train": pieces of the first (1 - valid_fraction) of the characters, "valid": the rest}; each
    value makes a fresh iterator (the files are read again, never held whole)."""
    files = text_files(source)
    n = _count(files, source)
    cut = int(n * (1.0 - valid_fraction))
    return {"train": lambda: _pieces(files, 0, cut), "valid": lambda: _pieces(files, cut, n)}


def first_characters(pieces: Iterable[str], limit: int) -> Iterator[str]:
    """The pieces up to ``limit`` characters in all (the last one cut short)."""
    for piece in pieces:
        if limit <= 0:
            return
        yield piece[:limit]
        limit -= len(piece)


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32)


def _encoded(tokenizer: Tokenizer, pieces: Iterator[str]) -> Iterator[tuple[Any, int]]:
    """(ids, characters) of each piece, in order; the ids are those of encoding each piece alone.

    A char tokenizer: one array lookup a piece. A byte-level BPE tiktoken reproduces (:mod:`.fast_bpe`):
    a pool of torch's thread count encodes the pieces while this thread reads the next ones (tiktoken
    releases the GIL). Any other: HF's ``encode_batch``, BATCH_PIECES at a time, spread over the cores."""
    if lookup := char_lookup(tokenizer):
        yield from ((lookup(piece), len(piece)) for piece in pieces)
    elif encode := fast_bpe.piece_encoder(tokenizer):
        threads = torch.get_num_threads()
        with ThreadPoolExecutor(threads) as pool:
            ahead: collections.deque = collections.deque()
            for piece in pieces:
                ahead.append((pool.submit(encode, piece), len(piece)))
                if len(ahead) > 2 * threads:  # enough queued to keep every thread busy
                    future, n = ahead.popleft()
                    yield future.result(), n
            while ahead:
                future, n = ahead.popleft()
                yield future.result(), n
    else:
        # encode_batch_fast (in newer tokenizers releases) skips the character offsets: only the ids are kept
        encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        while batch := list(itertools.islice(pieces, BATCH_PIECES)):
            yield from ((encoding.ids, len(piece)) for piece, encoding in zip(batch, encode_batch(batch)))


def encode_to_file(tokenizer: Tokenizer, pieces: Iterable[str], path: str | Path) -> tuple[int, int]:
    """Tokenise text pieces into a flat binary file of ids -> (tokens, characters) written."""
    dtype = token_dtype(tokenizer.get_vocab_size())
    tokens = characters = 0
    with open(path, "wb") as file:
        for ids, n in _encoded(tokenizer, iter(pieces)):
            ids = np.asarray(ids, dtype=dtype)
            ids.tofile(file)
            tokens, characters = tokens + ids.size, characters + n
    return tokens, characters


def open_tokens(path: str | Path, vocab_size: int) -> np.memmap:
    """The ids of ``encode_to_file``, memory-mapped read-only: pages load as blocks are drawn (an empty
    file, which cannot be mapped, is no ids: the readers of the blocks say what is too short)."""
    if Path(path).stat().st_size == 0:
        return np.zeros(0, dtype=token_dtype(vocab_size))
    return np.memmap(path, dtype=token_dtype(vocab_size), mode="r")


def largest_id(ids: np.ndarray, chunk: int = 1 << 24) -> int:
    """The largest of ``ids`` (-1 for none), read a chunk at a time: a memory-mapped file larger than
    memory is scanned, not loaded."""
    return max((int(ids[i : i + chunk].max()) for i in range(0, len(ids), chunk)), default=-1)


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


def check_eval_tokens(eval_tokens: int, block_size: int) -> None:
    """A ValueError unless ``data.eval_tokens`` (``evaluation_blocks``' ``max_tokens``) is 0 or holds a
    whole block: the validation text's length was blamed otherwise."""
    if 0 < eval_tokens < block_size:
        raise ValueError(f"data.eval_tokens={eval_tokens} is less than one block: 0 (all the validation "
                         f"tokens) or at least data.block_size ({block_size})")


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
