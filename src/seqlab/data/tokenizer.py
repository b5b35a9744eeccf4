"""Tokenisers: Hugging Face ``tokenizers`` models trained on the training split and saved with the run.

Kinds: ``char`` (every character a token), ``word`` (whitespace and punctuation split), ``bpe``
(byte-pair encoding over Metaspace pieces: decoding restores a sentence exactly) and ``bytebpe``
(GPT-2's byte-level BPE: any text, split anywhere, round-trips exactly — for language models).
The first ids are fixed for every kind: <pad>=0, <bos>=1, <eos>=2, <unk>=3.

:func:`train_wordpiece` is BERT's tokenizer instead (Devlin et al., 2019 §3): WordPiece pieces, a
word's later pieces marked ``##``, and BERT's special tokens [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4.
"""

from __future__ import annotations

import collections
import itertools
import json
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
KINDS = ("char", "word", "bpe", "bytebpe")
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0 … 4
CONTINUATION = "##"  # WordPiece's prefix of a piece that continues a word
# Far above any real vocabulary; from 2**31 on, HF tokenizers' trainers abort the whole process.
MAX_VOCAB_SIZE = 1 << 24


def check_vocab_size(vocab_size: int) -> None:
    """A config's ``data.vocab_size`` no larger than :data:`MAX_VOCAB_SIZE` (each config checks its least)."""
    if vocab_size > MAX_VOCAB_SIZE:
        raise ValueError(f"data.vocab_size must be at most {MAX_VOCAB_SIZE:,}; got {vocab_size:,}")


def train_tokenizer(texts: Iterable[str], kind: str = "bpe", vocab_size: int = 8000,
                    min_frequency: int = 1) -> Tokenizer:
    if kind == "char":
        return _char_tokenizer(texts, vocab_size, min_frequency)
    if kind == "word":
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=SPECIALS, show_progress=False)
    elif kind == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=SPECIALS, show_progress=False)
    elif kind == "bytebpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=SPECIALS, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        raise ValueError(f"tokenizer kind must be one of {', '.join(KINDS)}, got {kind!r}")
    tokenizer.train_from_iterator(texts, trainer)
    if [tokenizer.token_to_id(t) for t in SPECIALS] != [PAD_ID, BOS_ID, EOS_ID, UNK_ID]:
        raise AssertionError("special tokens must take the first ids")
    return tokenizer


def _char_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int) -> Tokenizer:
    """Every character a token: the tokenizer that ``WordLevelTrainer`` makes over a one-character split
    (the special tokens, then the characters by falling count, ties in code-point order), with the
    characters counted by NumPy instead of the trainer's per-character regex and string table, which
    runs at about 1 MB/s (tests/data check the two give the same tokenizer)."""
    counts = np.zeros(0x110000, dtype=np.int64)

    def count(pieces: list[str]) -> None:  # one bincount for many short texts (a sentence each, say)
        codes = np.frombuffer("".join(pieces).encode("utf-32-le"), dtype=np.uint32)
        counts[: codes.max(initial=0) + 1] += np.bincount(codes, minlength=1)  # no characters: one 0

    pending, size = [], 0
    for text in texts:
        pending.append(text)
        size += len(text)
        if size >= 1 << 20:
            count(pending)
            pending, size = [], 0
    count(pending)
    seen = np.flatnonzero(counts >= max(min_frequency, 1))
    ordered = seen[np.lexsort((seen, -counts[seen]))][: max(vocab_size - len(SPECIALS), 0)]
    vocab = {token: i for i, token in enumerate(SPECIALS + [chr(code) for code in ordered])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # newlines too
    tokenizer.decoder = decoders.Fuse()  # characters join with nothing between them
    tokenizer.add_special_tokens(SPECIALS)
    return tokenizer


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = True) -> Tokenizer:
    """BERT's WordPiece tokenizer trained on ``texts``: BERT's normaliser (lowercased unless
    ``lowercase`` is false) and pre-tokeniser (whitespace and punctuation), the specials of
    :data:`BERT_SPECIALS` first. A special token written in a text ("[MASK]") encodes as itself.

    The vocabulary is what HF's ``WordPieceTrainer`` learns — byte-pair merges within words, a word's
    later characters kept apart from its first as ``##`` pieces — but the same for every process. HF's
    trainer numbers the ``##`` pieces in a hash map's order, which changes from process to process, and
    breaks ties between equally frequent merges by those numbers, so the same text gave other
    vocabularies (huggingface/tokenizers#1794). Here each later character is written as a stand-in
    character of its own before HF's ``BpeTrainer`` sees the words: every symbol is then in the alphabet,
    which that trainer sorts, and the ``##`` pieces are read back from the stand-ins."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix=CONTINUATION))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)  # accents stripped when lowercased, as BERT
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION)
    words = collections.Counter()  # every word of the texts, as the tokenizer splits them -> its count
    for text in texts:
        normalized = tokenizer.normalizer.normalize_str(text)
        words.update(word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized))
    later = stand_ins(words)  # a word's later character -> its stand-in
    marked = {word: word[0] + "".join(later[c] for c in word[1:]) for word in sorted(words)}
    merges = Tokenizer(models.BPE())
    merges.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    alphabet = sorted({c for word in words for c in word})  # as HF's: a character seen only later in words too
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=BERT_SPECIALS, show_progress=False,
                                  initial_alphabet=alphabet)
    merges.train_from_iterator((" ".join([marked[word]] * words[word]) for word in marked), trainer)
    first = {stand_in: c for c, stand_in in later.items()}
    vocab = {}
    for piece, i in merges.get_vocab().items():
        if piece in BERT_SPECIALS:
            vocab[piece] = i
        elif piece[0] in first:  # a piece that continues a word: stand-ins only
            vocab[CONTINUATION + "".join(first[c] for c in piece)] = i
        else:  # a word's first piece: a character as written, then stand-ins
            vocab[piece[0] + "".join(first[c] for c in piece[1:])] = i
    tokenizer.model = models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix=CONTINUATION)
    tokenizer.add_special_tokens(BERT_SPECIALS)  # at their ids 0 … 4; "[MASK]" in a text is the token
    if [tokenizer.token_to_id(t) for t in BERT_SPECIALS] != list(range(len(BERT_SPECIALS))):
        raise AssertionError("special tokens must take the first ids")
    return tokenizer


def stand_ins(words: Iterable[str]) -> dict[str, str]:
    """Each character that comes after the first in some word -> a private-use character (planes 15 and
    16) that no word holds, in the characters' order."""
    held = {c for word in words for c in word}
    later = sorted({c for word in words for c in word[1:]})
    free = (chr(p) for p in itertools.chain(range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE)) if chr(p) not in held)
    mapping = dict(zip(later, free))
    if len(mapping) < len(later):  # more than 131,068 distinct characters: more than Unicode assigns outside them
        raise ValueError(f"{len(later):,} distinct characters follow the first of a word; at most {len(mapping):,} "
                         f"can be told apart")
    return mapping


def with_cls_sep(tokenizer: Tokenizer) -> Tokenizer:
    """A copy of a WordPiece tokenizer (:func:`train_wordpiece`'s) that wraps every text as
    [CLS] text [SEP], as BERT reads a single segment (Devlin et al., 2019 §3)."""
    from tokenizers.processors import TemplateProcessing

    copy = Tokenizer.from_str(tokenizer.to_str())
    cls, sep = BERT_SPECIALS[2], BERT_SPECIALS[3]
    copy.post_processor = TemplateProcessing(single=f"{cls} $A {sep}", special_tokens=[
        (cls, copy.token_to_id(cls)), (sep, copy.token_to_id(sep))])
    return copy


def encode_all(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text (no <bos>/<eos>; batching adds them; a post-processor's [CLS] … [SEP] kept)."""
    return [e.ids for e in tokenizer.encode_batch(texts)]


def char_lookup(tokenizer: Tokenizer) -> Callable[[str], np.ndarray] | None:
    """For a ``char`` tokenizer, a function giving a text's ids as one array lookup on its code points,
    equal to ``tokenizer.encode(text).ids`` (the saved HF tokenizer stays the reference; a text that holds
    a special token's name goes through it) and two orders of magnitude faster than the per-character
    regex split; None for any other kind."""
    pre = json.loads(tokenizer.to_str()).get("pre_tokenizer") or {}
    if pre.get("type") != "Split" or pre.get("pattern", {}).get("Regex") != r"[\s\S]":
        return None
    chars = {ord(token): i for token, i in tokenizer.get_vocab().items() if len(token) == 1}
    table = np.full(max(chars, default=0) + 1, UNK_ID, dtype=np.int64)
    table[list(chars)] = list(chars.values())

    def ids(text: str) -> np.ndarray:
        if any(special in text for special in SPECIALS):
            return np.asarray(tokenizer.encode(text).ids, dtype=np.int64)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return np.where(codes < len(table), table[np.minimum(codes, len(table) - 1)], UNK_ID)

    return ids


def decode(tokenizer: Tokenizer, ids: Iterable[int]) -> str:
    """Text of ids up to the first <eos>, without special tokens."""
    kept = []
    for i in ids:
        if i == EOS_ID:
            break
        if i > UNK_ID:
            kept.append(i)
    return tokenizer.decode(kept)


def unknown_pieces(tokenizer: Tokenizer, texts: list[str]) -> list[str]:
    """The pieces of these texts the vocabulary lacks, in order (a model reads each as one unknown: <unk>,
    or WordPiece's [UNK]; byte-level BPE lacks none)."""
    unk = getattr(tokenizer.model, "unk_token", None)
    unk_id = tokenizer.token_to_id(unk) if unk else None
    if unk_id is None:
        return []
    pieces = []
    for text, encoding in zip(texts, tokenizer.encode_batch(texts)):
        pieces += [text[start:end] for i, (start, end) in zip(encoding.ids, encoding.offsets) if i == unk_id]
    return pieces


def unknown_note(pieces: list[str], what: str) -> str:
    shown = ", ".join(map(repr, dict.fromkeys(pieces)))  # each once, in order
    return f"note: the vocabulary lacks {len(pieces)} piece(s) of the {what} ({shown}); the model reads each as unknown"


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> None:
    tokenizer.save(str(path))


def load_tokenizer(path: Path, vocab_size: int | None = None) -> Tokenizer:
    """A tokenizer saved with a run; a missing or truncated file is a UserError naming it, and so is one
    whose ids go past ``vocab_size``, the model's vocabulary (they would index past the embedding)."""
    from ..errors import DamagedFileError, UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing; the run directory is incomplete: train the run again")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # the tokenizers library raises a bare Exception for every parse error
        raise DamagedFileError(path, f"not a tokenizer file: {error}") from None
    if vocab_size is not None and ids_needed(tokenizer) > vocab_size:
        raise DamagedFileError(path, f"its ids go up to {ids_needed(tokenizer) - 1:,}, past the model's vocabulary of "
                                     f"{vocab_size:,}: not the model's tokenizer")
    return tokenizer


def ids_needed(tokenizer: Tokenizer) -> int:
    """One more than the largest id ``tokenizer`` gives: the rows a model's embedding needs for it (its
    vocabulary size, unless its ids leave gaps)."""
    return max(tokenizer.get_vocab().values(), default=-1) + 1
