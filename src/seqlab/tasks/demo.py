"""``seqlab demo`` — the main job: learn to read dates written in 16 locales and write them as ISO 8601.

The corpus is generated at run time (see :mod:`seqlab.data.dates`); test dates never occur in
training, so exact match on them measures generalisation, not memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ..config import load_config
from ..data import dates
from ..data.batching import pad
from ..data.tokenizer import BOS_ID
from ..viz.attention import plot_attention_heads
from . import run_dir as runs
from .translate import TranslateConfig, Translator, train

RECIPE = "demo-dates"
N_TRAIN, N_VALID, N_TEST = 200_000, 1_000, 5_000


def make_splits(seed: int) -> dict[str, tuple[list[str], list[str]]]:
    train_days, test_days = dates.split_dates(seed)
    n_valid = len(train_days) // 20
    valid_days, train_days = train_days[:n_valid], train_days[n_valid:]
    return {"train": dates.date_pairs(train_days, N_TRAIN, seed + 1),
            "valid": dates.date_pairs(valid_days, N_VALID, seed + 2),
            "test": dates.date_pairs(test_days, N_TEST, seed + 3)}


def cross_attention_png(translator: Translator, source: str, path: Path) -> None:
    """Heatmap of the last decoder layer's cross-attention, one panel per head, for one sentence."""
    model, src_tok, tgt_tok = translator.model, translator.src_tokenizer, translator.tgt_tokenizer
    src_ids = translator.encode_sources([source])[0]
    out_ids = translator.translate_ids([src_ids])[0]
    with torch.no_grad():
        memory, memory_mask = model.encode(pad([src_ids]).to(translator.device))
        decoder_in = torch.tensor([[BOS_ID, *out_ids[:-1]]], device=translator.device)
        model.decode(decoder_in, memory, memory_mask, need_weights=True)
    weights = model.decoder.layers[-1].last_cross_attention[0]  # (H, T_out, T_src)
    out_tokens = [tgt_tok.id_to_token(i) for i in out_ids]
    plot_attention_heads(weights, [src_tok.id_to_token(i) for i in src_ids], out_tokens, path,
                         title=f"cross-attention, last decoder layer: {source!r}")


def run_demo(out: Path, overwrite: bool, overrides: list[str], log=print) -> dict[str, Any]:
    config = load_config(TranslateConfig, RECIPE, overrides)
    started = time.perf_counter()
    run = runs.create_run_dir(out, overwrite)
    splits = make_splits(config.train.seed)
    log(f"data: {len(dates.styles())} date styles in {len(dates.LOCALES)} locales, "
        f"{dates.FIRST_DAY.year}-{dates.LAST_DAY.year}; {N_TRAIN:,} training pairs, "
        f"{N_TEST:,} test pairs on {len(set(splits['test'][1])):,} dates never seen in training "
        f"({time.perf_counter() - started:.1f} s)")
    translator, result = train(config, run, splits, log=log)
    metrics = result["metrics"]
    log(f"\nheld-out exact match: {metrics['exact_match']:.2%}   BLEU: {metrics['bleu']:.2f}   "
        f"trained {metrics['train_seconds']:.0f} s ({metrics['steps']} steps)")
    shown = list(zip(result["sources"], result["hypotheses"], result["references"]))[:5]
    for source, hypothesis, reference in shown:
        mark = "✓" if hypothesis == reference else f"✗ (expected {reference})"
        log(f"  {source:<40} -> {hypothesis}  {mark}")
    example = next(s for s in result["sources"] if s.isascii())
    cross_attention_png(translator, example, run / "cross_attention.png")
    log(f"\nrun directory: {run}  (metrics.json, checkpoints/, cross_attention.png)")
    log(f'try: seqlab translate {run} "{example}"')
    return metrics
