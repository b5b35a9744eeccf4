"""Language-model data: the 90/10 character split, tokenizer round trips, the memory-mapped ids,
random contiguous blocks with exact resume, and clear errors."""

import numpy as np
import pytest

from seqlab.data import token_stream
from seqlab.data.tokenizer import train_tokenizer
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
