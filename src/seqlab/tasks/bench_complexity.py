"""``seqlab bench complexity``: Table 1 of Vaswani et al. 2017 (§4, per-layer
complexity and path length) checked by measurement.

Per layer type, forward+backward time and activation memory (bytes autograd saves for backward)
against sequence length n, at one width d:

    self-attention   O(n²·d) time   longest path O(1)
    recurrent (LSTM) O(n·d²) time   longest path O(n)
    convolution      O(k·n·d²) time longest path O(n/k)

The fitted log-log slope of time over the longer lengths is printed next to each expectation.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from ..nn import LSTM, MultiHeadAttention

EXPECTED_SLOPE = {"self-attention": 2.0, "lstm": 1.0, "conv1d": 1.0}


def layers(d_model: int, n_heads: int, kernel_size: int) -> dict[str, tuple[nn.Module, callable]]:
    attention = MultiHeadAttention(d_model, n_heads)
    lstm = LSTM(d_model, d_model)
    conv = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2)
    return {"self-attention": (attention, lambda x: attention(x, x, x)[0]),
            "lstm": (lstm, lambda x: lstm(x)[0]),
            "conv1d": (conv, lambda x: conv(x.transpose(1, 2)).transpose(1, 2))}


def measure(run, x: torch.Tensor, repeats: int) -> tuple[float, int]:
    """Median seconds of forward+backward, and bytes of tensors saved for backward."""
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run(x).sum().backward()  # warm-up, and the memory count
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x).sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times), saved


def slope(lengths: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) on log(n)."""
    xs, ys = [math.log(n) for n in lengths], [math.log(max(v, 1e-12)) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def attention_bytes(n: int, n_heads: int = 4) -> int:
    """A rough floor on the memory self-attention takes at length ``n``: its (heads, n, n) fp32 weights
    four times over (the scores, their softmax, and the gradients of both)."""
    return 4 * 4 * n_heads * n * n


def run_complexity(out: Path, lengths: list[int], d_model: int = 128, n_heads: int = 4, kernel_size: int = 3,
                   repeats: int = 3, log=print) -> dict[str, dict[str, list[float]]]:
    torch.manual_seed(0)
    results = {name: {"seconds": [], "bytes": []} for name in EXPECTED_SLOPE}
    for n in lengths:
        x = torch.randn(1, n, d_model, requires_grad=True)
        for name, (_, run) in layers(d_model, n_heads, kernel_size).items():
            seconds, saved = measure(run, x, repeats)
            results[name]["seconds"].append(seconds)
            results[name]["bytes"].append(saved)
        log(f"n={n}: " + "  ".join(f"{name} {r['seconds'][-1] * 1e3:.1f} ms" for name, r in results.items()))
    first = min(len(lengths) // 2, len(lengths) - 2)  # fixed per-call overheads dominate short lengths;
    upper = lengths[first:]  # the upper half is fitted, and at least two lengths, for a slope
    lines = [f"forward+backward, batch 1, d_model={d_model}, {n_heads} heads, kernel {kernel_size}, "
             f"{torch.get_num_threads()} threads; memory = bytes saved for backward",
             "", "| n | " + " | ".join(f"{name} ms | {name} MiB" for name in results) + " |",
             "|---|" + "---|---|" * len(results)]
    for i, n in enumerate(lengths):
        cells = [f"{r['seconds'][i] * 1e3:.2f} | {r['bytes'][i] / 2**20:.2f}" for r in results.values()]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"| layer | time slope (n ≥ {upper[0]}) | expected | memory slope |")
    lines.append("|---|---|---|---|")
    for name, r in results.items():
        time_slope = slope(upper, r["seconds"][first:])
        memory_slope = slope(upper, r["bytes"][first:])
        lines.append(f"| {name} | {time_slope:.2f} | {EXPECTED_SLOPE[name]:.0f} | {memory_slope:.2f} |")
    table = "\n".join(lines)
    (out / "complexity.md").write_text(table + "\n")
    plot(results, lengths, out / "complexity.png")
    log(table)
    return results


def plot(results, lengths: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in results.items():
        left.loglog(lengths, [s * 1e3 for s in r["seconds"]], marker="o", label=name)
        right.loglog(lengths, [b / 2**20 for b in r["bytes"]], marker="o", label=name)
    left.set(xlabel="sequence length n", ylabel="forward+backward ms", title="time")
    right.set(xlabel="sequence length n", ylabel="MiB saved for backward", title="activation memory")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
