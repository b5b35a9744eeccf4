"""Language-model data preparation at scale: the time, throughput and peak memory of what
``seqlab train lm --text`` (char, byte-level BPE) and ``seqlab train mlm --text`` (WordPiece) do before
the first step (tokenizer training, then train.bin / valid.bin), on generated corpora of 10 MB, 100 MB
and 1 GB.

    .venv/bin/python benchmarks/data_scale.py [--sizes 10MB,100MB,1GB] [--kinds char,bpe,wordpiece] [--dir TMP]

``bpe`` encodes the corpus as seqlab does, through tiktoken (``seqlab.data.fast_bpe``); ``bpe-hf`` is the
same case with HF tokenizers' own batch encoding, the baseline. ``encode s`` is the time in
``encode_to_file`` alone (the corpus's ids, train and valid), without the tokenizer's training.

The corpus is generated text, the same on every machine: Zipf-distributed words (exponent 1.1) from a
generated vocabulary of 50,000 words, in sentences of about 12 words and lines of about 3 sentences,
with a blank line now and then. A corpus under 1 GB is one file; from 1 GB on it is a folder of 100 MB
files, read through the folder path. It is written to a temporary folder and removed afterwards.

Each case runs in a child process, so its peak resident memory (``ru_maxrss``) is its own; the
``base MB`` column is that child's peak just after its imports (PyTorch included), before the data.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9}
FOLDER_FROM = 10**9  # a corpus of this size or more is a folder of files of FILE_BYTES
FILE_BYTES = 100 * 10**6
WORDS_PER_BATCH = 200_000
KINDS = ("char", "bpe", "bpe-hf", "wordpiece")  # bpe-hf: bpe with HF tokenizers' own encoding (the baseline)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(KB|MB|GB)", text.strip().upper())
    if not match:
        raise SystemExit(f"--sizes: {text!r} is not a size like 10MB or 1GB")
    return int(float(match[1]) * UNITS[match[2]])


def vocabulary(rng: np.random.Generator, size: int = 50_000) -> np.ndarray:
    """Distinct made-up words, 1 to 12 letters (a few non-ASCII), most frequent first."""
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqzéü"))
    weights = 1.0 / np.arange(1, len(letters) + 1)
    words: dict[str, None] = {}
    while len(words) < size:
        length = int(rng.integers(1, 13))
        words["".join(rng.choice(letters, size=length, p=weights / weights.sum()))] = None
    return np.array(list(words), dtype=object)


def generate(path: Path, n_bytes: int, rng: np.random.Generator, words: np.ndarray) -> None:
    """About ``n_bytes`` of UTF-8 text (cut at a whole line at or after that size) into ``path``."""
    zipf = 1.0 / np.arange(1, len(words) + 1) ** 1.1
    zipf /= zipf.sum()
    ended = np.array([w + "." for w in words], dtype=object)
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        while written < n_bytes:
            ids = rng.choice(len(words), size=WORDS_PER_BATCH, p=zipf)
            sentence_end = rng.random(WORDS_PER_BATCH) < 1 / 12
            tokens = np.where(sentence_end, ended[ids], words[ids])
            line_end = sentence_end & (rng.random(WORDS_PER_BATCH) < 1 / 3)
            paragraph_end = line_end & (rng.random(WORDS_PER_BATCH) < 1 / 10)
            separators = np.where(paragraph_end, "\n\n", np.where(line_end, "\n", " ")).astype(object)
            text = "".join(itertools.chain.from_iterable(zip(tokens, separators)))
            if written + len(text.encode("utf-8")) >= n_bytes:  # the last batch: stop at a line's end
                data = text.encode("utf-8")
                stop = data.find(b"\n", n_bytes - written)
                text = data[: len(data) if stop < 0 else stop + 1].decode("utf-8")
            file.write(text)
            written += len(text.encode("utf-8"))


def make_corpus(root: Path, n_bytes: int) -> Path:
    """The corpus of ``n_bytes`` under ``root``: one file, or a folder of FILE_BYTES files."""
    rng = np.random.default_rng(n_bytes)
    words = vocabulary(rng)
    if n_bytes < FOLDER_FROM:
        generate(root / "corpus.txt", n_bytes, rng, words)
        return root / "corpus.txt"
    folder = root / "corpus"
    folder.mkdir()
    for index, start in enumerate(range(0, n_bytes, FILE_BYTES)):
        generate(folder / f"part-{index:04d}.txt", min(FILE_BYTES, n_bytes - start), rng, words)
    return folder


def corpus_bytes(source: Path) -> int:
    files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)


def run_case(kind: str, text: str, run: str) -> None:
    """In the child: prepare the data as ``seqlab train lm`` (char, bpe) or ``seqlab train mlm``
    (wordpiece) does and print one JSON line."""
    from seqlab.data import fast_bpe, token_stream
    from seqlab.tasks import language_model, masked_lm

    if kind == "bpe-hf":
        fast_bpe.piece_encoder = lambda tokenizer: None  # what encode_to_file asks for: none, so HF encodes
    encoding = [0.0]
    encode_to_file = token_stream.encode_to_file

    def timed(*args):
        started = time.perf_counter()
        try:
            return encode_to_file(*args)
        finally:
            encoding[0] += time.perf_counter() - started

    token_stream.encode_to_file = timed
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if kind == "wordpiece":
        meta = masked_lm.prepare_data(masked_lm.MLMDataConfig(text=text), Path(run))
    else:
        config = language_model.LMDataConfig(text=text, tokenizer="bpe" if kind == "bpe-hf" else kind)
        meta = language_model.prepare_data(config, Path(run))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "encode_seconds": encoding[0], "peak_kib": peak, "base_kib": base,
                      "tokens": meta["train_tokens"] + meta["valid_tokens"], "vocab": meta["vocab_size"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10MB,100MB,1GB")
    parser.add_argument("--kinds", default=",".join(KINDS), help="char and bpe: train lm; wordpiece: train mlm")
    parser.add_argument("--dir", default=None, help="where the temporary corpus goes (default: the system's)")
    parser.add_argument("--case", nargs=3, metavar=("KIND", "TEXT", "RUN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(*args.case)
        return
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if bad := [k for k in kinds if k not in KINDS]:
        raise SystemExit(f"--kinds: {', '.join(bad)} unknown; choose from {', '.join(KINDS)}")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    print(f"{'corpus':>8} {'files':>5} {'kind':>9} {'seconds':>8} {'MB/s':>7} {'encode s':>8} {'MB/s':>7} "
          f"{'peak MB':>8} {'base MB':>8} "
          f"{'tokens':>13} {'vocab':>6}  (generating took)", flush=True)
    for n_bytes in sizes:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            started = time.perf_counter()
            source = make_corpus(Path(tmp), n_bytes)
            generated = time.perf_counter() - started
            size = corpus_bytes(source)
            files = 1 if source.is_file() else len(list(source.iterdir()))
            for kind in kinds:
                run = Path(tmp) / f"run-{kind}"
                run.mkdir()
                child = subprocess.run([sys.executable, __file__, "--case", kind, str(source), str(run)],
                                       capture_output=True, text=True, env={**os.environ})
                if child.returncode:
                    raise SystemExit(f"the {kind} case failed:\n{child.stderr}")
                r = json.loads(child.stdout.strip().splitlines()[-1])
                print(f"{size / 1e6:>6.4g}MB {files:>5} {kind:>9} {r['seconds']:>8.1f} "
                      f"{size / 1e6 / r['seconds']:>7.2f} {r['encode_seconds']:>8.1f} "
                      f"{size / 1e6 / r['encode_seconds']:>7.2f} {r['peak_kib'] / 1024:>8.0f} {r['base_kib'] / 1024:>8.0f} "
                      f"{r['tokens']:>13,} {r['vocab']:>6}  ({generated:.1f} s)", flush=True)
                shutil.rmtree(run)


if __name__ == "__main__":
    main()
