"""Decoding for encoder-decoder models: greedy and beam search, batched, using the key/value cache.

Any model with ``encode(src) -> (memory, memory_mask)``, ``new_cache()`` (an object with
``reorder(index)``) and ``decode(tgt, memory, memory_mask, cache) -> logits (B, T, V)`` can be decoded
here. ``memory`` is a tensor or a tuple of tensors, batch first.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.tokenizer import BOS_ID, EOS_ID, PAD_ID


@torch.no_grad()
def greedy_decode(model, src: Tensor, max_len: int) -> Tensor:
    """src: (B, S) -> output ids (B, T ≤ max_len), each row ending at <eos> then <pad>."""
    memory, memory_mask = model.encode(src)
    cache = model.new_cache()
    B = src.size(0)
    last = torch.full((B, 1), BOS_ID, dtype=torch.long, device=src.device)
    finished = torch.zeros(B, dtype=torch.bool, device=src.device)
    outputs = []
    for _ in range(max_len):
        logits = model.decode(last, memory, memory_mask, cache)[:, -1]  # (B, V)
        token = logits.argmax(-1).masked_fill(finished, PAD_ID)
        outputs.append(token)
        finished |= token == EOS_ID
        if finished.all():
            break
        last = token.unsqueeze(1)
    return torch.stack(outputs, dim=1)


def repeat_rows(memory, times: int):
    """Each sentence's memory once per hypothesis: (B, …) -> (B·times, …)."""
    if isinstance(memory, tuple):
        return tuple(repeat_rows(m, times) for m in memory)
    return memory.repeat_interleave(times, dim=0)


def length_penalty(length: Tensor, alpha: float) -> Tensor:
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^α (Wu et al., 2016); α = 0 ranks by log-probability alone."""
    return ((5.0 + length.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(model, src: Tensor, max_len: int, beam_size: int = 4, alpha: float = 0.6) -> Tensor:
    """Keeps the ``beam_size`` most probable prefixes per sentence; finished ones are carried along
    unchanged and compete at the end by log-probability / length penalty. -> (B, T) ids."""
    B, K = src.size(0), beam_size
    memory, memory_mask = model.encode(src)
    memory, memory_mask = repeat_rows(memory, K), repeat_rows(memory_mask, K)  # (B·K, S, …)
    cache = model.new_cache()
    device = src.device

    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive so the first step doesn't repeat
    tokens = torch.full((B * K, 0), PAD_ID, dtype=torch.long, device=device)
    lengths = torch.zeros(B * K, dtype=torch.long, device=device)
    finished = torch.zeros(B * K, dtype=torch.bool, device=device)
    last = torch.full((B * K, 1), BOS_ID, dtype=torch.long, device=device)

    for _ in range(max_len):
        log_probs = model.decode(last, memory, memory_mask, cache)[:, -1].float().log_softmax(-1)
        V = log_probs.size(-1)
        # A finished hypothesis may only continue with <pad>, at no cost.
        log_probs[finished] = float("-inf")
        log_probs[finished, PAD_ID] = 0.0
        total = (scores.view(B * K, 1) + log_probs).view(B, K * V)
        scores, flat = total.topk(K, dim=-1)  # (B, K)
        beam = flat // V + torch.arange(B, device=device).unsqueeze(1) * K
        beam, token = beam.view(-1), (flat % V).view(-1)
        cache.reorder(beam)
        tokens = torch.cat([tokens[beam], token.unsqueeze(1)], dim=1)
        finished = finished[beam]
        lengths = lengths[beam] + (~finished).long()
        finished = finished | (token == EOS_ID)
        if finished.all():
            break
        last = token.unsqueeze(1)

    ranked = scores.view(-1) / length_penalty(lengths, alpha)
    best = ranked.view(B, K).argmax(-1) + torch.arange(B, device=device) * K
    return tokens[best]
