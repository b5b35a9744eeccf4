"""Sampling from a language model: temperature, top-k and nucleus (top-p) filtering, one token at a
time through the model's key/value (or recurrent) cache.

Any model with ``forward(ids, cache) -> logits (B, T, V)``, ``new_cache()`` and ``max_len`` (None for
no limit) can be sampled here.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import Tensor


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> Tensor:
    """logits: (…, V) -> (…, V) with the tokens that may not be drawn set to -inf."""
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        # Nucleus sampling (Holtzman et al., 2020): the smallest set of most probable tokens whose
        # probability reaches top_p. A token stays if the mass before it is still below top_p.
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)
        drop_sorted = before >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


MAX_NEW_TOKENS = 10**7  # a bound on one call: far past any use, short of a loop that never ends


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not 0 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ValueError(f"max_new_tokens must be between 0 and {MAX_NEW_TOKENS:,}; got {max_new_tokens}")
    if not (math.isfinite(temperature) and 0 <= temperature <= 1e6):
        raise ValueError(f"temperature must be a number in [0, 1e6]; got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1; got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1]; got {top_p}")


class CompileError(RuntimeError):
    """torch.compile could not build the decoding step (on a CPU it needs a C++ compiler)."""


def check_compile(model, use_cache: bool = True) -> None:
    """A ValueError unless ``model`` can generate with ``compile=True``."""
    if not (use_cache and hasattr(model, "decode_step")):
        raise ValueError(f"compiled generation needs the key/value cache of a model with decode_step; "
                         f"{type(model).__name__} {'has none' if use_cache else 'was asked for none'}")
    model.check_static_decoding()


def compiled_step(model):
    """``model.decode_step`` through ``torch.compile``: one graph for every position (the step's shapes
    never change), compiled at the first call for each batch size and cache capacity. The weights are
    the graph's inputs, not constants, so a model trained further is decoded with its new weights."""
    compiled = torch.compile(type(model).decode_step, fullgraph=True, dynamic=False)
    first = True

    def step(*args):
        nonlocal first
        if not first:
            return compiled(*args)
        try:
            out = compiled(*args)
        except Exception as error:  # the backend's own errors are of many kinds; say which, in one line
            reason = str(error).strip().splitlines()
            raise CompileError(f"torch.compile could not build the decoding step ({type(error).__name__}: "
                               f"{reason[0] if reason else ''}); generate without compiling") from error
        first = False
        return out

    return step


@torch.no_grad()
def stream(model, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, eos_id: int | None = None, use_cache: bool = True,
           generator: torch.Generator | None = None, compile: bool = False) -> Iterator[Tensor]:
    """ids: (B, T) prompt -> yields each new token, (B,). Temperature 0 takes the most probable
    token. A model with ``max_len`` sees at most the last ``max_len`` positions: once the cache is
    full, the window slides and is recomputed each step (as without a cache).

    ``compile``: after the prompt, each token goes through ``model.decode_step`` compiled (a model
    that has one: :class:`TransformerLM` with learned or sinusoidal positions) with a fixed-size
    cache; the same arithmetic in fewer, fused kernels (compiling takes seconds, once per shape)."""
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    if ids.size(1) == 0:
        raise ValueError("generation needs a prompt of at least one token")
    if compile:
        check_compile(model, use_cache)
    max_len = model.max_len
    cache = model.new_cache() if use_cache else None
    step = None  # the compiled step, once the prompt is read
    new, generated = ids, []  # the positions the model has not read yet; the tokens made so far
    context = None  # prompt and tokens, kept once the model reads the whole window every step
    finished = torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)
    for i in range(max_new_tokens):
        if cache is not None and (max_len is None or cache.offset + new.size(1) <= max_len):
            if step is not None:
                logits = step(model, new, cache)[:, -1]
                cache.advance()
            else:
                logits = model(new, cache)[:, -1]
            if compile and step is None and i + 1 < max_new_tokens and (max_len is None or cache.offset < max_len):
                # Room for every token still to be read (the last one made is never read), within max_len;
                # a prompt that fills max_len leaves none: the window slides from the next token, uncompiled.
                capacity = cache.offset + max_new_tokens - 1 - i
                cache = model.static_cache(cache, capacity if max_len is None else min(capacity, max_len))
                step = compiled_step(model)
        else:
            cache = None  # past max_len: no cache from here on
            if context is None:
                context = torch.cat([ids, torch.stack(generated, dim=1)], dim=1) if generated else ids
            window = context if max_len is None else context[:, -max_len:]
            logits = model(window)[:, -1]
        if temperature == 0:
            token = logits.argmax(-1)
        else:
            probs = filter_logits(logits, temperature, top_k, top_p).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        if eos_id is not None:
            token = token.masked_fill(finished, eos_id)
            finished |= token == eos_id
        yield token
        if eos_id is not None and bool(finished.all()):
            return
        generated.append(token)
        new = token.unsqueeze(1)
        if context is not None:
            context = torch.cat([context, new], dim=1)


def generate(model, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, eos_id: int | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None, compile: bool = False) -> Tensor:
    """ids: (B, T) -> (B, T + new) prompt and continuation; rows that reached ``eos_id`` are padded
    with it."""
    tokens = list(stream(model, ids, max_new_tokens, temperature, top_k, top_p, eos_id, use_cache, generator,
                         compile))
    return torch.cat([ids, torch.stack(tokens, dim=1)], dim=1) if tokens else ids
