"""MultiHeadAttention forward+backward: seqlab against torch.nn.MultiheadAttention, same shapes,
same run, interleaved repeats (this machine is shared and noisy: compare ratios, not absolutes).

    .venv/bin/python benchmarks/attention.py [--batch 8 --length 256 --d-model 256 --heads 8 --repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from seqlab.nn import MultiHeadAttention, padding_mask


def step_time(module, call, x, precision: str) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = call(module, x)
    out.float().sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    B, T, D, H = args.batch, args.length, args.d_model, args.heads
    torch.manual_seed(0)
    ours = MultiHeadAttention(D, H)
    theirs = nn.MultiheadAttention(D, H, batch_first=True)
    lengths = torch.randint(T // 2, T + 1, (B,))
    lengths[0] = T
    tokens = (torch.arange(T) < lengths[:, None]).long()  # 1 = real token, 0 = padding
    ours_mask, theirs_mask = padding_mask(tokens, 0), tokens == 0
    cases = {
        "seqlab.nn.MultiHeadAttention": (ours, lambda m, x: m(x, x, x, ours_mask)[0]),
        "torch.nn.MultiheadAttention": (theirs, lambda m, x: m(x, x, x, key_padding_mask=theirs_mask,
                                                                 need_weights=False)[0]),
    }
    print(f"self-attention with padding mask, forward+backward, B={B} T={T} D={D} H={H}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"| precision | seqlab ms | torch ms | seqlab / torch |\n|---|---|---|---|")
    for precision in ("fp32", "bf16"):
        times: dict[str, list[float]] = {name: [] for name in cases}
        x = torch.randn(B, T, D, requires_grad=True)
        for repeat in range(args.repeats + 3):
            for name, (module, call) in cases.items():  # interleaved, so drift hits both
                elapsed = step_time(module, call, x, precision)
                if repeat >= 3:  # warm-up
                    times[name].append(elapsed)
        ours_ms, theirs_ms = (statistics.median(v) * 1e3 for v in times.values())
        print(f"| {precision} | {ours_ms:.2f} | {theirs_ms:.2f} | {ours_ms / theirs_ms:.3f} |")


if __name__ == "__main__":
    main()
