"""Reading the user's text files: one clear error for every way they can be unusable."""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

import pandas as pd

from ..errors import DataError

BOM = "\ufeff"  # the byte-order mark, as decoded text


def text_start(text: str, width: int = 40) -> str:
    """A text's first ``width`` characters, quoted (… where it goes on): how a message names a text
    whose position the user cannot see, one from a shuffled split say, so that it can be searched for."""
    return repr(text[:width] + ("…" if len(text) > width else ""))


def read_lines(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """Lines of a text file (``.gz`` read transparently), without line endings."""
    path = Path(path)
    if not path.is_file():
        from .download import file_not_found

        raise file_not_found(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    text = decode_text(raw, encoding, str(path))
    # Lines end at "\n" (or "\r\n") only: str.splitlines() would also break at form feeds, U+0085
    # and other separators that occur inside real sentences (MR's Latin-1 text has some).
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not any(line.strip() for line in lines):
        raise DataError(f"{path} is empty")
    return lines


def decode_text(raw: bytes, encoding: str, name: str, advice: str = "convert it to UTF-8") -> str:
    """``raw`` decoded, without a leading byte-order mark (an editor's, not the user's text: kept, it
    would become a token of its own); bytes that are not ``encoding`` are a DataError naming ``name``,
    the line and the byte."""
    try:
        return raw.decode(encoding).removeprefix(BOM)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(f"{name} is not valid {encoding} (line {line}, byte {error.start}); {advice}") from None
    except UnicodeError as error:  # a codec's own refusal: UTF-16 without its byte-order mark
        raise DataError(f"{name} is not valid {encoding} ({error}); {advice}") from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}") from None


def read_stdin_lines(stream=None) -> list[str]:
    """Standard input's lines, decoded as UTF-8 with the same message as a file's (the text layer's
    own decoding would fail with a traceback on the first stray byte)."""
    stream = stream if stream is not None else sys.stdin
    raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    text = decode_text(raw, "utf-8", "standard input", "convert it to UTF-8") if isinstance(raw, bytes) else raw
    lines = text.replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_parallel(src: str | Path, tgt: str | Path) -> tuple[list[str], list[str]]:
    """Aligned source/target files, one sentence a line."""
    sources, targets = read_lines(src), read_lines(tgt)
    if len(sources) != len(targets):
        raise DataError(f"{src} has {len(sources)} lines but {tgt} has {len(targets)}; "
                        f"parallel files must align line by line")
    _check_no_empty(sources, src)
    _check_no_empty(targets, tgt)
    return sources, targets


def read_tsv_pairs(path: str | Path) -> tuple[list[str], list[str]]:
    """A two-column TSV file, source<TAB>target, no header."""
    # read_lines checks existence, encoding and emptiness with the same messages; pandas parses its text.
    numbered = [(number, line) for number, line in enumerate(read_lines(path), 1) if line.strip()]  # blank: skipped
    for number, line in numbered:
        if "\t" not in line:
            raise DataError(f"{path}: line {number} has no tab; each line must be source<TAB>target")
        if line.count("\t") > 1:
            raise DataError(f"{path}: line {number} has {line.count(chr(9)) + 1} tab-separated columns; expected 2 "
                            f"(source, target)")
    content = "\n".join(line for _, line in numbered)
    try:
        frame = pd.read_csv(io.StringIO(content), sep="\t", header=None, dtype=str, keep_default_na=False,
                            quoting=csv.QUOTE_NONE)
    except pd.errors.ParserError as error:
        raise DataError(f"{path} is not a two-column TSV: {str(error).strip()}") from None  # pandas' ends in a newline
    sources, targets = frame[0].tolist(), frame[1].tolist()
    numbers = [number for number, _ in numbered]  # the file's line numbers of the rows
    _check_no_empty(sources, path, numbers)
    _check_no_empty(targets, path, numbers)
    return sources, targets


def _check_no_empty(lines: list[str], path: str | Path, numbers: list[int] | None = None) -> None:
    """A DataError naming the first empty line (by ``numbers``, the file's line numbers, when given)."""
    for number, line in zip(numbers or range(1, len(lines) + 1), lines):
        if not line.strip():
            raise DataError(f"{path}: line {number} is empty")
