"""Tiny stand-ins for the data files the docs' examples name (a parallel corpus, a play, a labelled
CSV, an hourly series), shared by the tests that run those examples; not a test module."""

from pathlib import Path

import numpy as np
import pandas as pd

DATES = ["17 dic 1974", "21. November 2026", "Samstag", "1 mar 2001", "9 ago 1999"]
GERMAN_ENGLISH = [("ein hund läuft", "a dog runs"), ("eine katze schläft", "a cat sleeps"),
                  ("der mann liest", "the man reads"), ("die frau singt", "the woman sings"),
                  ("zwei kinder spielen", "two children play"), ("ein vogel fliegt", "a bird flies")]
PLAY = "ROMEO: I will go. JULIET: Stay, and hear me speak a while.\n"
REVIEWS = {"pos": "a gripping beautifully acted film", "neg": "a dull and lifeless film"}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reversed_pairs(folder: Path, src: str = "src.txt", tgt: str = "tgt.txt", copies: int = 8) -> None:
    """Date-like lines and their reversals: a translation a character model learns in a few steps."""
    write_lines(folder / src, DATES * copies)
    write_lines(folder / tgt, [line[::-1] for line in DATES * copies])


def german_english(copies: int = 6) -> tuple[list[str], list[str]]:
    """-> (German lines, English lines), a few short sentence pairs repeated."""
    return [de for de, _ in GERMAN_ENGLISH] * copies, [en for _, en in GERMAN_ENGLISH] * copies


def play(path: Path, copies: int = 80) -> Path:
    return write_lines(path, [PLAY.strip()] * copies)


def reviews(path: Path, per_label: int = 12, sep: str = ",") -> Path:
    """A labelled table with columns text and label, ``per_label`` rows of each label."""
    rows = [f"{text}{sep}{label}" for label, text in REVIEWS.items() for _ in range(per_label)]
    return write_lines(path, [f"text{sep}label", *rows])


def hourly_series(path: Path, rows: int, columns: tuple[str, ...] = ("load", "OT"), start: str = "2024-01-01") -> Path:
    """Hourly rows with a ``date`` column and ``columns``, each a daily cycle of its own phase."""
    t = np.arange(rows)
    values = {name: 30 + 10 * np.sin(2 * np.pi * t / 24 + k) for k, name in enumerate(columns)}
    pd.DataFrame({"date": pd.date_range(start, periods=rows, freq="h"), **values}).to_csv(path, index=False)
    return path
