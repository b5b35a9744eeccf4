"""Threads against a shared machine: one training process alone vs two at once, each with the default
thread count (seqlab.train.threads.default_threads: every core this process may use) and with one
thread each. Prints the median step time of each process. Run it on an otherwise quiet machine:

    .venv/bin/python benchmarks/threads.py [--steps 60 --warmup 10 --d-model 128 --batch 128]

The workload is a training step (forward, backward, AdamW) of the demo's encoder-decoder Transformer
shape on random character ids, so that it stands for `seqlab demo` without its data generation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def worker(args: argparse.Namespace) -> None:
    from seqlab.train.threads import set_threads

    n = set_threads(args.threads or None)  # before torch does any parallel work
    import torch

    from seqlab.models import Transformer, TransformerConfig

    torch.manual_seed(0)
    vocab, length = 64, 24
    model = Transformer(TransformerConfig(vocab, vocab, d_model=args.d_model, n_heads=4, n_layers=2,
                                          d_ff=2 * args.d_model, dropout=0.0, norm_first=True))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    src = torch.randint(4, vocab, (args.batch, length))
    tgt = torch.randint(4, vocab, (args.batch, 12))
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        logits = model(src, tgt[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), tgt[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    print(json.dumps({"threads": n, "median_ms": statistics.median(times) * 1e3}))


def launch(args: argparse.Namespace, threads: int, processes: int) -> list[dict]:
    command = [sys.executable, __file__, "--worker", "--threads", str(threads), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--d-model", str(args.d_model), "--batch", str(args.batch)]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in running]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)  # a worker's; 0 = default
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    from seqlab.train.threads import available_cores, busy_warning, default_threads

    warning = busy_warning()
    if warning:
        print(warning, file=sys.stderr)
    print(f"{available_cores()} cores; default threads {default_threads()}")
    print("| processes | threads each | median step ms (each process) |")
    print("|---|---|---|")
    for threads, label in ((0, "default"), (1, "1")):
        for processes in (1, 2):
            results = launch(args, threads, processes)
            shown = ", ".join(f"{r['median_ms']:.1f}" for r in results)
            print(f"| {processes} | {label} ({results[0]['threads']}) | {shown} |", flush=True)


if __name__ == "__main__":
    main()
