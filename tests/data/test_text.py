"""Reading the user's text files and standard input: hand-written files, their expected lines and messages."""

import gzip
import io
import sys

import pytest

from seqlab.data.text import decode_text, read_lines, read_parallel, read_stdin_lines, read_tsv_pairs
from seqlab.errors import DataError


def test_read_lines_keeps_each_lines_text(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("two  words\r\ncafé\n\nlast\n".encode())
    assert read_lines(path) == ["two  words", "café", "", "last"]
    path.write_bytes(b"one\nno final newline")
    assert read_lines(path) == ["one", "no final newline"]
    path.write_bytes(b"a\n\nb")
    assert read_lines(path) == ["a", "", "b"]
    path.write_bytes(b"only\n")
    assert read_lines(path) == ["only"]
    path.write_bytes("\ufeffBOM first\n\ufeffsecond\n".encode())  # an editor's byte-order mark: not text
    assert read_lines(path) == ["BOM first", "\ufeffsecond"]
    path.write_bytes("\ufeffutf-16\n".encode("utf-16"))  # its own mark, and the one written after it
    assert read_lines(path, encoding="utf-16") == ["utf-16"]


def test_read_lines_gzip_and_encoding(tmp_path):
    (tmp_path / "x.gz").write_bytes(gzip.compress("eins\nzwei\n".encode()))
    assert read_lines(tmp_path / "x.gz") == ["eins", "zwei"]
    (tmp_path / "x.GZ").write_bytes(gzip.compress(b"plain?\n"))  # only a lower-case .gz is decompressed
    with pytest.raises(DataError, match="x.GZ is not valid utf-8"):
        read_lines(tmp_path / "x.GZ")
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    assert read_lines(tmp_path / "latin.txt", encoding="latin-1") == ["café"]


def test_read_lines_errors(tmp_path):
    with pytest.raises(DataError, match="file not found: .*missing.txt"):
        read_lines(tmp_path / "missing.txt")
    for blank in (" \n\t\n", "\n\n"):
        (tmp_path / "blank.txt").write_text(blank)
        with pytest.raises(DataError, match="blank.txt is empty"):
            read_lines(tmp_path / "blank.txt")
    (tmp_path / "latin.txt").write_bytes("ok\ncafé\n".encode("latin-1"))
    # no command that reads a text file this way has an encoding flag: the advice offers none
    with pytest.raises(DataError, match=r"latin.txt is not valid utf-8 \(line 2, byte 6\); convert it to UTF-8$"):
        read_lines(tmp_path / "latin.txt")
    assert read_lines(tmp_path / "latin.txt", encoding="latin-1") == ["ok", "café"]
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_lines(tmp_path / "latin.txt", encoding="klingon")
    (tmp_path / "broken.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read .*broken.gz: "):
        read_lines(tmp_path / "broken.gz")


def test_decode_text_names_the_line_and_byte():
    assert decode_text("é\n".encode(), "utf-8", "x") == "é\n"
    with pytest.raises(DataError, match=r"^notes is not valid ascii \(line 3, byte 5\); fix it$"):
        decode_text(b"a\nb\nc\xff", "ascii", "notes", "fix it")
    with pytest.raises(DataError, match=r"^notes is not valid ascii \(line 1, byte 0\); convert it to UTF-8$"):
        decode_text(b"\xff", "ascii", "notes")
    with pytest.raises(DataError, match="^unknown encoding 'klingon'$"):
        decode_text(b"a", "klingon", "notes")
    with pytest.raises(DataError, match=r"^notes is not valid punycode \(decoding with 'punycode' codec failed"):
        decode_text(b"a,b", "punycode", "notes")  # a codec's own UnicodeError, not a UnicodeDecodeError


def test_read_stdin_lines_from_text_and_byte_streams(monkeypatch):
    assert read_stdin_lines(io.StringIO("a b\r\nc\n")) == ["a b", "c"]
    assert read_stdin_lines(io.StringIO("a\nb")) == ["a", "b"]
    assert read_stdin_lines(io.StringIO("a\n\nb\n")) == ["a", "", "b"]
    assert read_stdin_lines(io.StringIO("")) == []
    # A byte stream is read from its buffer as UTF-8, whatever the text layer's own encoding.
    assert read_stdin_lines(io.TextIOWrapper(io.BytesIO("café\nb\n".encode()), encoding="latin-1")) == ["café", "b"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin\n"))
    assert read_stdin_lines() == ["from stdin"]


def test_read_stdin_lines_bad_bytes_are_one_clear_error():
    stream = io.TextIOWrapper(io.BytesIO(b"ok\nb\xffd\n"), encoding="utf-8")
    with pytest.raises(DataError, match=r"^standard input is not valid utf-8 \(line 2, byte 4\); convert it to "
                                        "UTF-8$"):
        read_stdin_lines(stream)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_parallel(tmp_path):
    src, tgt = write(tmp_path / "src.txt", "a b\nc\n"), write(tmp_path / "tgt.txt", "x\ny z\n")
    assert read_parallel(src, tgt) == (["a b", "c"], ["x", "y z"])
    with pytest.raises(DataError, match=r"src.txt has 2 lines but .*three.txt has 3; parallel files must align line "
                                        "by line"):
        read_parallel(src, write(tmp_path / "three.txt", "1\n2\n3\n"))
    with pytest.raises(DataError, match=r"holes.txt: line 2 is empty"):
        read_parallel(write(tmp_path / "holes.txt", "a\n \n"), tgt)
    with pytest.raises(DataError, match=r"holes.txt: line 2 is empty"):
        read_parallel(src, tmp_path / "holes.txt")


def test_read_tsv_pairs(tmp_path):
    path = write(tmp_path / "p.tsv", '"hi" she said\t"hallo" sagte sie\nNA\t007\n')
    assert read_tsv_pairs(path) == (['"hi" she said', "NA"], ['"hallo" sagte sie', "007"])
    numbers = write(tmp_path / "n.tsv", "1\t007\n2\t3.50\n")  # kept as written, not parsed as numbers
    assert read_tsv_pairs(numbers) == (["1", "2"], ["007", "3.50"])


@pytest.mark.parametrize("text, message", [
    ("a\tb\nno tab here\n", "p.tsv: line 2 has no tab; each line must be source<TAB>target"),
    ("a\tb\nc\td\te\n", "p.tsv: line 2 has 3 tab-separated columns; expected 2 \\(source, target\\)"),
    ("a\tb\tc\n", "p.tsv: line 1 has 3 tab-separated columns; expected 2 \\(source, target\\)"),
    ("a\tb\n\tc\n", "p.tsv: line 2 is empty"),
    ("a\tb\nc\td\ne\t \n", "p.tsv: line 3 is empty"),
    ("a\tb\n\n  \nc\td\n\t e\n", "p.tsv: line 5 is empty"),  # blank lines are skipped, and counted
    ("a\tb\n\nc\td\n\ne\tf\tg\n", "p.tsv: line 5 has 3 tab-separated columns"),
])
def test_read_tsv_pairs_errors(tmp_path, text, message):
    with pytest.raises(DataError, match=message) as refused:
        read_tsv_pairs(write(tmp_path / "p.tsv", text))
    assert "\n" not in str(refused.value)  # pandas' own message ends in a line break: an empty second line
