"""The dates corpus: which locale formats count as unambiguous (CLDR patterns written out by hand),
the century split, and pairs whose written form is the ISO date in one of the kept styles."""

import datetime as dt
from types import SimpleNamespace

import pandas as pd
import pytest
from babel.dates import format_date

from seqlab.data import dates


@pytest.mark.parametrize("locale, width, expected", [
    ("en_US", "medium", True),  # MMM d, y: the month spelled out
    ("de_DE", "medium", False),  # dd.MM.y: day/month order needs the locale
    ("de_DE", "long", True),  # d. MMMM y
    ("ar_EG", "medium", False),  # dd/MM/y with right-to-left marks
    ("ja_JP", "medium", True),  # y/MM/dd: the year first
    ("ko_KR", "medium", True),  # y. M. d.
])
def test_unambiguous_cldr_formats(locale, width, expected):
    assert dates.unambiguous(locale, width) is expected


@pytest.mark.parametrize("pattern, expected", [
    ("d LLLL", True),  # a stand-alone month name is spelled out too
    ("''y-MM-dd", True),  # an escaped quote before the year
    ("Xy-MM-dd", False),
    (" y-MM-dd", False),
    ("dd/MM/y", False),
])
def test_unambiguous_reads_the_pattern_as_documented(monkeypatch, pattern, expected):
    monkeypatch.setattr(dates, "get_date_format", lambda width, locale: SimpleNamespace(pattern=pattern))
    assert dates.unambiguous("xx", "medium") is expected


def test_styles_keep_each_locale_and_width_on_its_own():
    kept = dates.styles()
    assert ("de_DE", "long") in kept and ("de_DE", "full") in kept and ("de_DE", "medium") not in kept
    assert ("ar_EG", "medium") not in kept and ("ja_JP", "medium") in kept and ("en_US", "medium") in kept


def test_the_century_is_split_whole_and_by_the_seed():
    train, test = dates.split_dates(0)
    century = pd.date_range("1950-01-01", "2049-12-31", freq="D").date
    assert len(century) == 36525
    assert sorted(train + test) == list(century)
    assert len(test) == 3652  # int(36525 * 0.1)
    assert dates.split_dates(0) == (train, test) and dates.split_dates(1)[1] != test
    assert len(dates.split_dates(0, test_fraction=0.5)[1]) == 18262


def test_pairs_write_the_iso_date_in_a_kept_style():
    days = [dt.date(1987, 6, 5), dt.date(2031, 12, 24), dt.date(1950, 1, 1)]
    sources, targets = dates.date_pairs(days, 200, seed=3)
    assert len(sources) == len(targets) == 200 and set(targets) <= {d.isoformat() for d in days}
    kept = dates.styles()
    used = set()
    for source, target in zip(sources, targets):
        day = dt.date.fromisoformat(target)
        styles = [style for style in kept if format_date(day, style[1], locale=style[0]) == source]
        assert styles, source
        used.update(styles)
    assert len({locale for locale, _ in used}) >= 12 and {width for _, width in used} == {"medium", "long", "full"}
    assert dates.date_pairs(days, 20, seed=3) == (sources[:20], targets[:20])
