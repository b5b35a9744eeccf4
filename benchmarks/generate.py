"""Per-token generation latency of TransformerLM with and without the key/value cache, at growing
context lengths (batch 1, fp32, the 6-layer 384-wide "baby GPT" shape with a 1,024-token window).

    .venv/bin/python benchmarks/generate.py [--contexts 64,128,256,512,1024] [--tokens 16]

With the cache each new token attends over the cached keys and values (work ∝ context, small);
without it the whole context is run again for every token (work ∝ context²).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from seqlab.models import TransformerLM, TransformerLMConfig


@torch.no_grad()
def per_token_ms(model: TransformerLM, context: int, tokens: int, cached: bool) -> float:
    ids = torch.randint(0, model.vocab_size, (1, context - tokens))
    times = []
    if cached:
        cache = model.new_cache()
        logits = model(ids, cache)  # the prompt, once
        for _ in range(tokens):
            start = time.perf_counter()
            logits = model(logits[:, -1:].argmax(-1), cache)
            times.append(time.perf_counter() - start)
    else:
        for _ in range(tokens):
            start = time.perf_counter()
            next_id = model(ids)[:, -1:].argmax(-1)
            times.append(time.perf_counter() - start)
            ids = torch.cat([ids, next_id], dim=1)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", default="64,128,256,512,1024")
    parser.add_argument("--tokens", type=int, default=16, help="new tokens timed per context (median)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = TransformerLM(TransformerLMConfig(65, d_model=384, n_heads=6, n_layers=6, max_len=1024)).eval()
    print(f"TransformerLM 6×384, batch 1, fp32, {torch.get_num_threads()} threads; median ms per new token "
          f"over {args.tokens} tokens ending at the given context length\n")
    print("| context | with cache, ms | without cache, ms | speed-up |\n|---|---|---|---|")
    for context in (int(c) for c in args.contexts.split(",")):
        with_cache = per_token_ms(model, context, args.tokens, cached=True)
        without = per_token_ms(model, context, args.tokens, cached=False)
        print(f"| {context} | {with_cache:.2f} | {without:.2f} | {without / with_cache:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
