"""Text tables that line up in a terminal: cells padded by the columns they take on screen, not by
``len()``. A wide or full-width character (Han, kana, Hangul: East Asian Width W or F, Unicode
Standard Annex #11) takes two columns, a combining mark or a zero-width character none.

Imports nothing from the package, so that every layer can use it.
"""

from __future__ import annotations

import unicodedata

ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff"}


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: 2 for East Asian wide/full-width characters, 0 for combining
    marks, format and zero-width characters, 1 for the rest."""
    width = 0
    for c in text:
        if unicodedata.combining(c) or c in ZERO_WIDTH or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width


def pad(text: str, width: int, align: str = "<") -> str:
    """``text`` padded with spaces to ``width`` display columns, on the right (``<``) or the left (``>``)."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if align == ">" else text + fill


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table whose ``|`` line up on screen: each column as wide as its widest cell."""
    widths = [max(display_width(cell) for cell in column) for column in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(pad(cell, width) for cell, width in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])
