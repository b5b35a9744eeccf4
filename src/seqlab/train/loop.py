"""The training loop every task shares: accumulation, clipping, schedules, mixed precision,
evaluation, early stopping, a time budget, metrics, checkpoints and exact resume."""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import torch
from safetensors.torch import load_model
from torch import Tensor, nn
from tqdm import tqdm

from ..errors import UserError
from . import checkpoint
from .config import TrainConfig
from .optim import build_optimizer, build_schedule

LossFn = Callable[[nn.Module, dict[str, Tensor]], tuple[Tensor, int]]  # -> (mean loss, tokens)
EvaluateFn = Callable[[nn.Module], dict[str, float]]


class Batches(Protocol):
    def __next__(self) -> dict[str, Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class Progress:
    step: int = 0
    train_seconds: float = 0.0
    best: float | None = None
    best_step: int = 0
    bad_evals: int = 0
    stopped: str = ""
    last_eval: dict[str, float] = field(default_factory=dict)
    last_eval_step: int = -1


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def move(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class Trainer:
    """Trains ``model`` in ``run_dir``. ``select`` names the metric of ``evaluate`` that picks the
    best checkpoint and drives early stopping (lower is better unless ``maximize``)."""

    def __init__(self, model: nn.Module, config: TrainConfig, run_dir: Path, loss_fn: LossFn,
                 batches: Batches, evaluate: EvaluateFn, select: str = "val_loss",
                 maximize: bool = False, d_model: int = 512) -> None:
        self.config, self.run_dir = config, Path(run_dir)
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        # Checkpoints and evaluation use the plain module; only the training step runs compiled.
        self.train_model = torch.compile(self.model) if config.compile else self.model
        self.loss_fn, self.batches, self.evaluate = loss_fn, batches, evaluate
        self.select, self.maximize = select, maximize
        self.optimizer = build_optimizer(self.model, config)
        self.schedule = build_schedule(self.optimizer, config, d_model)
        self.progress = Progress()
        self.checkpoints = self.run_dir / "checkpoints"

    # --- checkpoints -----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "rng": checkpoint.rng_state(), "data": self.batches.state_dict(),
                "progress": self.progress.__dict__.copy()}

    def save(self, name: str) -> None:
        checkpoint.save_checkpoint(self.checkpoints / name, self.model, self._state())

    def resume(self) -> None:
        """Continue from ``checkpoints/last``: weights, optimizer, schedule, RNG, data position."""
        directory = checkpoint.existing_checkpoint(self.checkpoints / "last")
        if directory is None:
            raise UserError(f"{self.run_dir} has no checkpoint to resume from")
        checkpoint.check_compatible(directory, self.model)
        load_model(self.model, str(directory / "model.safetensors"), device=str(self.device))
        state = checkpoint.load_state(directory)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.batches.load_state_dict(state["data"])
        checkpoint.set_rng_state(state["rng"])
        self.progress = Progress(**state["progress"])

    # --- the loop ----------------------------------------------------------------------------

    def _improved(self, value: float) -> bool:
        best = self.progress.best
        return best is None or (value > best if self.maximize else value < best)

    def _evaluate(self, log: Callable[[dict[str, Any]], None]) -> None:
        self.model.eval()
        with torch.no_grad(), autocast(self.device, self.config.precision):
            metrics = self.evaluate(self.model)
        self.model.train()
        p = self.progress
        p.last_eval, p.last_eval_step = metrics, p.step
        log({"step": p.step, **metrics})
        if self.config.progress:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            tqdm.write(f"step {p.step}/{self.config.max_steps}  {shown}")
        value = metrics[self.select]
        if self._improved(value):
            p.best, p.best_step, p.bad_evals = value, p.step, 0
            self.save("best")
        else:
            p.bad_evals += 1
            if self.config.patience and p.bad_evals >= self.config.patience:
                p.stopped = f"early stopping: {self.select} did not improve in {p.bad_evals} evaluations"
        self.save("last")

    def fit(self, resume: bool = False) -> Progress:
        c, p = self.config, self.progress
        if resume:
            self.resume()
            p = self.progress
            p.stopped = ""
        else:
            checkpoint.seed_everything(c.seed)
        self.model.train()
        log = MetricsLog(self.run_dir, c.tensorboard)
        # disable=None: a bar on a terminal, nothing in a log file or CI.
        bar = tqdm(total=c.max_steps, initial=p.step, disable=None if c.progress else True, unit="step",
                   dynamic_ncols=True, leave=False)
        window_loss, window_tokens, window_start = 0.0, 0, time.perf_counter()
        segment_start = time.perf_counter() - p.train_seconds
        try:
            while p.step < c.max_steps and not p.stopped:
                if c.max_time and time.perf_counter() - segment_start >= c.max_time:
                    p.stopped = f"time budget of {c.max_time:g} s reached"
                    break
                loss_sum, tokens = self._step()
                p.step += 1
                p.train_seconds = time.perf_counter() - segment_start
                window_loss += loss_sum
                window_tokens += tokens
                bar.update(1)
                if p.step % c.log_every == 0:
                    elapsed = time.perf_counter() - window_start
                    row = {"step": p.step, "train_loss": window_loss / max(window_tokens, 1),
                           "lr": self.schedule.get_last_lr()[0], "tokens_per_s": window_tokens / elapsed}
                    log(row)
                    bar.set_postfix(loss=f"{row['train_loss']:.3f}", lr=f"{row['lr']:.2e}",
                                    tok_s=f"{row['tokens_per_s']:.0f}")
                    window_loss, window_tokens, window_start = 0.0, 0, time.perf_counter()
                if p.step % c.eval_every == 0 or p.step == c.max_steps:
                    self._evaluate(log)
            if p.last_eval_step != p.step:  # stopped by the time budget between evaluations
                self._evaluate(log)
        finally:
            bar.close()
            log.close()
        self.restore_best()
        return p

    def _step(self) -> tuple[float, int]:
        c = self.config
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, tokens = 0.0, 0
        for _ in range(c.grad_accum):
            batch = move(next(self.batches), self.device)
            with autocast(self.device, c.precision):
                loss, n = self.loss_fn(self.train_model, batch)
            (loss / c.grad_accum).backward()
            loss_sum += loss.item() * n
            tokens += n
        if not math.isfinite(loss_sum):
            raise FloatingPointError(f"training loss became {loss_sum} at step {self.progress.step + 1}; "
                                     f"lower train.lr or use train.precision='fp32'")
        if c.clip_norm:
            nn.utils.clip_grad_norm_(self.model.parameters(), c.clip_norm, foreach=True)
        self.optimizer.step()
        self.schedule.step()
        return loss_sum, tokens

    def restore_best(self) -> None:
        best = checkpoint.existing_checkpoint(self.checkpoints / "best")
        if best is not None:
            load_model(self.model, str(best / "model.safetensors"), device=str(self.device))


class MetricsLog:
    """Appends rows to ``metrics.jsonl`` and, optionally, TensorBoard event files in ``tb/``."""

    def __init__(self, run_dir: Path, tensorboard: bool) -> None:
        self.file = open(Path(run_dir) / "metrics.jsonl", "a", encoding="utf-8")
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when asked for

            self.writer = SummaryWriter(str(Path(run_dir) / "tb"))

    def __call__(self, row: dict[str, Any]) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["step"])

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: Path) -> Iterator[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            yield json.loads(line)
