"""CJK labels draw as glyphs: seqlab.viz puts a CJK font behind matplotlib's own."""

import io
import warnings

import matplotlib
import pytest

import seqlab.viz  # noqa: F401  (sets the fallback)
from seqlab.viz import fonts

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = ["2026年11月21日星期六", "2026年11月21日土曜日", "2026년 11월 21일 토요일"]  # zh_CN, ja_JP, ko_KR


def missing_glyph_warnings() -> list[str]:
    fig, ax = plt.subplots()
    ax.set_title(LABELS[0])
    ax.set_xticks(range(3), LABELS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_cjk_labels_draw_without_missing_glyphs():
    family = fonts.find_cjk_family()
    if family is None:
        pytest.skip("no CJK font installed here (neither the noto-cjk-sans-jp-regular package nor a system one)")
    assert fonts.use_cjk_fallback() == family
    assert family in matplotlib.rcParams["font.family"]
    assert missing_glyph_warnings() == []


def test_without_a_cjk_font_it_draws_anyway_and_says_so_once(monkeypatch, capsys):
    monkeypatch.setattr(fonts, "find_cjk_family", lambda: None)
    monkeypatch.setattr(fonts, "_noted", False)
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["DejaVu Sans"])
    assert fonts.use_cjk_fallback() is None and fonts.use_cjk_fallback() is None
    assert capsys.readouterr().err.count("no CJK font found") == 1
    assert missing_glyph_warnings()  # boxes, as DejaVu Sans alone has no Han: the test above can fail
