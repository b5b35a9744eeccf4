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
    if len(step_seconds) < 2:
        return REFERENCE, "no other precision left to time"
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


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
MATMUL_SIZE = 256


def matmul_seconds(device: torch.device, name: str, size: int = MATMUL_SIZE, repeats: int = 3,
                   clock: Callable[[], float] = time.perf_counter,
                   synchronize: Callable[[], None] = lambda: None) -> float:
    """The best of ``repeats`` timings of one ``size``³ matrix product in ``name``'s dtype on ``device``
    (after one untimed product). Its numbers come from a generator of its own: the run's random state
    is not touched."""
    generator = torch.Generator(device=device).manual_seed(0)
    a, b = (torch.rand(size, size, generator=generator, device=device).to(DTYPES[name]) for _ in range(2))
    best = math.inf
    for timed in [False] + [True] * repeats:
        synchronize()
        start = clock()
        a @ b
        synchronize()
        if timed:
            best = min(best, clock() - start)
    return best


def slow_at_matmul(seconds: dict[str, float], limit: float = 2.0) -> dict[str, str]:
    """The precisions whose matrix product takes more than ``limit`` times fp32's, each with why: a
    model's step is mostly matrix products, so such a precision cannot be the faster, and one step of
    it can take minutes (bf16 on a CPU without bf16 instructions: 35-104x slower than fp32, measured on
    an AVX2-only AMD EPYC). The trial skips them."""
    reference = seconds[REFERENCE]
    return {name: f"its {MATMUL_SIZE}\u00b3 matrix product took {t / reference:.1f}x fp32's on this device"
            for name, t in seconds.items() if name != REFERENCE and t > limit * reference}


def first_sentence(error: Exception) -> str:
    """An error's first sentence, for one line (oneDNN's go on about ONEDNN_VERBOSE)."""
    return (str(error).strip() or type(error).__name__).splitlines()[0].split(". ")[0].rstrip(".")[:160]


def no_kernel(error: RuntimeError) -> bool:
    """Whether ``error`` is oneDNN finding no kernel for a layer in this dtype (bf16 LSTM on a CPU
    without bf16 instructions), not a fault of the model or the data."""
    return "could not create a primitive" in str(error)


def time_precisions(train_model: nn.Module, buffers_of: nn.Module, forward_backward: Callable[[dict], float],
                    batches: list[dict], precisions: list[str], autocast: Callable[[str], Any],
                    repeats: int = 3, clock: Callable[[], float] = time.perf_counter,
                    synchronize: Callable[[], None] = lambda: None,
                    give_up: float = 3.0, enough: float = 2.0,
                    agree: Callable[[bool], bool] = lambda late: late,
                    ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, str]]:
    """Per precision (fp32 first): from the same random state, one untimed pass over ``batches``
    (warm-up; its losses are the ones compared), then ``repeats`` timed passes, one time per step —
    fewer once its timed steps add up to ``enough`` seconds at the end of a pass (a model whose step
    takes seconds is timed well by one pass, and each further pass would cost a short run more than
    it could gain: 8.4 s fp32 steps, measured). Gradients are dropped and buffers (running statistics)
    put back after each pass; the random state after the last one is the caller's to restore. A
    precision one of whose steps (warm-up included) takes more than ``give_up`` times fp32's slowest
    step cannot win: its trial ends there, and that step's time is all it records. A precision other
    than fp32 with no kernel for a layer of this model (:func:`no_kernel`: oneDNN has no bf16 LSTM on a
    CPU without bf16 instructions) is left out of the first two results and named, with the error's
    first sentence, in the third; any other error is raised. ``agree`` makes both timing decisions the
    same on every rank of a job (the main rank's), since each step's collectives need every rank."""
    rng = checkpoint.rng_state()
    saved = [b.detach().clone() for b in buffers_of.buffers()]
    seconds: dict[str, list[float]] = {}
    losses: dict[str, list[float]] = {}
    failed: dict[str, str] = {}
    reference_steps: list[float] = []  # fp32's, warm-up included

    def step(name: str, batch: dict) -> tuple[float, float]:
        train_model.zero_grad(set_to_none=True)
        synchronize()
        start = clock()
        with autocast(name):
            loss = forward_backward(batch)  # a Python float: the device has finished
        synchronize()
        return clock() - start, loss

    for name in precisions:
        checkpoint.set_rng_state(rng)
        seconds[name], losses[name] = [], []
        passes = [(timed, batch) for timed in [False] + [True] * repeats for batch in batches]
        for i, (timed, batch) in enumerate(passes):
            try:
                took, loss = step(name, batch)
            except RuntimeError as error:
                if name == REFERENCE or not no_kernel(error):  # anything else is the run's own error
                    raise
                failed[name] = f"its trial step failed on this device ({first_sentence(error)})"
                del seconds[name], losses[name]
                break
            if name == REFERENCE:
                reference_steps.append(took)
            elif agree(bool(reference_steps) and took > give_up * max(reference_steps)):
                seconds[name] = [took]
                break
            if timed:
                seconds[name].append(took)
            else:
                losses[name].append(loss)
            if (i + 1) % len(batches) == 0:  # the end of a pass
                restore(buffers_of, saved)
                if timed and agree(sum(seconds[name]) >= enough):
                    break
        restore(buffers_of, saved)
    train_model.zero_grad(set_to_none=True)
    checkpoint.set_rng_state(rng)
    return seconds, losses, failed


def restore(module: nn.Module, saved: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for buffer, value in zip(module.buffers(), saved):
            buffer.copy_(value)


def peek_batches(batches: Any, n: int) -> list[dict]:
    """The next ``n`` batches of an endless iterator with ``state_dict``, leaving its position as it was."""
    position = copy.deepcopy(batches.state_dict())
    taken = [next(batches) for _ in range(n)]
    batches.load_state_dict(position)
    return taken


def report(choice: str, reason: str, seconds: dict[str, list[float]], losses: dict[str, list[float]],
           skipped: dict[str, str] | None = None) -> dict[str, Any]:
    """What ``precision.json`` holds; ``skipped``: the precisions not tried or whose trial failed, each
    with why."""
    result = {"precision": choice, "reason": reason,
              "median_step_ms": {k: round(statistics.median(v) * 1e3, 3) for k, v in seconds.items()},
              "step_ms": {k: [round(s * 1e3, 3) for s in v] for k, v in seconds.items()},
              "trial_losses": losses}
    if skipped:
        result["skipped"] = skipped
    return result


def describe(result: dict[str, Any]) -> str:
    """One log line."""
    times = ", ".join(f"{k} {v:.1f} ms" for k, v in result["median_step_ms"].items())
    timed = f"median step {times}; " if times else ""
    skipped = "".join(f"; {name} left out: {why}" for name, why in result.get("skipped", {}).items())
    return f"precision auto: {result['precision']} ({timed}{result['reason']}{skipped})"
