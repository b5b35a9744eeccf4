"""``train.precision = "auto"``: before training, time the run's own model on its own batches in each
precision this device offers and keep the fastest that holds accuracy.

The trial runs forward and backward passes only (no optimizer step), then puts back the buffers, the
random generators and the data position, so the run that follows is the one it would have been with
the chosen precision set by hand. Which precision wins depends on the machine (bf16 autocast is faster
than fp32 for wide models on CPUs with bf16 instructions, slower for narrow ones), so a recipe whose
results must not move pins ``train.precision``.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from typing import Any, Callable

import torch
from torch import nn

from . import checkpoint

REFERENCE = "fp32"


def candidates(device: torch.device) -> list[str]:
    """The precisions the loop can train in on ``device``, the reference first."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return [REFERENCE]
    if device.type == "mps":  # bf16 autocast there depends on the macOS version: fp32, which always works
        return [REFERENCE]
    return [REFERENCE, "bf16"]


def holds_accuracy(losses: list[float], reference: list[float], rtol: float = 0.05, atol: float = 0.02) -> bool:
    """Every loss finite and within ``atol + rtol·|reference|`` of the fp32 loss on the same batch."""
    return len(losses) == len(reference) and all(
        math.isfinite(loss) and abs(loss - ref) <= atol + rtol * abs(ref) for loss, ref in zip(losses, reference))


def choose_precision(step_seconds: dict[str, list[float]], losses: dict[str, list[float]],
                     margin: float = 0.1, rtol: float = 0.05, atol: float = 0.02) -> tuple[str, str]:
    """The precision to train in, and why. A pure function of the measurements: ``step_seconds`` are
    each precision's timed steps (the median counts), ``losses`` its loss on each trial batch. A lower
    precision is kept only if its median step is at least ``margin`` (a fraction) faster than fp32's —
    so that timing noise does not flip the choice — and its losses hold (:func:`holds_accuracy`)."""
    median = {name: statistics.median(seconds) for name, seconds in step_seconds.items()}
    reference = losses[REFERENCE]
    rejected = []
    for name in sorted(median, key=median.get):
        if name == REFERENCE:
            break
        if median[name] > (1 - margin) * median[REFERENCE]:
            break  # this one and all after it are not fast enough
        if not holds_accuracy(losses[name], reference, rtol, atol):
            rejected.append(name)
            continue
        return name, f"{median[REFERENCE] / median[name]:.2f}x the steps a second of fp32, losses within tolerance"
    if rejected:
        return REFERENCE, f"{', '.join(rejected)} faster but its loss was off (or not finite)"
    return REFERENCE, f"nothing at least {margin:.0%} faster than fp32"


def time_precisions(train_model: nn.Module, buffers_of: nn.Module, forward_backward: Callable[[dict], float],
                    batches: list[dict], precisions: list[str], autocast: Callable[[str], Any],
                    repeats: int = 3, clock: Callable[[], float] = time.perf_counter,
                    synchronize: Callable[[], None] = lambda: None) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per precision: from the same random state, one untimed pass over ``batches`` (warm-up; its losses
    are the ones compared), then ``repeats`` timed passes, one time per step. Gradients are dropped
    and buffers (running statistics) put back after each pass; the random state after the last one is
    the caller's to restore."""
    rng = checkpoint.rng_state()
    saved = [b.detach().clone() for b in buffers_of.buffers()]
    seconds: dict[str, list[float]] = {}
    losses: dict[str, list[float]] = {}
    for name in precisions:
        checkpoint.set_rng_state(rng)
        seconds[name], losses[name] = [], []
        for timed in [False] + [True] * repeats:
            for batch in batches:
                train_model.zero_grad(set_to_none=True)
                synchronize()
                start = clock()
                with autocast(name):
                    loss = forward_backward(batch)  # a Python float: the device has finished
                synchronize()
                if timed:
                    seconds[name].append(clock() - start)
                else:
                    losses[name].append(loss)
            with torch.no_grad():
                for buffer, value in zip(buffers_of.buffers(), saved):
                    buffer.copy_(value)
    train_model.zero_grad(set_to_none=True)
    checkpoint.set_rng_state(rng)
    return seconds, losses


def peek_batches(batches: Any, n: int) -> list[dict]:
    """The next ``n`` batches of an endless iterator with ``state_dict``, leaving its position as it was."""
    position = copy.deepcopy(batches.state_dict())
    taken = [next(batches) for _ in range(n)]
    batches.load_state_dict(position)
    return taken


def report(choice: str, reason: str, seconds: dict[str, list[float]], losses: dict[str, list[float]]) -> dict[str, Any]:
    """What ``precision.json`` holds."""
    return {"precision": choice, "reason": reason,
            "median_step_ms": {k: round(statistics.median(v) * 1e3, 3) for k, v in seconds.items()},
            "step_ms": {k: [round(s * 1e3, 3) for s in v] for k, v in seconds.items()},
            "trial_losses": losses}


def describe(result: dict[str, Any]) -> str:
    """One log line."""
    times = ", ".join(f"{k} {v:.1f} ms" for k, v in result["median_step_ms"].items())
    return f"precision auto: {result['precision']} (median step {times}; {result['reason']})"
