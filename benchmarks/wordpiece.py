"""WordPiece training time: seqlab's ``train_wordpiece`` (the same in every process) against HF's own
``WordPieceTrainer`` (not), on the same text, alternating, in one process.

    .venv/bin/python benchmarks/wordpiece.py --text FILE [--copies 8] [--vocab-size 4000] [--repeats 3]

The text is read once and repeated ``--copies`` times, in pieces of 64 K characters as ``seqlab train mlm``
hands them over; each trainer runs ``--repeats`` times, alternating; the minimum and median of each, and
their ratio, are printed, with the share of HF's vocabulary that seqlab's holds.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from seqlab.data.tokenizer import BERT_SPECIALS, CONTINUATION, train_wordpiece


def hf_wordpiece(texts: list[str], vocab_size: int) -> Tokenizer:
    """What train_wordpiece did before: HF's WordPieceTrainer with BERT's normaliser and pre-tokeniser."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix=CONTINUATION))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=BERT_SPECIALS, show_progress=False, continuing_subword_prefix=CONTINUATION))
    return tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", required=True)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    text = open(args.text, encoding="utf-8").read() * args.copies
    pieces = [text[i : i + 65536] for i in range(0, len(text), 65536)]
    seconds: dict[str, list[float]] = {"seqlab": [], "hf": []}
    vocabularies = {}
    for _ in range(args.repeats):
        for name, train in (("seqlab", train_wordpiece), ("hf", hf_wordpiece)):
            start = time.perf_counter()
            vocabularies[name] = set(train(pieces, args.vocab_size).get_vocab())
            seconds[name].append(time.perf_counter() - start)
    print(f"{len(text) / 1e6:.2f} M characters, vocabulary {args.vocab_size}, {args.repeats} runs each")
    for name, times in seconds.items():
        print(f"{name}: min {min(times):.2f} s, median {statistics.median(times):.2f} s, "
              f"{len(text) / 1e6 / min(times):.2f} M characters/s at best")
    print(f"seqlab / hf: {min(seconds['seqlab']) / min(seconds['hf']):.3f} (minimum), "
          f"{statistics.median(seconds['seqlab']) / statistics.median(seconds['hf']):.3f} (median)")
    print(f"shared vocabulary: {len(vocabularies['seqlab'] & vocabularies['hf'])} of {len(vocabularies['hf'])}")


if __name__ == "__main__":
    main()
