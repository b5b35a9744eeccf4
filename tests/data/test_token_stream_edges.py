"""Language-model data at its edges, against hand-worked values: where pieces are cut, the split-length
check and its messages, block and evaluation offsets at their limits, the id dtype's threshold, the
memory-mapped file, the default corpus's skipped folders (on a made-up standard library), and files read
as UTF-8 under an ASCII locale."""

import os
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

from seqlab.data import token_stream
from seqlab.errors import DataError


@pytest.mark.parametrize("text, cut", [
    ("ab\ncd", 2),  # the line break, a character follows it
    ("abcdef\nx", 6),  # a line break just before the last character still counts
    ("a\nbcdefgh", 0),  # a line break in the first quarter does not
    ("a\nbbbbbb", 0),
    ("aaaa\nb\nc", 6),  # the last one
    ("a\nbc", 1),
    ("a \ncd", 2),  # the character after the break decides, not the one before
    ("abcdefgh", 0),  # nowhere to cut
    ("ab cd ", 2),  # a space at the very end waits for what follows
])
def test_the_last_safe_cut(text, cut):
    assert token_stream._last_safe_cut(text) == cut


def _write(tmp_path, text: str):
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_pieces_are_cut_where_the_pre_tokenizer_splits(tmp_path, monkeypatch):
    monkeypatch.setattr(token_stream, "CHUNK_CHARS", 8)
    # blocks "abc def\n" | "ghi jkl " | "mno": each cut at its last safe place
    pieces = list(token_stream.text_pieces(_write(tmp_path, "abc def\nghi jkl mno")))
    assert pieces == ["abc", " def", "\nghi jkl", " mno"]


def test_a_text_without_spaces_is_cut_after_eight_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(token_stream, "CHUNK_CHARS", 4)
    text = "abcdefghijklmnopqrstuvwxyz0123456789AB"  # 38 characters, nowhere safe to cut
    assert list(token_stream.text_pieces(_write(tmp_path, text))) == [text[:32], text[32:]]


def test_the_training_part_stops_at_the_cut_even_on_a_block_boundary(tmp_path, monkeypatch):
    monkeypatch.setattr(token_stream, "CHUNK_CHARS", 8)
    text = "aaaaa\n\n\nb c d e f g h i j k l m "  # 32 characters: the cut at 16 ends the second block
    parts = token_stream.split_text(_write(tmp_path, text), 0.5)
    assert list(parts["train"]()) == ["aaaaa\n\n", "\nb c d e "]
    assert "".join(parts["valid"]()) == text[16:]


def test_an_empty_source_is_named_in_the_error(tmp_path):
    path = _write(tmp_path, " \n ")
    for read in (token_stream.count_characters, token_stream.text_pieces, lambda p: token_stream.split_text(p, 0.1)):
        with pytest.raises(DataError, match=f"^{path} is empty$"):
            read(path)


def test_split_lengths_pass_at_the_limit_and_fail_just_past_it(tmp_path):
    # 100 characters, a tenth for validation: 90 train, 10 validate; a block of b needs b + 1
    token_stream.check_split_lengths("corpus", 0.1, block_size=9, characters=100)
    with pytest.raises(DataError) as error:
        token_stream.check_split_lengths("corpus", 0.1, block_size=10, characters=100)
    assert str(error.value) == ("corpus has 100 characters, 10 of them in the validation part; a block of 10 needs at "
                                "least 11 (use a longer text, a smaller data.block_size or a larger data.valid_fraction)")
    token_stream.check_split_lengths("corpus", 0.95, block_size=4, characters=100)  # 5 train
    with pytest.raises(DataError) as error:
        token_stream.check_split_lengths("corpus", 0.95, block_size=5, characters=100)
    assert str(error.value) == ("corpus has 100 characters, 5 of them in the training part; a block of 5 needs at "
                                "least 6 (use a longer text, a smaller data.block_size)")
    path = _write(tmp_path, "x" * 20)  # counted when not given: 18 train, 2 validate
    token_stream.check_split_lengths(path, 0.1, block_size=1)
    with pytest.raises(DataError, match="2 of them in the validation part"):
        token_stream.check_split_lengths(path, 0.1, block_size=2)


def test_first_characters():
    pieces = ["abc", "de", "fgh"]
    assert list(token_stream.first_characters(pieces, 4)) == ["abc", "d"]
    assert list(token_stream.first_characters(pieces, 5)) == ["abc", "de"]
    assert list(token_stream.first_characters(pieces, 0)) == []
    assert list(token_stream.first_characters(pieces, 100)) == pieces


def test_blocks_need_one_token_more_than_a_block():
    ids = np.arange(17, dtype=np.uint16)
    batch = next(token_stream.BlockBatches(ids, block_size=16, batch_size=3, seed=0))  # one possible offset: 0
    assert batch["x"].tolist() == [list(range(16))] * 3 and batch["y"].tolist() == [list(range(1, 17))] * 3
    with pytest.raises(DataError, match="^the training text has 16 tokens; a block of 16 needs at least 17 "):
        token_stream.BlockBatches(ids[:16], block_size=16, batch_size=3, seed=0)


def test_block_offsets_cover_the_whole_range():
    batches = token_stream.BlockBatches(np.arange(6), block_size=3, batch_size=64, seed=1)
    starts = {row[0] for _ in range(5) for row in next(batches)["x"].tolist()}
    assert starts == {0, 1, 2}  # ids 0 … 5: a block of 3 and its next token start at 0, 1 or 2


def test_evaluation_blocks_at_their_limits():
    assert token_stream.evaluation_blocks(np.arange(5), block_size=1).tolist() == [0, 1, 2, 3]
    assert token_stream.evaluation_blocks(np.arange(7), block_size=2).tolist() == [0, 2, 4]
    assert token_stream.evaluation_blocks(np.arange(5), block_size=4).tolist() == [0]  # exactly one block
    with pytest.raises(DataError, match="^the validation text has 4 tokens; a block of 4 needs at least 5 "):
        token_stream.evaluation_blocks(np.arange(4), block_size=4)


def test_token_dtype_and_the_mapped_file(tmp_path):
    assert token_stream.token_dtype(65536) == np.uint16  # ids 0 … 65535 fit
    assert token_stream.token_dtype(65537) == np.uint32
    (tmp_path / "empty.bin").write_bytes(b"")
    for vocab_size, dtype in ((300, np.uint16), (70_000, np.uint32)):
        empty = token_stream.open_tokens(tmp_path / "empty.bin", vocab_size)
        assert empty.shape == (0,) and empty.dtype == dtype
    np.array([7, 70_000], dtype=np.uint32).tofile(tmp_path / "ids.bin")
    ids = token_stream.open_tokens(tmp_path / "ids.bin", 70_001)
    assert ids.tolist() == [7, 70_000] and not ids.flags.writeable  # read-only


def test_default_corpus_skips_tests_and_third_party_code(tmp_path, monkeypatch):
    files = {"a.py": "A", "b.py": None, "idlelib/x.py": "I", "lib2to3/x.py": "L", "m/tests/x.py": "T",
             "m/y.py": "M", "site-packages/x.py": "S", "test/x.py": "T", "z.py": "Z", "z.txt": "not python"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"caf\xe9" if text is None else text.encode())  # b.py: not UTF-8
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"stdlib": str(tmp_path)})
    assert list(token_stream.python_stdlib_corpus(100)) == ["A", "M", "Z"]
    assert list(token_stream.python_stdlib_corpus(2)) == ["A", "M"]


def test_an_unreadable_file_is_a_data_error_with_the_systems_reason(tmp_path, monkeypatch):
    import errno

    path = _write(tmp_path, "some text")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(token_stream, "open", refuse, raising=False)  # the module's open, not the builtin
    with pytest.raises(DataError) as error:
        token_stream.count_characters(path)
    assert str(error.value) == f"cannot read {path}: Permission denied"


def test_text_is_read_as_utf_8_whatever_the_locale(tmp_path):
    """Under a plain ASCII locale (no UTF-8 mode, no locale coercion) the text and the default corpus still
    read as UTF-8: the encoding is named, never left to the locale."""
    import os
    import subprocess
    import sys

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.py").write_text("ü = 1\n", encoding="utf-8")
    _write(tmp_path, "über\n")
    script = ("import sys, sysconfig; from seqlab.data import token_stream as t; "
              "sysconfig.get_paths = lambda: {'stdlib': sys.argv[2]}; "
              "print(sys.getfilesystemencoding(), t.count_characters(sys.argv[1]), list(t.python_stdlib_corpus(9)))")
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", PYTHONIOENCODING="utf-8")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "text.txt"), str(tmp_path / "lib")],
                         env=env, capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(" ", 1)[1].strip() == "5 ['ü = 1\\n']"


def test_an_unreadable_subfolder_is_a_data_error(tmp_path, monkeypatch):
    import errno
    import os

    _write(tmp_path, "text")
    walk = os.walk

    def walk_that_meets_a_locked_folder(top, onerror=None, **kwargs):
        if onerror is not None:
            onerror(PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "locked")))
        yield from walk(top, **kwargs)

    monkeypatch.setattr(token_stream.os, "walk", walk_that_meets_a_locked_folder)
    with pytest.raises(DataError, match=f"^cannot read {tmp_path / 'locked'}: Permission denied$"):
        token_stream.text_files(tmp_path)


def test_files_are_read_as_utf8_under_an_ascii_locale(tmp_path):
    # a C locale without Python's UTF-8 mode makes ASCII the locale's encoding: the reader must not use it
    (tmp_path / "text.txt").write_text("café naïve\n", encoding="utf-8")
    (tmp_path / "mod.py").write_text("x = 'é'\n", encoding="utf-8")
    code = ("import locale, sys, sysconfig; from pathlib import Path; from seqlab.data import token_stream\n"
            "root = Path(sys.argv[1]); sysconfig.get_paths = lambda: {'stdlib': str(root)}\n"
            "print(locale.getencoding())\n"
            "print(ascii(''.join(token_stream._read(root / 'text.txt', 4))))\n"
            "print(ascii(list(token_stream.python_stdlib_corpus(100))))")
    env = {**os.environ, "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[1:] == [ascii("café naïve\n"), ascii(["x = 'é'\n"])]
