"""Beam-4 translation speed side by side on the same weights: seqlab's ``beam_search`` (as ``seqlab translate``
runs it on a file: batches of 128 length-sorted sentences, beam and length limit from the run's config) and the
same run exported with ``seqlab export --format hf`` and decoded by Hugging Face ``transformers``' ``generate``
(``num_beams=4``), on the same batches of token ids, fp32, one after the other in one process. Sentences per
second (token ids in, token ids out: tokenising is the same ``tokenizers`` code for both), and how many of
the outputs are identical.

    .venv/bin/python benchmarks/translation_inference.py [--threads 2] [--repeats 3] [--sentences 1000]
        [--multi30k DIR --steps N] [--layout post-ln|pre-ln] [--run RUN_DIR] [--onnx-sentences N]

The model is the Multi30k recipe's shape (``--config multi30k-de-en``: 3 + 3 layers, d_model 256, 4 heads,
d_ff 1,024, BPE vocabularies of up to 8,000 a side, beam 4, α = 0.6, at most 80 output tokens), trained for
``--steps`` steps (default 1, so that it is a run; the recipe's bf16 training, fp32 weights) on generated
parallel text (a word-for-word language pair over a Zipf-distributed lexicon, 9 to 16 words a sentence,
about 12 to 20 BPE tokens), or with ``--multi30k`` on Multi30k's training pairs, translating the first
``--sentences`` of test_2016_flickr.de. A model trained for one step ends almost every hypothesis at once
(its outputs are empty), which measures the stopping rules more than the decoding: the column of mean
output lengths shows it; train longer for outputs of a realistic length.

``--layout post-ln`` (the default) trains ``model.norm_first=false`` and exports it as Marian, whose output
layer is the target vocabulary as seqlab's is; ``--layout pre-ln`` (translate's default) exports Pegasus,
whose one vocabulary stacks the target's and the source's, so ``transformers`` computes twice the logits a
step (the source's rows can never win).

The beam searches differ in their rules. seqlab keeps finished hypotheses in the beam, stops once no
sentence's result can change (seqlab.models.search.decided) and ranks them by GNMT's log P / ((5 + |Y|) /
6)^α (Wu et al., 2016); ``transformers`` sets finished ones aside, stops a sentence once it has four
(``early_stopping=True``; ``--early-stopping`` chooses) and ranks by log P / |Y|^``length_penalty`` (set to
α). Speed is therefore compared on the same inputs under the closest settings, with the number of identical
outputs beside it. ONNX Runtime runs the same beam search (seqlab.models.search.beam_search, the
model's encode / decode behind ``seqlab export --format onnx``'s encoder.onnx and decoder.onnx) on the
first ``--onnx-sentences`` sentences (default 128, one batch; 0 skips it), once: the exported translation
decoder has no key/value cache, so every step feeds it the whole prefix, and its row measures that.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from figures import down  # this folder's: figures truncated, never rounded up

EOS_ID = 2  # seqlab's <eos> (seqlab.data.tokenizer)


def lexicon(rng: np.random.Generator, n: int, syllables: list[str]) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(syllables, size=rng.integers(1, 4))))
    return sorted(words)


def parallel_text(n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` generated sentence pairs: a 4,000-word source lexicon mapped word for word onto a target one,
    words drawn with Zipf frequencies (exponent 1.1), 9 to 16 words a sentence, the target's last two
    words swapped (a little reordering)."""
    lexicon_rng = np.random.default_rng(1234)  # the same language pair for every seed
    source_words = lexicon(lexicon_rng, 4000, [c + v for c in "bdfghklmnprstwz" for v in ("a", "e", "i", "o", "u", "ei", "au")])
    target_words = lexicon(lexicon_rng, 4000, [c + v for c in "bcdfghjlmnprstvy" for v in ("a", "e", "i", "o", "u", "ee", "ou")])
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 4001) ** 1.1
    weights /= weights.sum()
    sources, targets = [], []
    for _ in range(n):
        words = rng.choice(4000, size=rng.integers(9, 17), p=weights)
        mapped = [target_words[w] for w in words]
        mapped[-2:] = mapped[-2:][::-1]
        sources.append(" ".join(source_words[w] for w in words) + " .")
        targets.append(" ".join(mapped) + " .")
    return sources, targets


def make_run(root: Path, threads: int, steps: int, layout: str, multi30k: Path | None) -> Path:
    """A translate run of the Multi30k recipe's shape, trained ``steps`` steps on ``multi30k``'s training
    pairs (validation: its own), or on generated ones (validation: 5 % of them)."""
    from seqlab.cli.main import main

    if multi30k is None:
        sources, targets = parallel_text(29_000, seed=0)  # Multi30k's training size
        (root / "train.src").write_text("\n".join(sources) + "\n")
        (root / "train.tgt").write_text("\n".join(targets) + "\n")
        data = {"data.src": root / "train.src", "data.tgt": root / "train.tgt", "data.valid_src": "",
                "data.valid_tgt": ""}
    else:
        data = {f"data.{key}": multi30k / f"{name}.gz" for key, name in
                (("src", "train.de"), ("tgt", "train.en"), ("valid_src", "val.de"), ("valid_tgt", "val.en"))}
    run = root / f"translate-{layout}"
    settings = {**data, "data.test_src": "", "data.test_tgt": "",
                "model.norm_first": str(layout == "pre-ln").lower(), "train.progress": "false",
                "train.tensorboard": "false", "train.curves": "false", "train.eval_every": str(max(steps, 1)),
                "train.warmup_steps": str(min(800, max(steps // 4, 1)))}
    sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    assert main(["train", "translate", "--config", "multi30k-de-en", "--out", str(run), "--max-steps", str(steps),
                 "--threads", str(threads), *sets]) == 0
    return run


def until_eos(ids: list[int], skip_start: bool = False) -> tuple[int, ...]:
    """The tokens before the first <eos> (seqlab's output, or transformers' after its start token)."""
    ids = ids[1:] if skip_start else ids
    return tuple(ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids)


class OnnxTranslator:
    """encoder.onnx and decoder.onnx in ONNX Runtime behind the interface beam search decodes (encode,
    new_cache, decode). The exported decoder has no key/value cache: the "cache" keeps each hypothesis's
    tokens, and every step runs the decoder over all of them."""

    def __init__(self, directory: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.encoder = ort.InferenceSession(str(directory / "encoder.onnx"), options)
        self.decoder = ort.InferenceSession(str(directory / "decoder.onnx"), options)

    def encode(self, src: torch.Tensor):
        memory, memory_mask = self.encoder.run(None, {"src": src.numpy()})
        return torch.from_numpy(memory), torch.from_numpy(memory_mask)

    def new_cache(self) -> "Prefixes":
        return Prefixes()

    def decode(self, tgt, memory, memory_mask, cache: "Prefixes") -> torch.Tensor:
        cache.tokens = tgt if cache.tokens is None else torch.cat([cache.tokens, tgt], dim=1)
        feed = {"memory": memory.numpy(), "memory_mask": memory_mask.numpy(), "tgt": cache.tokens.numpy()}
        return torch.from_numpy(self.decoder.run(None, feed)[0][:, -1:])  # (B, 1, V)


class Prefixes:
    tokens: torch.Tensor | None = None  # (B, T) each row's tokens so far, from <bos>

    def reorder(self, index: torch.Tensor) -> None:
        self.tokens = self.tokens.index_select(0, index)


def timed(fn, repeats: int):
    """The median wall time of ``fn()`` over ``repeats`` runs after one untimed warm-up, and its result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1, help="training steps of the run (default 1)")
    parser.add_argument("--layout", choices=("post-ln", "pre-ln"), default="post-ln")
    parser.add_argument("--early-stopping", choices=("true", "false", "never"), default="true",
                        help="transformers' early_stopping (default true: stop a sentence at num_beams finished "
                             "hypotheses, the closest to seqlab's rule)")
    parser.add_argument("--run", type=Path, help="an existing translate run instead of training one")
    parser.add_argument("--onnx-sentences", type=int, default=128,
                        help="ONNX Runtime translates this many of the sentences, once (default 128; 0: not at all)")
    parser.add_argument("--multi30k", type=Path, help="Multi30k's directory (seqlab data download multi30k): train on "
                        "train.de/en and translate the first --sentences of test_2016_flickr.de instead of "
                        "generated text")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import AutoModelForSeq2SeqLM

    from seqlab.data.batching import fixed_batches
    from seqlab.interop import export
    from seqlab.models.search import beam_search
    from seqlab.tasks.translate import Translator

    root = Path(tempfile.mkdtemp(prefix="seqlab-translation-inference-"))
    run = args.run or make_run(root, args.threads, args.steps, args.layout, args.multi30k)
    print(f"run: {run}")
    export(run, "hf", root / "hf")
    translator = Translator.load(run)
    ours = translator.model.eval()
    theirs = AutoModelForSeq2SeqLM.from_pretrained(root / "hf").eval()
    decode = translator.config.decode
    steps = min(decode.max_output_len, ours.max_len)  # as seqlab.tasks.translate.translate_ids
    if args.multi30k is None:
        lines = parallel_text(args.sentences, seed=1)[0]
    else:
        with gzip.open(args.multi30k / "test_2016_flickr.de.gz", "rt", encoding="utf-8") as file:
            lines = [line.rstrip("\n") for line in file][: args.sentences]
    sources = translator.encode_sources(lines)
    batches = [batch["src"] for batch in fixed_batches(sources, [[] for _ in sources], 128)]
    # Pegasus's one vocabulary puts the source's ids after the target's (<pad> stays 0)
    offset = ours.config.tgt_vocab_size if type(theirs).__name__.startswith("Pegasus") else 0
    hf_batches = [torch.where(src == 0, src, src + offset) for src in batches]
    lengths = [len(s) + 1 for s in sources]  # with <eos>

    early_stopping = {"true": True, "false": False, "never": "never"}[args.early_stopping]

    def seqlab_all():
        with torch.no_grad():
            return [beam_search(ours, src, steps, decode.beam_size, decode.alpha) for src in batches]

    def hf_all():
        with torch.no_grad():
            return [theirs.generate(src, attention_mask=src != 0, num_beams=decode.beam_size, max_length=steps + 1,
                                    length_penalty=decode.alpha, early_stopping=early_stopping, do_sample=False)
                    for src in hf_batches]

    trained = f"{args.steps} step(s) here" if args.run is None else str(args.run)
    print(f"CPU threads {args.threads}; {type(theirs).__name__} from a {'pre' if ours.config.norm_first else 'post'}-LN "
          f"run ({trained}); {sum(p.numel() for p in ours.parameters()):,} parameters in seqlab, "
          f"{sum(p.numel() for p in theirs.parameters()):,} in transformers; {len(sources)} sentences of "
          f"{min(lengths)}–{max(lengths)} source tokens (mean {np.mean(lengths):.1f}); beam {decode.beam_size}, "
          f"α {decode.alpha}, at most {steps} tokens, batches of 128; transformers: length_penalty {decode.alpha}, "
          f"early_stopping={args.early_stopping}; median of {args.repeats}")
    seqlab_s, seqlab_out = timed(seqlab_all, args.repeats)
    hf_s, hf_out = timed(hf_all, args.repeats)
    ours_ids = [until_eos(row) for out in seqlab_out for row in out.tolist()]
    theirs_ids = [until_eos(row, skip_start=True) for out in hf_out for row in out.tolist()]
    same = sum(a == b for a, b in zip(ours_ids, theirs_ids))
    n = len(sources)
    print(f"{'engine':>13} {'sentences/s':>12} {'mean output tokens':>19}")
    print(f"{'seqlab':>13} {n / seqlab_s:>12.1f} {np.mean([len(o) for o in ours_ids]):>19.1f}")
    print(f"{'transformers':>13} {n / hf_s:>12.1f} {np.mean([len(o) for o in theirs_ids]):>19.1f}")
    print(f"seqlab ÷ transformers: {down(hf_s / seqlab_s, 2)}; identical outputs: {same} of {n}")
    if args.onnx_sentences > 0:  # whole batches of 128 from the start, as many as hold that many sentences
        export(run, "onnx", root / "onnx")
        onnx = OnnxTranslator(root / "onnx", args.threads)
        first = batches[: max(1, -(-args.onnx_sentences // 128))]
        m = sum(src.size(0) for src in first)
        with torch.no_grad():
            start = time.perf_counter()  # once, no warm-up: it takes minutes
            onnx_out = [beam_search(onnx, src, steps, decode.beam_size, decode.alpha) for src in first]
            onnx_s = time.perf_counter() - start
            ours_s, _ = timed(lambda: [beam_search(ours, src, steps, decode.beam_size, decode.alpha) for src in first], 1)
        onnx_ids = [until_eos(row) for out in onnx_out for row in out.tolist()]
        same = sum(a == b for a, b in zip(ours_ids, onnx_ids))
        print(f"onnxruntime (the same beam search; decoder without a key/value cache), first {m} sentences, once: "
              f"{m / onnx_s:.1f} sentences/s; seqlab on them {m / ours_s:.1f}; seqlab ÷ onnxruntime "
              f"{down(onnx_s / ours_s, 2)}; identical outputs: {same} of {m}")


if __name__ == "__main__":
    main()
