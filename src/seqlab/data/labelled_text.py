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
    try:
        frame = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", encoding=encoding, dtype=str,
                            keep_default_na=False, quoting=csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not valid {encoding}; pass its encoding with --encoding (e.g. latin-1)") from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as error:
        raise DataError(f"{path} is not a readable table: {str(error).splitlines()[0]}") from None
    for column in (text_col, label_col):
        if column not in frame.columns:
            raise DataError(f"{path} has no column {column!r}; its columns are {', '.join(map(str, frame.columns))}")
    texts, labels = frame[text_col].tolist(), frame[label_col].str.strip().tolist()
    for number, (text, label) in enumerate(zip(texts, labels), 2):  # row 1 is the header
        if not text.strip():
            raise DataError(f"{path} row {number}: the text is empty")
        if not label:
            raise DataError(f"{path} row {number}: the label is empty")
    if not labels:
        raise DataError(f"{path} has a header but no rows")
    if len(set(labels)) < min_classes:
        raise DataError(f"{path} has a single class ({labels[0]!r} in every row); classification needs two or more")
    return texts, labels
