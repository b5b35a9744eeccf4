"""Marian's own tokenizer files, as the OPUS-MT checkpoints ship them, read into ``tokenizers`` tokenizers.

    source.spm, target.spm   SentencePiece unigram models (Kudo & Richardson, 2018): pieces, their
                             log-probabilities, and the normalisation rules (a precompiled character map)
    vocab.json               piece -> the model's id, one table for both sides (with ``separate_vocabs``
                             in tokenizer_config.json, target_vocab.json is the target's)

``transformers``' ``MarianTokenizer`` segments a text with its side's SentencePiece model, looks each piece
up in the vocabulary (a piece missing there is ``<unk>``) and appends ``</s>``; a leading language code
(``>>fra<<``) is a token of its own. The tokenizer built here is a ``tokenizers`` Unigram model over the
vocabulary's ids, each piece of the side's SentencePiece model scored as it scores it, with SentencePiece's
normalisation rebuilt from its spec, as ``transformers``' SentencePiece converter does.

A vocabulary piece the side's model lacks (the other language's, in a shared vocabulary) must still be
decoded, but segmenting must not produce it, except where SentencePiece would: a character no piece of
the model holds comes out as an unknown piece spelt as the character, which MarianTokenizer then looks up
in the vocabulary. So a one-character piece the model lacks keeps its spelling with a score far below
any segmentation's (chosen only for such a character), and a longer one is spelt with a marker holding a
space, which nothing matches (the normaliser has turned every space into "▁") and the decoder removes.
The SentencePiece files are parsed with the ``sentencepiece`` package's protobuf schema; nothing else of
that package is used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import Unigram
from tokenizers.processors import TemplateProcessing

from ..errors import UserError

NORMAL, USER_DEFINED = 1, 4  # two of SentencePiece's piece types (the others: unknown, control, unused, byte)
UNIGRAM = 1  # its model types: 1 unigram, 2 BPE, 3 word, 4 char
UNREACHABLE = -1e6  # below any segmentation's score (a piece scores -10 to -20)
MARK = " (not in this side's SentencePiece model)"  # spells a piece that segmenting must not produce
SPECIALS = ("</s>", "<unk>", "<pad>")


def is_marian_spm(source: Path) -> bool:
    return (source / "source.spm").is_file() and (source / "vocab.json").is_file()


def read_model(path: Path) -> Any:
    """A SentencePiece model file's ModelProto; a file that is not one is a UserError naming it."""
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError:
        raise UserError(f"reading {path.name} needs the sentencepiece package: pip install sentencepiece") from None
    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception:  # protobuf's DecodeError, and whatever a truncated file raises
        raise UserError(f"{path} is not a SentencePiece model") from None
    if not proto.pieces:
        raise UserError(f"{path} is not a SentencePiece model (it has no pieces)")
    if proto.trainer_spec.model_type != UNIGRAM:
        raise UserError(f"{path} is a SentencePiece model of type {proto.trainer_spec.model_type}; seqlab reads "
                        f"unigram models (type 1), as Marian's are")
    if proto.trainer_spec.byte_fallback:
        raise UserError(f"{path} falls back to bytes for unknown characters, which seqlab's conversion does not "
                        f"rebuild (Marian's models do not)")
    return proto


def read_vocabulary(path: Path) -> dict[str, int]:
    """vocab.json: piece -> id, the ids 0 … V-1 each once."""
    if not path.is_file():
        raise UserError(f"{path.parent} has no {path.name}")
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{path} is not a JSON vocabulary") from None
    if not (isinstance(vocab, dict) and all(isinstance(i, int) and not isinstance(i, bool) for i in vocab.values())):
        raise UserError(f"{path} is not a vocabulary (a JSON object of pieces to ids)")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise UserError(f"{path}: the ids are not 0 … {len(vocab) - 1}, each once")
    if "<unk>" not in vocab:
        raise UserError(f"{path} has no <unk>")
    return vocab


def side_tokenizer(proto: Any, vocab: dict[str, int]) -> tuple[Tokenizer, int]:
    """One side's tokenizer over ``vocab``'s ids, and how many of the model's pieces the vocabulary lacks
    (MarianTokenizer makes those <unk>; this tokenizer splits them into smaller pieces)."""
    scores = {p.piece: p.score for p in proto.pieces if p.type in (NORMAL, USER_DEFINED)}
    lowest = min(scores.values(), default=0.0)
    pieces: list[tuple[str, float]] = [("", 0.0)] * len(vocab)
    for piece, i in vocab.items():
        if piece in scores:
            pieces[i] = (piece, scores[piece])
        elif piece in SPECIALS:
            pieces[i] = (piece, lowest)
        else:  # the module docstring says why
            pieces[i] = (piece, UNREACHABLE) if len(piece) == 1 else (piece + MARK, lowest)
    tokenizer = Tokenizer(Unigram(pieces, unk_id=vocab["<unk>"], byte_fallback=False))
    spec = proto.normalizer_spec
    steps = [normalizers.Precompiled(spec.precompiled_charsmap)] if spec.precompiled_charsmap else []
    if spec.remove_extra_whitespaces:  # spaces only: SentencePiece leaves other whitespace alone
        steps += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    if spec.escape_whitespaces:
        steps.append(normalizers.Replace(" ", "▁"))
    if spec.add_dummy_prefix:  # Metaspace adds no prefix to a text already starting with "▁"; SentencePiece does
        steps.append(normalizers.Replace(Regex(r"\A▁"), "▁▁"))
    tokenizer.normalizer = normalizers.Sequence(steps)
    scheme = "always" if spec.add_dummy_prefix else "never"
    splits = [pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=False)]
    if user_defined := [p.piece for p in proto.pieces if p.type == USER_DEFINED and p.piece in vocab]:
        pattern = "|".join(re.escape(piece) for piece in sorted(user_defined, key=len, reverse=True))
        splits.append(pre_tokenizers.Split(Regex(pattern), behavior="isolated"))  # always whole, as SentencePiece
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(splits)
    steps = [decoders.Replace(MARK, ""), decoders.Replace("▁", " ")]
    if spec.add_dummy_prefix:
        steps += [decoders.Fuse(), decoders.Strip(content=" ", left=1)]
    tokenizer.decoder = decoders.Sequence(steps)
    # Marian's specials and language codes are tokens of their own wherever the text has them (MarianTokenizer
    # takes a language code only at the start of a text: the one difference of ids besides the note's)
    codes = [piece for piece in vocab if piece.startswith(">>") and piece.endswith("<<")]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (*SPECIALS, *codes)
                                  if t in vocab])
    if "</s>" in vocab:
        tokenizer.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    missing = sum(1 for p in proto.pieces if p.type == NORMAL and p.piece not in vocab)
    return tokenizer, missing


def marian_tokenizers(source: Path) -> tuple[Tokenizer, Tokenizer, str]:
    """The source and target tokenizers of a directory holding source.spm, target.spm and vocab.json, and a
    note for the user (empty, or how many pieces each model has that the vocabulary lacks)."""
    config_path = source / "tokenizer_config.json"
    try:
        settings = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{config_path} is not JSON") from None
    separate = isinstance(settings, dict) and bool(settings.get("separate_vocabs"))
    vocab = read_vocabulary(source / "vocab.json")
    target_vocab = read_vocabulary(source / "target_vocab.json") if separate else vocab
    target_spm = source / "target.spm"
    if not target_spm.is_file():
        raise UserError(f"{source} has source.spm but no target.spm")
    src, src_missing = side_tokenizer(read_model(source / "source.spm"), vocab)
    tgt, tgt_missing = side_tokenizer(read_model(target_spm), target_vocab)
    note = "; ".join(f"{n} pieces of {name} are not in its vocabulary (Marian's tokenizer makes them <unk>, "
                     f"seqlab's splits them into smaller pieces)"
                     for n, name in ((src_missing, "source.spm"), (tgt_missing, "target.spm")) if n)
    return src, tgt, note
