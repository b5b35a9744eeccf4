"""Terminal tables line up by display columns: a Han or Hangul character takes two."""

from seqlab.tables import display_width, markdown_table, pad


def test_display_width_counts_wide_characters_twice_and_combining_marks_not_at_all():
    assert display_width("2026-11-21") == 10
    assert display_width("2026年11月21日") == 4 + 2 + 2 + 2 + 2 + 2
    assert display_width("2026년 11월") == 4 + 2 + 1 + 2 + 2
    assert display_width("e\u0301") == 1 and display_width("\u200f21") == 2
    assert pad("日", 4) == "日  " and pad("7", 3, ">") == "  7"


def columns_of(line: str) -> list[int]:
    """Screen columns of the ``|`` in ``line``, counting by hand: these strings hold only ASCII, Han and
    Hangul (two columns each)."""
    positions, column = [], 0
    for c in line:
        if c == "|":
            positions.append(column)
        column += 2 if ("\u4e00" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7a3") else 1
    return positions


def test_a_table_of_cjk_and_ascii_rows_lines_up_on_screen():
    table = markdown_table(["input", "output"], [["2026年11月21日星期六", "2026-11-21"],
                                                 ["2026년 11월 21일 토요일", "2026-11-21"],
                                                 ["November 21, 2026", "2026-11-21"]])
    lines = table.splitlines()
    assert len(lines) == 5 and lines[1].startswith("|---")
    assert len({tuple(columns_of(line)) for line in lines}) == 1, table
