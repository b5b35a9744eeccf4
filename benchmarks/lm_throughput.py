"""Language-model training throughput: seqlab's TransformerLM (bf16 autocast, foreach AdamW, optionally
torch.compile) against a plain fp32 PyTorch GPT of the same shape, in the same run, plus the machine's
measured fp32 and bf16 matmul peak and the fraction of it each reaches.

    .venv/bin/python benchmarks/lm_throughput.py [--configs a,b] [--steps 20,5] [--compile]

Also printed per config: the time of the step's linear-layer matmuls alone (forward, input gradient,
weight gradient) in fp32 and in bf16, and what 3× the baseline leaves for the rest of a step (attention,
normalisation, activations, the loss, the optimizer, autograd).

(a) n_layer=4, n_head=4, n_embd=128, block 64, batch 12 (nanoGPT's CPU recipe for Shakespeare)
(b) n_layer=6, n_head=6, n_embd=384, block 256, batch 64 (its GPU recipe)
Model FLOPs per token: 6·N (N: parameters without position embeddings) + 12·L·T·D for attention.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.models import TransformerLM, TransformerLMConfig
from seqlab.train.config import TrainConfig
from seqlab.train.optim import build_optimizer

CONFIGS = {"a": dict(n_layer=4, n_head=4, n_embd=128, block=64, batch=12),
           "b": dict(n_layer=6, n_head=6, n_embd=384, block=256, batch=64)}
VOCAB = 65  # tiny-shakespeare's characters


# --- the baseline: a plain GPT as one writes it in PyTorch, fp32, eager -------------------------

class PlainBlock(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, D)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class PlainGPT(nn.Module):
    def __init__(self, vocab: int, block: int, n_layer: int, n_head: int, n_embd: int) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, n_embd), nn.Embedding(block, n_embd)
        self.blocks = nn.ModuleList(PlainBlock(n_embd, n_head) for _ in range(n_layer))
        self.ln = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.size(1)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


# --- measurement ---------------------------------------------------------------------------------

def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


def linear_matmul_seconds(c: dict, dtype: torch.dtype, repeats: int = 5) -> float:
    """The linear layers' matmuls of one training step at this config's shapes (best of ``repeats``):
    per layer QKV, output projection and the two feed-forward layers, plus the output head; for each,
    forward x·Wᵀ, input gradient g·W and weight gradient gᵀ·x."""
    M, D = c["batch"] * c["block"], c["n_embd"]
    shapes = [(D, 3 * D), (D, D), (D, 4 * D), (4 * D, D)] * c["n_layer"] + [(D, VOCAB)]
    total = 0.0
    for k, n in shapes:
        x, w, g = torch.randn(M, k, dtype=dtype), torch.randn(n, k, dtype=dtype), torch.randn(M, n, dtype=dtype)
        calls = (lambda: x @ w.t(), lambda: g @ w, lambda: g.t() @ x)
        for call in calls:
            call()
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            for call in calls:
                call()
            best = min(best, time.perf_counter() - start)
        total += best
    return total


def tokens_per_second(model: nn.Module, optimizer, bf16: bool, block: int, batch: int, steps: int,
                      warmup: int) -> float:
    x = torch.randint(0, VOCAB, (batch, block))
    y = torch.randint(0, VOCAB, (batch, block))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch * block / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="a,b")
    parser.add_argument("--steps", default="40,5", help="timed steps per config, in --configs order")
    parser.add_argument("--compile", action="store_true", help="also time seqlab under torch.compile")
    args = parser.parse_args()
    names, steps = args.configs.split(","), [int(s) for s in args.steps.split(",")]
    torch.manual_seed(0)
    fp32_peak, bf16_peak = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    print(f"{torch.get_num_threads()} threads; matmul peak (2048², best of 5): fp32 {fp32_peak:.3f}, "
          f"bf16 {bf16_peak:.3f} TFLOP/s\n")
    print("| config | model | tokens/s | × baseline | model TFLOP/s | % of bf16 peak |")
    print("|---|---|---|---|---|---|")
    for name, n in zip(names, steps):
        c = CONFIGS[name]
        ours = TransformerLM(TransformerLMConfig(VOCAB, c["n_embd"], c["n_head"], c["n_layer"], max_len=c["block"]))
        flops = 6 * ours.num_parameters(embedding=False) + 12 * c["n_layer"] * c["block"] * c["n_embd"]
        plain = PlainGPT(VOCAB, c["block"], c["n_layer"], c["n_head"], c["n_embd"])
        runs = [("plain PyTorch GPT, fp32 (baseline)", plain, torch.optim.AdamW(plain.parameters(), lr=1e-3), False)]
        optimizer = build_optimizer(ours, TrainConfig(lr=1e-3))
        runs.append(("seqlab TransformerLM, bf16 autocast", ours, optimizer, True))
        if args.compile:
            runs.append(("seqlab TransformerLM, bf16 + torch.compile", torch.compile(ours), optimizer, True))
        baseline = None
        for label, model, opt, bf16 in runs:
            warmup = 5 if "compile" in label else 2
            start = time.perf_counter()
            rate = tokens_per_second(model, opt, bf16, c["block"], c["batch"], n, warmup)
            baseline = baseline or rate
            tflops = rate * flops / 1e12
            print(f"| ({name}) | {label} | {rate:,.0f} | {rate / baseline:.2f} | {tflops:.3f} | "
                  f"{100 * tflops / bf16_peak:.1f} |", flush=True)
        fp32_mm, bf16_mm = linear_matmul_seconds(c, torch.float32), linear_matmul_seconds(c, torch.bfloat16)
        budget = c["batch"] * c["block"] / (3 * baseline)  # seconds a step may take at 3× the baseline
        print(f"\n({name}): the step's linear matmuls alone take {1e3 * fp32_mm:.2f} ms in fp32 and "
              f"{1e3 * bf16_mm:.2f} ms in bf16 ({fp32_mm / bf16_mm:.2f}×); the baseline's whole step takes "
              f"{1e3 * c['batch'] * c['block'] / baseline:.2f} ms, so 3× it leaves {1e3 * (budget - bf16_mm):.2f} ms "
              f"a step for everything but those matmuls\n", flush=True)


if __name__ == "__main__":
    main()
