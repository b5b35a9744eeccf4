"""Language-model data: the 90/10 character split, folders and glob patterns read as one text,
pieces whose ids are those of the whole text, tokenizer round trips, the memory-mapped ids, random
contiguous blocks with exact resume, and clear errors."""

import numpy as np
import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from seqlab.data import token_stream
from seqlab.data.tokenizer import SPECIALS, UNK, char_lookup, train_tokenizer
from seqlab.errors import DataError

TEXT = "".join(f"line {i}: the quick brown fox, jumps — über the lazy dog.\n" for i in range(300))


@pytest.fixture()
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_split_is_the_last_fraction_of_the_characters(text_file, monkeypatch):
    monkeypatch.setattr(token_stream, "CHUNK_CHARS", 1000)  # many pieces, the split inside a line
    pieces = token_stream.split_text(text_file, 0.1)
    train, valid = list(pieces["train"]()), list(pieces["valid"]())
    assert len(train) > 5
    cut = int(len(TEXT) * 0.9)
    assert "".join(train) == TEXT[:cut] and "".join(valid) == TEXT[cut:]


@pytest.mark.parametrize("kind", ["char", "bytebpe"])
def test_ids_on_disk_round_trip_through_the_tokenizer(text_file, tmp_path, kind):
    pieces = token_stream.split_text(text_file, 0.1)
    tokenizer = train_tokenizer(pieces["train"](), kind, 300)
    tokens, chars = token_stream.encode_to_file(tokenizer, pieces["train"](), tmp_path / "train.bin")
    ids = token_stream.open_tokens(tmp_path / "train.bin", tokenizer.get_vocab_size())
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint16 and len(ids) == tokens
    assert tokenizer.decode(ids.tolist()) == TEXT[:chars]
    if kind == "bytebpe":
        assert tokens < chars  # merges happened
        unseen = "ünseen ✓ text\n\twith tabs"
        assert tokenizer.decode(tokenizer.encode(unseen).ids) == unseen  # any text, byte-level


def test_blocks_are_shifted_pairs_and_resume_exactly():
    ids = np.arange(1000, dtype=np.uint16)
    batches = token_stream.BlockBatches(ids, block_size=16, batch_size=4, seed=3)
    first = next(batches)
    assert first["x"].shape == (4, 16)
    assert (first["y"] == first["x"] + 1).all()  # contiguous: y is x one token on
    assert ((first["x"][:, 1:] - first["x"][:, :-1]) == 1).all()
    next(batches)
    state = batches.state_dict()
    expected = next(batches)
    resumed = token_stream.BlockBatches(ids, 16, 4, seed=0)
    resumed.load_state_dict(state)
    assert (next(resumed)["x"] == expected["x"]).all()


def test_evaluation_blocks_tile_the_validation_text_without_overlap():
    starts = token_stream.evaluation_blocks(np.arange(100), block_size=16)
    assert starts.tolist() == [0, 16, 32, 48, 64, 80]  # the last block reads ids 80 … 96
    assert token_stream.evaluation_blocks(np.arange(100), 16, max_tokens=40).tolist() == [0, 16]


def test_bad_text_is_a_clear_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        token_stream.split_text(tmp_path / "missing.txt", 0.1)
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        token_stream.split_text(tmp_path / "empty.txt", 0.1)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        token_stream.split_text(tmp_path / "latin1.txt", 0.1)
    with pytest.raises(DataError, match="block"):
        token_stream.BlockBatches(np.arange(10), block_size=16, batch_size=2, seed=0)
    with pytest.raises(DataError, match="validation"):
        token_stream.evaluation_blocks(np.arange(10), block_size=16)


def test_default_corpus_is_the_standard_library_source():
    text = "".join(token_stream.python_stdlib_corpus(50_000))
    assert len(text) == 50_000
    assert "def " in text and "import " in text


# Blank lines, indented lines, CRLF, trailing spaces, tabs, a long line: where cuts could change the ids.
HARD_TEXT = "".join(f"def f{i}(x):\n    return x  \n\n\n\tpass\r\nline {i} über\n" for i in range(40)) + \
    " ".join(f"word{i}" for i in range(200)) + "\n  \n"


@pytest.mark.parametrize("kind", ["char", "bytebpe"])
def test_pieces_encode_to_the_ids_of_the_whole_text(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(token_stream, "CHUNK_CHARS", 64)  # many pieces, many batches of them
    monkeypatch.setattr(token_stream, "BATCH_PIECES", 3)
    path = tmp_path / "hard.txt"
    path.write_bytes(HARD_TEXT.encode("utf-8"))
    tokenizer = train_tokenizer([HARD_TEXT], kind, 300)
    pieces = list(token_stream.text_pieces(path))
    assert len(pieces) > 20 and "".join(pieces) == HARD_TEXT
    tokens, chars = token_stream.encode_to_file(tokenizer, pieces, tmp_path / "ids.bin")
    ids = np.fromfile(tmp_path / "ids.bin", dtype=np.uint16)
    assert ids.tolist() == tokenizer.encode(HARD_TEXT).ids and (tokens, chars) == (len(ids), len(HARD_TEXT))
    if kind == "bytebpe":  # why pieces are not cut after every line: the ids would change
        lines = HARD_TEXT.splitlines(keepends=True)
        assert [i for e in tokenizer.encode_batch(lines) for i in e.ids] != ids.tolist()


@pytest.fixture()
def folder(tmp_path):
    """Files in a tree, hidden ones among them, and the order ``text_files`` must give them in."""
    root = tmp_path / "corpus"
    contents = {"b.txt": "bravo\n", "a/z.txt": "zulu\n", "a/b.txt": "alpha no newline", "a-c.txt": "dash\n",
                "c/d/e.md": "echo\n", ".hidden.txt": "HIDDEN\n", ".git/config": "GIT\n", "a/.x": "X\n"}
    for name, text in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    # Path order compares folder by folder: a/… before a-c.txt ("a" < "a-c"), hidden files left out.
    order = ["a/b.txt", "a/z.txt", "a-c.txt", "b.txt", "c/d/e.md"]
    return root, order, "alpha no newlinezulu\ndash\nbravo\necho\n"


def test_a_folder_is_its_files_in_sorted_path_order(folder, monkeypatch):
    root, order, joined = folder
    assert token_stream.text_files(root) == [root / name for name in order]
    monkeypatch.setattr(token_stream, "CHUNK_CHARS", 4)  # blocks and pieces across the files' edges
    pieces = token_stream.split_text(root, 0.2)
    cut = int(len(joined) * 0.8)
    assert "".join(pieces["train"]()) == joined[:cut] and "".join(pieces["valid"]()) == joined[cut:]
    assert token_stream.count_characters(root) == len(joined)


def test_a_glob_pattern_is_the_files_it_matches_sorted(folder):
    root, _, _ = folder
    assert token_stream.text_files(root / "a" / "*.txt") == [root / "a/b.txt", root / "a/z.txt"]
    assert token_stream.text_files(f"{root}/**/*.txt") == [root / n for n in ("a/b.txt", "a/z.txt", "a-c.txt",
                                                                               "b.txt")]
    assert "".join(token_stream.text_pieces(root / "?.txt")) == "bravo\n"


def test_folders_and_patterns_that_give_no_text_are_data_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no files in it"):
        token_stream.text_files(tmp_path / "empty")
    (tmp_path / "only-hidden").mkdir()
    (tmp_path / "only-hidden" / ".notes").write_text("text\n")
    with pytest.raises(DataError, match="no files in it"):
        token_stream.text_files(tmp_path / "only-hidden")
    with pytest.raises(DataError, match="no files match"):
        token_stream.text_files(tmp_path / "*.txt")
    (tmp_path / "blank").mkdir()
    for name in ("a.txt", "b.txt"):
        (tmp_path / "blank" / name).write_text(" \n")
    with pytest.raises(DataError, match="empty"):
        token_stream.count_characters(tmp_path / "blank")
    (tmp_path / "blank" / "c.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="c.txt is not valid UTF-8"):  # the file is named
        token_stream.split_text(tmp_path / "blank", 0.1)



def test_the_char_lookup_equals_the_tokenizers_own_encoding():
    tokenizer = train_tokenizer(["héllo wörld\n\tabc 年月"], "char", 1 << 20)
    lookup = char_lookup(tokenizer)
    for text in ["", "hello", "héllo\r\n\twörld 年", "unseen: Z😀€ and 日", "a <unk> b <pad><eos>x", "<bos"]:
        assert lookup(text).tolist() == tokenizer.encode(text).ids, text
    assert char_lookup(train_tokenizer(["some words here"], "bytebpe", 300)) is None  # other kinds: none
    assert char_lookup(train_tokenizer(["some words here"], "word", 100)) is None


def _trained_by_the_library(texts: list[str], vocab_size: int) -> Tokenizer:
    """The char tokenizer as ``WordLevelTrainer`` makes it over a one-character split (the reference)."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=1,
                                                                    special_tokens=SPECIALS, show_progress=False))
    return tokenizer


@pytest.mark.parametrize("texts,vocab_size", [(["héllo wörld\n\tabc 年月"], 1 << 20),
                                              (["aabbcc", "zyx\r\n😀😀 <pad>", "ties: qpqp"], 1 << 20),
                                              (["aaabbcdd e"], 7),  # cut at the vocabulary size
                                              ([f"pair {i}: {i % 97} ü\n" for i in range(100_000)], 1 << 20)])
def test_the_char_tokenizer_is_the_one_the_library_trains(texts, vocab_size):
    assert train_tokenizer(texts, "char", vocab_size).to_str() == _trained_by_the_library(texts, vocab_size).to_str()


def test_each_files_byte_order_mark_is_left_out(tmp_path):
    """Editors on Windows start a UTF-8 file with a byte-order mark: not text, so not a token."""
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.txt").write_bytes("\ufeffone\n".encode("utf-8"))
    (root / "b.txt").write_bytes("\ufefftwo \ufeff three\n".encode("utf-8"))  # inside a text it stays
    assert "".join(token_stream.text_pieces(root)) == "one\ntwo \ufeff three\n"
    assert token_stream.count_characters(root) == len("one\ntwo \ufeff three\n")
