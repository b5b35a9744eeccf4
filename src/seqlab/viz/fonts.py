"""Fonts for the pictures: a CJK font behind matplotlib's own, so that labels such as the demo's
"2026年11月21日星期六" or "2026년 11월 21일 토요일" draw as glyphs rather than empty boxes.

matplotlib (≥ 3.6) falls back glyph by glyph along ``rcParams["font.family"]``; this appends the
first CJK family it can find to that list. It registers the Noto Sans CJK font that the
``noto-cjk-sans-jp-regular`` dependency ships (a Japanese-preferred cut; it holds Han, kana and
Hangul alike), then looks among the fonts matplotlib knows (a system's Noto CJK, Source Han Sans,
WenQuanYi, IPAex...). Without any, the pictures are drawn all the same and one note says so.
"""

from __future__ import annotations

import sys

import matplotlib
from matplotlib import font_manager

# Families that cover Han, kana and (most of them) Hangul, best first.
CJK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR",
                "Source Han Sans", "Source Han Sans JP", "Source Han Sans SC", "WenQuanYi Zen Hei",
                "WenQuanYi Micro Hei", "Droid Sans Fallback", "IPAexGothic", "IPAGothic", "Noto Sans JP",
                "Noto Sans SC", "Noto Sans KR", "Microsoft YaHei", "SimHei", "Yu Gothic", "MS Gothic",
                "Malgun Gothic", "PingFang SC", "Hiragino Sans", "Apple SD Gothic Neo")

_noted = False


def register_shipped_font() -> None:
    """Add the font file of the ``noto-cjk-sans-jp-regular`` package to matplotlib's list, if installed."""
    try:
        import noto_cjk_sans_jp_regular as shipped
    except ImportError:
        return
    path = str(shipped.FONT_PATH)
    if not any(entry.fname == path for entry in font_manager.fontManager.ttflist):
        font_manager.fontManager.addfont(path)


def find_cjk_family() -> str | None:
    """The first family of ``CJK_FAMILIES`` that matplotlib can use, after registering the shipped font."""
    register_shipped_font()
    known = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FAMILIES if family in known), None)


def use_cjk_fallback() -> str | None:
    """Append a CJK family to ``rcParams["font.family"]`` (the user's own families stay first);
    -> the family, or None after one note on stderr that CJK labels will show as boxes."""
    global _noted
    family = find_cjk_family()
    if family is None:
        if not _noted:
            print("note: no CJK font found (install seqlab's dependency noto-cjk-sans-jp-regular or a system "
                  "Noto Sans CJK); Chinese, Japanese and Korean labels will show as boxes", file=sys.stderr)
            _noted = True
        return None
    current = matplotlib.rcParams["font.family"]
    current = [current] if isinstance(current, str) else list(current)
    if family not in current:
        matplotlib.rcParams["font.family"] = [*current, family]
    return family
