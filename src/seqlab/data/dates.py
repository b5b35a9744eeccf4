"""The demo's corpus: dates written the way people in many locales write them, to be normalised to
ISO 8601 ("Samstag, 21. November 2026" -> "2026-11-21"). Generated at run time with babel's CLDR
data, so it needs no download.

Only unambiguous spellings are kept: a format must either spell the month out or start with the
year. Purely numeric day-first/month-first forms (21.11.2026, 11/21/2026, 01/02/03) are left out —
without knowing the locale no model could tell 01/02 from 02/01.
"""

from __future__ import annotations

import datetime as dt
import random

from babel.dates import format_date, get_date_format

LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL", "tr_TR",
           "ru_RU", "uk_UA", "ar_EG", "hi_IN", "zh_CN", "ja_JP", "ko_KR")
FORMATS = ("medium", "long", "full")
FIRST_DAY, LAST_DAY = dt.date(1950, 1, 1), dt.date(2049, 12, 31)  # a century


def unambiguous(locale: str, width: str) -> bool:
    pattern = get_date_format(width, locale=locale).pattern
    return "MMM" in pattern or "LLL" in pattern or pattern.lstrip("'").startswith("y")


def styles() -> list[tuple[str, str]]:
    """Every (locale, format) pair the corpus uses."""
    return [(loc, width) for loc in LOCALES for width in FORMATS if unambiguous(loc, width)]


def split_dates(seed: int, test_fraction: float = 0.1) -> tuple[list[dt.date], list[dt.date]]:
    """All days of the century, shuffled and cut in two: test dates never occur in training."""
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]
    random.Random(seed).shuffle(days)
    n_test = int(len(days) * test_fraction)
    return days[n_test:], days[:n_test]


def date_pairs(days: list[dt.date], n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` (written date, ISO date) pairs: random days from ``days`` in random locales/formats."""
    rng = random.Random(seed)
    all_styles = styles()
    sources, targets = [], []
    for _ in range(n):
        day = rng.choice(days)
        locale, width = rng.choice(all_styles)
        sources.append(format_date(day, width, locale=locale))
        targets.append(day.isoformat())
    return sources, targets
