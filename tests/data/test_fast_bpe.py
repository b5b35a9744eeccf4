"""tiktoken's encoding of a trained byte-level BPE equals HF tokenizers' own (the reference), and any
tokenizer it could not reproduce gets no fast encoder."""

import json
import random
import threading

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers

from seqlab.data import fast_bpe, token_stream
from seqlab.data.tokenizer import train_tokenizer

WORDS = ("the of and to in is it that was he for on are with as his they be at one have this from or had by "
         "not word but what some we can out other were all there when up use your how said an each she").split()


def corpus(n_lines: int, seed: int = 0) -> list[str]:
    """Zipf-ish English words with numbers, punctuation, contractions, accents, CJK and odd whitespace."""
    rng = random.Random(seed)
    extras = ["'s", "'ll", "n't", "42", "3.14", "über", "naïve", "日本語", "😀", "--", "...", "\t", "  ", "\r\n"]
    return [" ".join(rng.choice(WORDS[: rng.randint(1, len(WORDS))] + extras) for _ in range(rng.randint(1, 20)))
            + rng.choice(["\n", "\n\n", " \n", ""]) for _ in range(n_lines)]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return train_tokenizer(corpus(3000), "bytebpe", 600)


def reference(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch(texts)]


def fast_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    encode = fast_bpe.piece_encoder(tokenizer)
    assert encode is not None
    return [encode(text).tolist() for text in texts]


def test_the_byte_alphabet_is_hfs():
    symbol_byte = fast_bpe.byte_of_symbol()
    # every byte a UTF-8 string can hold (C0, C1 and F5-FF never occur), each from its own symbol
    assert sorted(symbol_byte.values()) == sorted(set(range(256)) - {0xC0, 0xC1, *range(0xF5, 0x100)})
    assert set(symbol_byte) <= set(pre_tokenizers.ByteLevel.alphabet())
    assert symbol_byte["Ġ"] == ord(" ") and symbol_byte["a"] == ord("a") and symbol_byte["Ċ"] == ord("\n")


def test_the_ids_are_hfs_on_text_it_was_trained_on_and_on_new_text(tokenizer):
    for texts in (corpus(500), corpus(500, seed=1)):
        assert fast_ids(tokenizer, texts) == reference(tokenizer, texts)


def test_the_ids_are_hfs_on_random_strings(tokenizer):
    """Random runs of letters, digits, spaces of every kind, apostrophes and symbols, and words cut apart:
    where the pre-tokenizer's pattern or a merge's order could differ."""
    rng = random.Random(7)
    alphabet = "thequickbrownfx THE 0123456789 '\"sdmtlvre .,;-_!?\n\r\t\x0b\x0c\x85\xa0\u2003\u3000ü日😀"
    words = " ".join(corpus(200)).split(" ")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts += ["".join(w[rng.randint(0, len(w)):] + w[: rng.randint(0, len(w))] for w in rng.sample(words, 5))
              for _ in range(3000)]
    assert fast_ids(tokenizer, texts) == reference(tokenizer, texts)


def test_the_ids_are_hfs_for_every_assigned_code_point(tokenizer):
    """Each code point between letters, spaces, digits and an apostrophe: the pattern's letter, number
    and space classes (the Unicode tables the two regex engines hold) agree. Every code point of the
    planes Unicode assigns characters in (0-3, 14), every 97th of the others (unassigned, private use)."""
    points = [chr(c) for c in range(0x110000)
              if not 0xD800 <= c <= 0xDFFF and (c >> 16 in (0, 1, 2, 3, 14) or c % 97 == 0)]
    texts = ["".join(f"a{c}a {c}1'{c}s\n{c} x" for c in points[i : i + 256]) for i in range(0, len(points), 256)]
    assert fast_ids(tokenizer, texts) == reference(tokenizer, texts)


def test_an_added_token_written_in_a_text_encodes_as_itself(tokenizer):
    texts = ["a<eos>b", "<pad><bos> x <unk>", "<eos", "<<eos>>", "it's <bos>\n"]
    assert fast_ids(tokenizer, texts) == reference(tokenizer, texts)


def _edited(tokenizer: Tokenizer, edit) -> Tokenizer:
    data = json.loads(tokenizer.to_str())
    edit(data)
    return Tokenizer.from_str(json.dumps(data))


def _swap_two_merged_ids(data):
    vocab, (a, b), (c, d) = data["model"]["vocab"], data["model"]["merges"][10], data["model"]["merges"][20]
    vocab[a + b], vocab[c + d] = vocab[c + d], vocab[a + b]


@pytest.mark.parametrize("edit", [
    _swap_two_merged_ids,                                                   # ids out of merge order
    lambda d: d["model"]["merges"].pop(30),                                 # a token no merge makes
    lambda d: d["model"].update(dropout=0.1),
    lambda d: d["model"].update(ignore_merges=True),
    lambda d: d["model"].update(byte_fallback=True),
    lambda d: d["pre_tokenizer"].update(add_prefix_space=True),
    lambda d: d["pre_tokenizer"].update(use_regex=False),
    lambda d: d["added_tokens"][2].update(lstrip=True),
    lambda d: d.update(normalizer=json.loads(normalizers.Lowercase().__getstate__())),
], ids=["merge-order", "unmerged-token", "dropout", "ignore-merges", "byte-fallback", "prefix-space", "no-regex",
        "lstrip", "normalizer"])
def test_a_tokenizer_it_could_not_reproduce_gets_no_encoder(tokenizer, edit):
    assert fast_bpe.piece_encoder(_edited(tokenizer, edit)) is None


def test_other_kinds_get_no_encoder():
    assert fast_bpe.piece_encoder(train_tokenizer(["some words here"], "char", 100)) is None
    assert fast_bpe.piece_encoder(train_tokenizer(["some words here"], "bpe", 100)) is None  # Metaspace


def test_the_corpus_file_is_written_through_it(tokenizer, tmp_path, monkeypatch):
    """encode_to_file takes the fast encoder for this tokenizer, on several threads, and its file holds
    HF's ids in the pieces' order."""
    threads = set()
    real = fast_bpe.piece_encoder

    def counted(tok):
        encode = real(tok)
        return lambda text: threads.add(threading.get_ident()) or encode(text)

    monkeypatch.setattr(fast_bpe, "piece_encoder", counted)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    pieces = corpus(400, seed=3)
    tokens, _ = token_stream.encode_to_file(tokenizer, pieces, tmp_path / "ids.bin")
    ids = np.fromfile(tmp_path / "ids.bin", dtype=np.uint16).tolist()
    assert len(threads) > 1 and ids == [i for piece in reference(tokenizer, pieces) for i in piece] and tokens == len(ids)
