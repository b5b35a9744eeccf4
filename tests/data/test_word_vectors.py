"""Word vectors: GloVe text files read against hand-written files, the embedding matrix against hand-placed
rows, word2vec against gensim called directly with the documented settings."""

import io

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from seqlab.data import word_vectors
from seqlab.data.word_vectors import embedding_matrix, read_glove, train_word2vec
from seqlab.errors import DataError

# Nine-word sentences: a window of 5 and one of 6 see different contexts.
SENTENCES = [s.split() for s in ["the old film was good and the story was long",
                                 "a new film was bad but the music was short",
                                 "the story of the film was good and very long",
                                 "music and story were bad in the new film"] * 6] + [["rare", "film"]]


def gensim_vectors(sentences, dim, sg, epochs, seed, min_count):
    from gensim.models import Word2Vec

    model = Word2Vec(sentences, vector_size=dim, sg=sg, window=5, min_count=min_count, workers=1, seed=seed,
                     epochs=epochs)
    return {word: model.wv[word] for word in model.wv.index_to_key}


def assert_same_vectors(got, expected):
    assert sorted(got) == sorted(expected)
    for word, vector in expected.items():
        np.testing.assert_array_equal(got[word], vector)


@pytest.mark.parametrize("skip_gram", [True, False])
def test_word2vec_defaults_are_ten_epochs_seed_0_window_5_every_word(skip_gram):
    got = train_word2vec(SENTENCES, 6, skip_gram=skip_gram)
    assert "rare" in got and got["film"].shape == (6,)  # min_count 1: a word seen once has a vector
    assert_same_vectors(got, gensim_vectors(SENTENCES, 6, int(skip_gram), epochs=10, seed=0, min_count=1))


def test_word2vec_passes_epochs_seed_and_min_count_on():
    got = train_word2vec(SENTENCES, 4, skip_gram=True, epochs=3, seed=5, min_count=2)
    assert "rare" not in got
    assert_same_vectors(got, gensim_vectors(SENTENCES, 4, 1, epochs=3, seed=5, min_count=2))


def test_word2vec_is_one_thread_so_the_seed_fixes_the_vectors():
    # Several jobs per epoch (gensim's batches are 10,000 words): more than one worker thread would
    # interleave them and the vectors would no longer equal single-threaded gensim's.
    sentences = SENTENCES[:4] * 700
    got = train_word2vec(sentences, 4, skip_gram=False, epochs=2, seed=3)
    assert_same_vectors(got, gensim_vectors(sentences, 4, 0, epochs=2, seed=3, min_count=1))


def test_glove_file_words_and_numbers(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0.5 -1 2\ncafé 1e-3 0 4.25\nnew\u00a0york 3 2 1\n7 1 2 3\n", encoding="utf-8")
    vectors = read_glove(path)
    assert list(vectors) == ["the", "café", "new\u00a0york", "7"]
    assert all(v.dtype == np.float32 for v in vectors.values())
    assert vectors["the"].tolist() == [0.5, -1.0, 2.0]
    assert vectors["café"].tolist() == pytest.approx([0.001, 0.0, 4.25])
    assert vectors["new\u00a0york"].tolist() == [3.0, 2.0, 1.0]  # only a space separates fields
    assert vectors["7"].tolist() == [1.0, 2.0, 3.0]  # a line of digits past line 1 is a word, not a header


def test_glove_word2vec_header_line_is_skipped(tmp_path):
    path = tmp_path / "w2v.txt"
    path.write_text("2 3\nfilm 1 2 3\ngood 4 5 6\n", encoding="utf-8")
    vectors = read_glove(path)
    assert list(vectors) == ["film", "good"] and vectors["good"].tolist() == [4.0, 5.0, 6.0]
    path.write_text("film 1 2\n", encoding="utf-8")  # two fields on line 1 but not a header
    assert read_glove(path)["film"].tolist() == [1.0, 2.0]


def test_glove_file_is_utf8_whatever_the_systems_default_encoding(tmp_path, monkeypatch):
    path = tmp_path / "glove.txt"
    path.write_text("café 1 2\n", encoding="utf-8")

    def latin1_default_open(file, mode="r", encoding=None, errors=None, **options):  # a Latin-1 locale
        return io.open(file, mode, encoding=encoding or "latin-1", errors=errors, **options)

    monkeypatch.setattr(word_vectors, "open", latin1_default_open, raising=False)
    assert list(read_glove(path)) == ["café"]


def test_glove_file_errors(tmp_path):
    with pytest.raises(DataError, match="word-vector file not found: .*missing.txt"):
        read_glove(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="is a folder; give the word-vector file itself"):  # was "not found"
        read_glove(tmp_path)
    for value in ("inf", "nan", "-1e39"):  # inf was blamed on the learning rate; nan went in unnoticed
        (tmp_path / "odd.txt").write_text(f"film 1 2\ngood 3 {value}\n", encoding="utf-8")
        with pytest.raises(DataError, match="odd.txt line 2 holds a number that is not finite"):
            read_glove(tmp_path / "odd.txt")
    path = tmp_path / "bad.txt"
    path.write_text("film 1 2\ngood 3 4\nbad x 5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.txt line 3 is not 'word number number …'"):
        read_glove(path)
    path.write_bytes(b"film 1 2\ncaf\xe9 3 4\n")
    with pytest.raises(DataError, match="bad.txt is not valid UTF-8"):
        read_glove(path)
    path.write_text("a 1\nb 1 2\nc 1 2 3\nd 1 2 3 4\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.txt: vectors of different sizes \(\[1, 2, 3\] …\)"):
        read_glove(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="bad.txt is empty"):
        read_glove(path)
    path.write_text("3 2\n", encoding="utf-8")  # a header and nothing else
    with pytest.raises(DataError, match="bad.txt is empty"):
        read_glove(path)


def word_tokenizer(words):
    return Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token=words[0]))


def test_embedding_matrix_rows_follow_the_vocabulary():
    tokenizer = word_tokenizer(["<unk>", "film", "good", "bad", "story"])
    vectors = {"good": np.array([1, 2], np.float32), "film": np.array([-3, 0.5], np.float32),
               "story": np.array([0, 7], np.float32), "absent": np.array([9, 9], np.float32)}
    matrix, coverage = embedding_matrix(tokenizer, vectors, 2)
    assert matrix.dtype == torch.float32
    assert matrix.tolist() == [[0, 0], [-3, 0.5], [1, 2], [0, 0], [0, 7]]
    assert coverage == 3 / 5


def test_embedding_matrix_coverage_edges():
    one = word_tokenizer(["film"])
    matrix, coverage = embedding_matrix(one, {"film": np.array([2, 3], np.float32)}, 2)
    assert matrix.tolist() == [[2, 3]] and coverage == 1.0
    matrix, coverage = embedding_matrix(word_tokenizer(["<unk>", "film"]), {}, 3)  # no vectors: all zeros
    assert matrix.tolist() == [[0, 0, 0], [0, 0, 0]] and coverage == 0.0


def test_embedding_matrix_dimension_mismatch():
    with pytest.raises(DataError, match="the word vectors have 2 dimensions; model.d_model is 4 "
                                        r"\(set it to match\)"):
        embedding_matrix(word_tokenizer(["film"]), {"film": np.array([2, 3], np.float32)}, 4)
