"""Decoding for encoder-decoder models: greedy and beam search, batched, using the key/value cache.

Any model with ``encode(src) -> (memory, memory_mask)``, ``new_cache()`` (an object with
``reorder(index)``: keep batch rows ``index``, which may be fewer than the batch's; a row only ever
takes the place of another hypothesis of its own sentence, so what the cache holds of a sentence's
source is the same before and after) and
``decode(tgt, memory, memory_mask, cache) -> logits (B, T, V)`` can be decoded here. ``memory`` is a
tensor or a tuple of tensors, batch first.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.tokenizer import BOS_ID, EOS_ID, PAD_ID


@torch.no_grad()
def greedy_decode(model, src: Tensor, max_len: int) -> Tensor:
    """src: (B, S) -> output ids (B, T ≤ max_len), each row ending at <eos> then <pad>; (B, 0) for
    ``max_len`` 0."""
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
    return torch.stack(outputs, dim=1) if outputs else src.new_zeros((B, 0))


def repeat_rows(memory, times: int):
    """Each sentence's memory once per hypothesis: (B, …) -> (B·times, …)."""
    if isinstance(memory, tuple):
        return tuple(repeat_rows(m, times) for m in memory)
    return memory.repeat_interleave(times, dim=0)


def select_rows(memory, rows: Tensor):
    """The memory of batch rows ``rows`` only: (N, …) -> (len(rows), …)."""
    if isinstance(memory, tuple):
        return tuple(select_rows(m, rows) for m in memory)
    return memory.index_select(0, rows)


def length_penalty(length: Tensor | int, alpha: float) -> Tensor | float:
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^α (Wu et al., 2016); α = 0 ranks by log-probability alone.
    Lengths in an integer tensor give float lps, a Python int a float."""
    return ((5.0 + length) / 6.0) ** alpha


def decided(scores: Tensor, finished: Tensor, lengths: Tensor, alpha: float, step: int, max_len: int) -> Tensor:
    """Per sentence, whether its result can no longer change: its best finished hypothesis f (by log P /
    lp) stays in the beam (every live one is less probable, and a prefix only loses probability as it
    grows) and no live one can overtake it at the end, even reaching its most favourable length
    (log P < 0 divided by the largest lp of the lengths still possible). scores, finished: (B, K) -> (B,)."""
    ranked = scores / length_penalty(lengths, alpha)
    best, which = ranked.masked_fill(~finished, float("-inf")).max(-1)  # -inf where none has finished
    live = scores.masked_fill(finished, float("-inf")).max(-1).values  # -inf where all are finished
    largest_lp = max(length_penalty(step + 1, alpha), length_penalty(max_len, alpha))  # on the host: no copy to the device
    # Where none has finished, best is -inf and no live score divided by an lp lies below it.
    return (live < scores.gather(1, which.unsqueeze(1)).squeeze(1)) & (best > live / largest_lp)


@torch.no_grad()
def beam_search(model, src: Tensor, max_len: int, beam_size: int = 4, alpha: float = 0.6) -> Tensor:
    """Keeps the ``beam_size`` most probable prefixes per sentence; finished ones are carried along
    unchanged and compete at the end by log-probability / length penalty. -> (B, T) ids, each row's
    tokens ending at <eos> then <pad>.

    A sentence leaves the search as soon as its result can no longer change (:func:`decided`), not
    only when all its hypotheses have finished: its winner is written out and its rows leave the batch
    (the decoder's cache, the memory), so later steps compute only the sentences still undecided. The
    search ends when none is left: the same output as running every sentence to the end, fewer rows
    and fewer steps."""
    B, K = src.size(0), beam_size
    device = src.device
    memory, memory_mask = model.encode(src)
    memory, memory_mask = repeat_rows(memory, K), repeat_rows(memory_mask, K)  # (B·K, S, …)
    cache = model.new_cache()

    alive = torch.arange(B, device=device)  # the sentences still searched: alive[i]'s rows are i·K … i·K + K − 1
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive so the first step doesn't repeat
    lengths = torch.zeros(B * K, dtype=torch.long, device=device)
    finished = torch.zeros(B * K, dtype=torch.bool, device=device)
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)  # each hypothesis's tokens so far
    last = torch.full((B * K, 1), BOS_ID, dtype=torch.long, device=device)
    out = torch.full((B, max_len), PAD_ID, dtype=torch.long, device=device)
    only_pad = None
    steps = max_len

    for step in range(max_len):
        b = alive.size(0)
        log_probs = model.decode(last, memory, memory_mask, cache)[:, -1].float().log_softmax(-1)  # (b·K, V)
        V = log_probs.size(-1)
        if only_pad is None:
            only_pad = torch.full((V,), float("-inf"), device=device)
            only_pad[PAD_ID] = 0.0
        # A finished hypothesis may only continue with <pad>, at no cost.
        log_probs = torch.where(finished.unsqueeze(1), only_pad, log_probs)
        total = (scores.view(b * K, 1) + log_probs).view(b, K * V)
        scores, flat = total.topk(K, dim=-1)  # (b, K)
        first_row = torch.arange(b, device=device).unsqueeze(1) * K  # (b, 1)
        beam, token = (flat // V + first_row).view(-1), (flat % V).view(-1)  # (b·K,) parent rows, new tokens
        history = torch.cat([history.index_select(0, beam), token.unsqueeze(1)], dim=1)
        finished = finished[beam]
        lengths = lengths[beam] + (~finished).long()
        finished = finished | (token == EOS_ID)
        done = decided(scores, finished.view(b, K), lengths.view(b, K), alpha, step, max_len)  # (b,)
        if step == max_len - 1:
            done = torch.ones_like(done)
        if bool(done.any()):
            ended = done.nonzero().squeeze(1)
            ranked = (scores / length_penalty(lengths.view(b, K), alpha)).index_select(0, ended)
            winners = ranked.argmax(-1) + ended * K  # (n_ended,) rows
            out[alive.index_select(0, ended), : step + 1] = history.index_select(0, winners)
            if ended.size(0) == b:
                steps = step + 1
                break
            kept = (~done).nonzero().squeeze(1)
            rows = (kept.unsqueeze(1) * K + torch.arange(K, device=device)).view(-1)  # (b'·K,)
            alive, scores = alive.index_select(0, kept), scores.index_select(0, kept)
            beam, token = beam.index_select(0, rows), token.index_select(0, rows)
            history, finished, lengths = history[rows], finished[rows], lengths[rows]
            memory, memory_mask = select_rows(memory, rows), select_rows(memory_mask, rows)
        cache.reorder(beam)
        last = token.unsqueeze(1)
    return out[:, :steps]
