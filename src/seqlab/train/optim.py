"""Optimiser and learning-rate schedules."""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from .config import TrainConfig


LR_SCALE = "lr_scale"  # a parameter's attribute: its learning rate relative to the run's


def scale_lr(parameters: Iterable[nn.Parameter], scale: float) -> None:
    """Train ``parameters`` at ``scale`` times the run's learning rate (at every step of the schedule):
    a pre-trained body more gently than a new head (Howard & Ruder, 2018 §3.2)."""
    for p in parameters:
        setattr(p, LR_SCALE, scale)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam(W) with the paper's β = (0.9, 0.98), ε = 1e-9 by default. Weight decay spares biases,
    norms and embeddings' 1-D parameters; the update runs as one foreach kernel per group. A parameter
    marked by :func:`scale_lr` goes in a group whose rate is scaled; frozen ones (no grad) in none."""
    decay = config.weight_decay if config.optimizer == "adamw" else 0.0
    # The noam schedule yields the rate itself, so its base rate is 1.
    lr = 1.0 if config.schedule == "noam" else config.lr
    groups: dict[tuple, dict] = {}
    for p in model.parameters():
        if p.requires_grad:
            # Parameters sharded by tensor parallel (DTensors) get groups of their own: one foreach
            # kernel takes DTensors or plain tensors, never both.
            scale = getattr(p, LR_SCALE, 1.0)
            key = (p.dim() >= 2, getattr(p, "device_mesh", None) is not None, scale)
            groups.setdefault(key, {"params": [], "weight_decay": decay if key[0] else 0.0,
                                    "lr": lr * scale})["params"].append(p)
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer_class(list(groups.values()), lr=lr, betas=tuple(config.betas), eps=config.eps, foreach=True)


def noam_rate(step: int, d_model: int, warmup: int) -> float:
    """lrate = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)  (§5.3, eq. 3); step counts from 1."""
    step = max(step, 1)
    return d_model**-0.5 * min(step**-0.5, step * max(warmup, 1) ** -1.5)


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1, then half a cosine down to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def scheduled_step(step: int, config: TrainConfig, elapsed: Callable[[], float] | None = None) -> float:
    """The step the schedule is read at. Under a time budget (``train.max_time``) a run is as far along
    as the larger of its two fractions, steps done and budget spent:
    progress = max(step / max_steps, elapsed / max_time), so a run stopped by its budget ends annealed
    rather than at a high rate. Without a budget this is ``step`` itself, and the schedule depends on
    nothing but the step (so resume is exact); with one, it depends on the wall clock."""
    if not config.max_time or elapsed is None:
        return step
    return max(step, min(elapsed() / config.max_time, 1.0) * config.max_steps)


def build_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, d_model: int,
                   elapsed: Callable[[], float] | None = None) -> LambdaLR:
    """``elapsed``: seconds of training so far (read when the schedule steps), for a time budget."""
    def at(step: int) -> float:
        return scheduled_step(step, config, elapsed)

    if config.schedule == "noam":
        return LambdaLR(optimizer, lambda step: noam_rate(at(step) + 1, d_model, config.warmup_steps))
    if config.schedule == "cosine":
        return LambdaLR(optimizer, lambda step: warmup_cosine(at(step), config.warmup_steps, config.max_steps))
    return LambdaLR(optimizer, lambda step: min(1.0, (at(step) + 1) / max(config.warmup_steps, 1)))
