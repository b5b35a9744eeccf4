"""Byte-level BPE at corpus scale: the merges of a trained HF tokenizer applied by tiktoken.

``train lm --text`` tokenises its whole corpus once. HF ``tokenizers`` encodes byte-level BPE at about
3.3 MB/s on 2 cores; tiktoken (OpenAI's BPE encoder, the one nanoGPT uses) applies the same merges
several times as fast (BENCHMARKS.md, "Byte-level BPE encoded by tiktoken"). The HF tokenizer stays
the reference: it is the one trained, saved as tokenizer.json and used for every other encoding and for
decoding, and ``tests/data/test_fast_bpe.py`` checks that the two give the same ids (random strings,
every assigned code point).

    piece_encoder(tokenizer)    a function text -> its ids, equal to the HF tokenizer's, or None

tiktoken's BPE merges, in a pre-token, the adjacent pair whose joined bytes have the lowest rank; HF's
merges the pair that comes first in its merge list. With a token's id as its rank the two agree when the
ids of the merged tokens rise in merge order and every token longer than a byte is a merge's result, as
the BPE trainer makes them (Sennrich et al. 2016 §3.1: each merge adds one symbol). Only a tokenizer of
exactly this shape gets an encoder; any other (a normaliser, another pre-tokenizer, dropout, ignored
merges, byte fallback, ids out of merge order, an added token that is not plain) gets None, and its
callers keep HF's own encoding.
"""

from __future__ import annotations

import json
from typing import Callable

import numpy as np
from tokenizers import Tokenizer, pre_tokenizers

# GPT-2's pre-tokenizer pattern (Radford et al. 2019 §2.2), as HF's ByteLevel(use_regex=True) has it
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Code points whose UTF-8 bytes hold every byte a Python string's UTF-8 can hold (all but C0, C1, F5-FF)
_EVERY_BYTE = "".join(map(chr, [*range(0x800), *range(0x800, 0xD000, 0x1000), 0xD7FF, 0xE000, 0xF000,
                                0x10000, 0x40000, 0x80000, 0xC0000, 0x100000]))
_PLAIN_MODEL = {"dropout": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                "byte_fallback": False, "ignore_merges": False}


def byte_of_symbol() -> dict[str, int]:
    """HF's byte-level alphabet read back from its own pre-tokenizer: symbol -> the byte it stands for."""
    (symbols, _), = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(_EVERY_BYTE)
    return dict(zip(symbols, _EVERY_BYTE.encode("utf-8")))


def _plain(tokenizer_json: dict) -> bool:
    """Whether tiktoken can reproduce this tokenizer's ids (see the module's docstring)."""
    model, pre = tokenizer_json.get("model") or {}, tokenizer_json.get("pre_tokenizer") or {}
    post = tokenizer_json.get("post_processor")
    return (model.get("type") == "BPE" and all(model.get(k, v) == v for k, v in _PLAIN_MODEL.items())
            and tokenizer_json.get("normalizer") is None
            and (pre.get("type"), pre.get("add_prefix_space"), pre.get("use_regex")) == ("ByteLevel", False, True)
            and (post is None or post.get("type") == "ByteLevel")
            and all(not (t["single_word"] or t["lstrip"] or t["rstrip"] or t["normalized"])
                    for t in tokenizer_json.get("added_tokens", [])))


def _ranks(tokenizer_json: dict) -> dict[bytes, int] | None:
    """Each token's bytes -> its id, if the ids of the merged tokens rise in merge order; else None.
    A lone byte no UTF-8 text holds (C0, C1, F5-FF) is left out: no string reaches it."""
    vocab, merges = tokenizer_json["model"]["vocab"], tokenizer_json["model"]["merges"]
    symbol_byte = byte_of_symbol()
    added = {t["content"] for t in tokenizer_json.get("added_tokens", [])}
    tokens = {token: i for token, i in vocab.items() if token not in added and token in symbol_byte or len(token) > 1}
    try:
        ranks = {bytes(symbol_byte[s] for s in token): i for token, i in tokens.items() if token not in added}
        merged = [vocab[a + b] for a, b in (m.split(" ") if isinstance(m, str) else m for m in merges)]
    except KeyError:  # a symbol outside the byte alphabet, or a merge whose result is not a token
        return None
    joined = {i for token, i in ranks.items() if len(token) > 1}  # tokens tiktoken could merge into
    if len(ranks) != len(tokens.keys() - added) or merged != sorted(set(merged)) or joined != set(merged):
        return None
    return ranks


def piece_encoder(tokenizer: Tokenizer) -> Callable[[str], np.ndarray] | None:
    """For a byte-level BPE tokenizer tiktoken can reproduce: ``encode(text)``, the text's ids as
    ``tokenizer.encode(text).ids`` gives them (an added token written in a text encodes as itself, as in
    HF), in a uint32 array; None for any other tokenizer. tiktoken releases the GIL while it encodes and
    hands back one buffer, not a list of Python ints, so threads calling ``encode`` at once run on all
    the cores."""
    tokenizer_json = json.loads(tokenizer.to_str())
    if not _plain(tokenizer_json) or (ranks := _ranks(tokenizer_json)) is None:
        return None
    import tiktoken  # here, not at the top: only the corpus encoding needs it

    specials = {t["content"]: t["id"] for t in tokenizer_json.get("added_tokens", [])}
    encoding = tiktoken.Encoding("seqlab-bytebpe", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                 special_tokens=specials)

    def encode(text: str) -> np.ndarray:
        return encoding.encode_to_numpy(text, allowed_special="all")

    return encode
