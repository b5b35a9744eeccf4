"""Labelled text from a CSV or TSV file (pandas), with one clear error for each way it can be unusable."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ..errors import DataError


def read_labelled(path: str | Path, text_col: str, label_col: str, encoding: str = "utf-8",
                  min_classes: int = 2) -> tuple[list[str], list[str]]:
    """(texts, labels as strings). A ``.tsv`` file is tab-separated, anything else comma-separated.
    Training data needs two classes or more; data to score a trained run may hold one."""
    path = Path(path)
    if not path.is_file():
        from .download import file_not_found

        raise file_not_found(path)
    sep = "\t" if path.suffix == ".tsv" else ","
    quoting = csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL
    try:
        frame = pd.read_csv(path, sep=sep, encoding=encoding, dtype=str, keep_default_na=False, quoting=quoting)
    except UnicodeError:  # a decode error, or a codec's own (UTF-16 without its byte-order mark)
        raise DataError(f"{path} is not valid {encoding}; pass its encoding with --encoding (e.g. latin-1)") from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as error:
        raise DataError(f"{path} is not a readable table: {str(error).splitlines()[0]}") from None
    if text_col == label_col:
        raise DataError(f"the text column and the label column are both {text_col!r}; name two columns")
    if twice := duplicate_header(path, sep=sep, encoding=encoding, quoting=quoting):
        raise DataError(f"{path} names the column {twice!r} twice in its header; give each column its own name")
    for column in (text_col, label_col):
        if column not in frame.columns:
            raise DataError(f"{path} has no column {column!r}; its columns are {', '.join(map(str, frame.columns))}")
    texts, labels = frame[text_col].tolist(), frame[label_col].str.strip().tolist()
    for number, (text, label) in enumerate(zip(texts, labels), 2):  # row 1 is the header
        if not text.strip():
            raise DataError(f"{path} row {number}: the text is empty")
        if not label:
            raise DataError(f"{path} row {number}: the label is empty")
        if any(mark in label for mark in "\n\r\t"):  # predict writes a label and its probability a line
            raise DataError(f"{path} row {number}: the label {label!r} holds a line break or a tab; give each "
                            f"class a one-line name")
    if not labels:
        raise DataError(f"{path} has a header but no rows")
    if len(set(labels)) < min_classes:
        raise DataError(f"{path} has a single class ({labels[0]!r} in every row); classification needs two or more")
    return texts, labels



def duplicate_header(path: Path, **read_options) -> str | None:
    """A name the file's header gives twice (pandas would rename the second ``name.1`` and read the
    first, silently), or None; ``read_options`` as the file is read."""
    header = [str(name) for name in pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False,
                                                 **read_options).iloc[0]]
    return next((name for i, name in enumerate(header) if name in header[:i]), None)
