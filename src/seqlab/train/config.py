"""Settings of the training engine, shared by every task (the ``[train]`` section of a recipe)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .device import CHOICES as DEVICE_CHOICES, valid_device_name

# Upper bounds far above any sensible value: beyond them a setting is a typo (an exponent's sign, a unit).
LIMITS = {"lr": 10.0, "eps": 1.0, "weight_decay": 10.0, "clip_norm": 1e6, "max_time": 1e8}
MAX_STEPS = 10**12
MAX_SEED = 2**32 - 1


@dataclass
class TrainConfig:
    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = 1e-3  # peak learning rate (ignored by the "noam" schedule, which sets its own)
    betas: tuple[float, float] = (0.9, 0.98)  # the paper's β1, β2 (§5.3)
    eps: float = 1e-9
    weight_decay: float = 0.01
    schedule: Literal["noam", "cosine", "constant"] = "cosine"
    warmup_steps: int = 400
    max_steps: int = 2000  # optimizer steps
    batch_size: int = 64
    grad_accum: int = 1  # micro-batches per optimizer step
    clip_norm: float = 1.0  # 0 turns clipping off
    label_smoothing: float = 0.1  # ε_ls of §5.4
    eval_every: int = 500
    patience: int = 0  # evaluations without improvement before stopping; 0 = never stop early
    # A cap on training seconds on top of max_steps; 0 = none. Under a cap the schedule also follows the
    # budget spent, so the run depends on the machine's speed (see Trainer).
    max_time: float = 0.0
    stop_at_step: int = 0  # pause after this step (continue with --resume); 0 = run to max_steps
    # "auto": time a few steps of the run's own model in fp32 and bf16 and keep the faster that holds
    # accuracy (seqlab.train.precision); results then depend on the machine, so recipes that must not pin it.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: str = "auto"  # auto: cuda if available, then mps, then cpu (seqlab.train.device)
    seed: int = 0
    log_every: int = 50
    tensorboard: bool = True
    curves: bool = True  # draw curves.png (training loss, the validation metric) when training ends
    progress: bool = True
    compile: bool = False  # torch.compile the training forward/backward (evaluation runs eagerly)

    def __post_init__(self) -> None:
        positive = {"max_steps": self.max_steps, "batch_size": self.batch_size,
                    "grad_accum": self.grad_accum, "eval_every": self.eval_every, "log_every": self.log_every}
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"train.{name} must be at least 1; got {value}")
        for name, limit in LIMITS.items():
            value = getattr(self, name)
            if not math.isfinite(value) or not 0 <= value <= limit:
                raise ValueError(f"train.{name} must be a number in [0, {limit:g}]; got {value}")
        for name in ("max_steps", "warmup_steps", "stop_at_step", "eval_every", "log_every"):
            if getattr(self, name) > MAX_STEPS:
                raise ValueError(f"train.{name} must be at most {MAX_STEPS:.0e} steps; got {getattr(self, name)}")
        if not all(0.0 <= beta < 1.0 for beta in self.betas):
            raise ValueError(f"train.betas must both be in [0, 1); got {list(self.betas)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"train.label_smoothing must be in [0, 1); got {self.label_smoothing}")
        if self.warmup_steps < 0 or self.patience < 0 or self.stop_at_step < 0:
            raise ValueError("train.warmup_steps, train.patience and train.stop_at_step must not be negative")
        if not 0 <= self.seed <= MAX_SEED:  # what every generator seeded from it accepts (scikit-learn's too)
            raise ValueError(f"train.seed must be in [0, {MAX_SEED}]; got {self.seed}")
        if not valid_device_name(self.device):
            raise ValueError(f"train.device must be {DEVICE_CHOICES}; got {self.device!r}")
