"""Generation speed side by side on the same weights: seqlab's ``TransformerLM.generate`` (its key/value
cache), eager and with ``compile=True`` (the one-token step through ``torch.compile``); the same model
exported to GPT-2 and run by Hugging Face ``transformers``' ``generate``, as it comes ("tf") and with its
static cache and the forward through ``torch.compile`` ("tfc"); and ONNX Runtime stepping the graphs
``seqlab export --format onnx`` writes (prefill, then the cached decode step). Tokens per second of new
tokens, batch 1 and 8, greedy and sampling (top-k 40), 256 new tokens after a 16-token prompt, fp32, one
after the other in one process, in rounds (each engine once a round); the first (compiling) run is left out.

    .venv/bin/python benchmarks/inference.py [--threads 2] [--repeats 3] [--new-tokens 256]

The model is the 6-layer, 384-wide "baby GPT" shape (6 heads, context 1,024, character vocabulary),
trained for one step on generated text (a vocabulary of 91 characters) so that it is a real run (what ``seqlab export`` reads); speed
does not depend on what the weights learned. Every engine makes exactly ``--new-tokens`` tokens (no
end-of-text stop).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from figures import down  # this folder's: figures truncated, never rounded up


def make_run(root: Path, threads: int) -> Path:
    from seqlab.cli.main import main

    text = root / "text.txt"
    text.write_text("".join(chr(33 + (i * 7919) % 90) + (" " if i % 7 == 0 else "") for i in range(60_000)))
    run = root / "lm"
    sizes = ["--set", "model.d_model=384", "--set", "model.n_heads=6", "--set", "model.n_layers=6",
             "--set", "data.block_size=1024", "--set", "train.batch_size=1", "--set", "train.progress=false",
             "--set", "train.tensorboard=false", "--set", "train.curves=false", "--precision", "fp32"]
    assert main(["train", "lm", "--text", str(text), "--out", str(run), "--max-steps", "1",
                 "--threads", str(threads), *sizes]) == 0
    return run


def onnx_generator(directory: Path, threads: int):
    """generate(ids, n, sample) with the exported prefill and decode graphs in ONNX Runtime (the loop of
    docs/interop.md; sampling: top-k 40 at temperature 1, drawn with NumPy)."""
    import json

    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    meta = json.loads((directory / "onnx.json").read_text())
    prefill = ort.InferenceSession(str(directory / "prefill.onnx"), options)
    decode = ort.InferenceSession(str(directory / "decode.onnx"), options)
    past = meta["graphs"]["decode"]["inputs"][1:]
    rng = np.random.default_rng(0)

    def pick(logits, sample):
        if not sample:
            return logits.argmax(-1)[:, None]
        top = np.argpartition(-logits, 40, axis=-1)[:, :40]
        chosen = np.take_along_axis(logits, top, -1)
        p = np.exp(chosen - chosen.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        return np.array([[row[rng.choice(40, p=q)]] for row, q in zip(top, p)])

    def generate(ids, n, sample):
        logits, *cache = prefill.run(None, {"ids": ids})
        for _ in range(n):
            token = pick(logits[:, -1], sample)
            logits, *cache = decode.run(None, {"ids": token, **dict(zip(past, cache))})

    return generate


@torch.no_grad()
def timed(engines: dict, repeats: int) -> tuple[dict, dict]:
    """The median wall time of each engine's ``fn()`` over ``repeats`` rounds, and the time of its first,
    untimed warm-up run (a compiled engine's includes compiling). Each round runs every engine once, so
    a machine that speeds up or slows down during the run moves all of them alike."""
    first, times = {}, {name: [] for name in engines}
    for name, fn in engines.items():
        start = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - start
    for _ in range(repeats):
        for name, fn in engines.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--prompt", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import GPT2LMHeadModel

    from seqlab.interop import export
    from seqlab.models import from_pretrained

    root = Path(tempfile.mkdtemp(prefix="seqlab-inference-"))
    run = make_run(root, args.threads)
    export(run, "hf", root / "hf")
    export(run, "onnx", root / "onnx")
    ort_generate = onnx_generator(root / "onnx", args.threads)
    ours = from_pretrained(run).eval()
    theirs = GPT2LMHeadModel.from_pretrained(root / "hf").eval()
    # transformers' own fast path, for comparison: a static cache and the forward through torch.compile.
    theirs_compiled = GPT2LMHeadModel.from_pretrained(root / "hf").eval()
    theirs_compiled.forward = torch.compile(theirs_compiled.forward, dynamic=False)
    n = args.new_tokens
    print(f"CPU threads {args.threads}; model {sum(p.numel() for p in ours.parameters()):,} parameters; "
          f"prompt {args.prompt}, {n} new tokens; median of {args.repeats} rounds; ratios truncated")
    print(f"{'batch':>5} {'mode':>7} {'seqlab tok/s':>13} {'compiled tok/s':>15} {'transformers tok/s':>19} "
          f"{'seqlab÷tf':>10} {'compiled÷tf':>12} {'tf static+compiled tok/s':>25} {'compiled÷tfc':>12} "
          f"{'onnxruntime tok/s':>18} {'compiled÷ort':>13} {'first compiled run s':>21}")
    for batch in (1, 8):
        ids = torch.randint(0, ours.vocab_size, (batch, args.prompt), generator=torch.Generator().manual_seed(0))
        for mode in ("greedy", "sample"):
            sample = mode == "sample"
            knobs = {"temperature": 1.0 if sample else 0, "top_k": 40 if sample else None}
            hf_knobs = {"max_new_tokens": n, "min_new_tokens": n, "do_sample": sample, "top_k": 40 if sample else None,
                        "temperature": 1.0 if sample else None, "top_p": None,
                        "attention_mask": torch.ones_like(ids), "pad_token_id": 0}
            seconds, first = timed({
                "seqlab": lambda: ours.generate(ids, n, **knobs),
                "compiled": lambda: ours.generate(ids, n, **knobs, compile=True),
                "tf": lambda: theirs.generate(ids, **hf_knobs),
                "tfc": lambda: theirs_compiled.generate(ids, **hf_knobs, cache_implementation="static"),
                "ort": lambda: ort_generate(ids.numpy(), n, sample)}, args.repeats)
            ours_tps, compiled_tps, theirs_tps, theirs_compiled_tps, ort_tps = (batch * n / s for s in seconds.values())
            print(f"{batch:>5} {mode:>7} {ours_tps:>13.1f} {compiled_tps:>15.1f} {theirs_tps:>19.1f} "
                  f"{down(ours_tps / theirs_tps, 2):>10} {down(compiled_tps / theirs_tps, 2):>12} "
                  f"{theirs_compiled_tps:>25.1f} {down(compiled_tps / theirs_compiled_tps, 2):>12} "
                  f"{ort_tps:>18.1f} {down(compiled_tps / ort_tps, 2):>13} {first['compiled']:>21.1f}")
        if batch == 1:
            greedy = {"temperature": 0}
            same = torch.equal(ours.generate(ids, n, **greedy), ours.generate(ids, n, **greedy, compile=True))
            print(f"batch 1 greedy: compiled tokens {'identical to' if same else 'DIFFERENT from'} eager's")


if __name__ == "__main__":
    main()
