"""The training loop every task shares: accumulation, clipping, schedules, mixed precision,
evaluation, early stopping, a time budget, metrics, checkpoints and exact resume."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..errors import UserError
from ..io import METRICS_FILE, atomic_write, write_json
from ..parallel.runtime import SingleProcess
from . import checkpoint, precision
from .config import TrainConfig
from .device import resolve_device
from .interrupt import StopRequests
from .optim import build_optimizer, build_schedule
from .progress import ProgressDisplay

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
    precision: str = ""  # what the run trains in (train.precision "auto" resolved); a resumed run keeps it


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def move(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


DEADLINE_PASSED = "stopped by its caller's time budget"  # Progress.stopped when the Trainer's deadline stopped it


class Trainer:
    """Trains ``model`` in ``run_dir``. ``select`` names the metric of ``evaluate`` that picks the
    best checkpoint and drives early stopping (lower is better unless ``maximize``); ``select=None``
    (no validation data) keeps the latest checkpoint as the best. ``parallel``
    is the process layout (:mod:`seqlab.parallel.runtime`): one process unless torchrun started several.

    A run ends at ``max_steps``; ``max_time`` (seconds, 0 = none) is a cap on top. Under a cap the
    learning-rate schedule follows whichever is further along, steps or the budget spent
    (:func:`seqlab.train.optim.scheduled_step`): such a run depends on the machine's speed, and its
    resume continues the schedule from the saved training time, not bit for bit."""

    def __init__(self, model: nn.Module, config: TrainConfig, run_dir: Path, loss_fn: LossFn,
                 batches: Batches, evaluate: EvaluateFn, select: str | None = "val_loss",
                 maximize: bool = False, d_model: int = 512, parallel: SingleProcess | None = None,
                 clock: Callable[[], float] = time.perf_counter, deadline: float | None = None) -> None:
        self.config, self.run_dir = config, Path(run_dir)
        self.clock = clock  # seconds; injectable so that tests can run a time budget without waiting
        # A clock reading after which the run stops at the next step (one process). Unlike max_time it
        # leaves the schedule alone: a run that ends before it trained exactly as without it.
        self.deadline = deadline
        self._segment_start: float | None = None  # the clock when this process's training began, less earlier segments
        self._elapsed_at: tuple[int, float] = (-1, 0.0)
        self.parallel = parallel or SingleProcess()
        self.device = resolve_device(config.device, self.parallel.world)
        self.model = model.to(self.device)
        # The step calls train_model (wrapped for data parallel, or a pipeline stage) and the optimizer
        # updates `trained`'s parameters; evaluation and exported weights use the model itself.
        self.train_model, self.trained = self.parallel.apply(self.model)
        if config.compile:  # only the training step runs compiled
            self.train_model = torch.compile(self.train_model)
        self.loss_fn, self.batches, self.evaluate = loss_fn, batches, evaluate
        self.select, self.maximize = select, maximize
        self.optimizer = build_optimizer(self.trained, config)
        self.schedule = build_schedule(self.optimizer, config, d_model, elapsed=self._elapsed)
        self.progress = Progress()
        self.precision = "fp32" if config.precision == "auto" else config.precision  # "auto": chosen in fit
        self.checkpoints = self.run_dir / "checkpoints"

    # --- checkpoints -----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict(), "rng": checkpoint.rng_state(),
                "data": self.batches.state_dict(), "progress": self.progress.__dict__.copy()}

    def save(self, name: str, resumable: bool = True) -> None:
        """A checkpoint directory, swapped in whole: the model's weights (safetensors, what
        ``from_pretrained`` reads), the step's state, and — when ``resumable`` — the weights and optimizer
        state (safetensors + JSON from one process; through torch.distributed.checkpoint, sharded as the
        ranks hold them, from several)."""
        p, directory = self.parallel, self.checkpoints / name
        staging = p.on_main(lambda: checkpoint.staging_dir(directory))
        whole = p.export(self.model)
        if resumable:
            p.save_training_state(self.trained, self.optimizer, staging)
        if p.is_main:
            checkpoint.write_checkpoint(staging, whole, self._state())
            checkpoint.swap_in(staging, directory)
        p.barrier()

    def resume(self) -> bool:
        """Continue from ``checkpoints/last``: weights, optimizer, schedule, RNG, data position —
        with any number of ranks, whatever number saved it. False when no ``last`` was ever completed
        (the run was killed before or while writing its first): the run starts again from step 0, which
        repeats it exactly, rather than from ``best`` with a fresh optimizer."""
        directory, damaged = checkpoint.resumable_checkpoint(self.checkpoints)
        if directory is None or (directory.name in ("best", ".best.old") and not damaged):
            return False
        checkpoint.check_compatible(directory, self.model)
        fallback = directory.name in ("best", ".best.old")  # `last` is damaged: best's weights, a fresh optimizer
        if not fallback and not checkpoint.has_training_state(directory):
            raise UserError(f"{directory} holds no optimizer state (written by an older seqlab); start a new run")
        if damaged and self.parallel.is_main:
            sys.stderr.write(f"warning: {damaged[0]}; resuming from {directory} instead"
                             f"{' with a fresh optimizer state' if fallback else ''}\n")
        if fallback:
            self.parallel.load_weights(self.model, directory / "model.safetensors")
        else:
            self.parallel.load_training_state(self.trained, self.optimizer, directory)
        state = checkpoint.load_state(directory)
        self.schedule.load_state_dict(state["schedule"])
        self.batches.load_state_dict(state["data"])
        checkpoint.set_rng_state(state["rng"])
        self.progress = Progress(**state["progress"])
        if self.progress.step == 0 or fallback:  # Adam's state starts empty (before the first update: step 0)
            self.optimizer.state.clear()
        return True

    # --- the loop ----------------------------------------------------------------------------

    def _improved(self, value: float | None) -> bool:
        if self.select is None:
            return True
        best = self.progress.best
        return best is None or (value > best if self.maximize else value < best)

    def _evaluate(self, log: Callable[[dict[str, Any]], None]) -> None:
        self.parallel.before_eval(self.model)
        self.model.eval()
        with torch.no_grad(), autocast(self.device, self.precision):
            metrics = self.evaluate(self.model)
        metrics = self.parallel.agree(metrics)  # the main rank's figures decide best and early stopping everywhere
        self.model.train()
        p = self.progress
        p.last_eval, p.last_eval_step = metrics, p.step
        log({"step": p.step, **metrics})
        if self.config.progress and self.parallel.is_main:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            tqdm.write(f"step {p.step}/{self.config.max_steps}  {shown}")
        value = metrics[self.select] if self.select else None
        if self._improved(value):
            p.best, p.best_step, p.bad_evals = value, p.step, 0
            self.save("best", resumable=False)
        else:
            p.bad_evals += 1
            if self.config.patience and p.bad_evals >= self.config.patience:
                p.stopped = f"early stopping: {self.select} did not improve in {p.bad_evals} evaluations"
        self.save("last")

    def fit(self, resume: bool = False) -> Progress:
        c, p = self.config, self.progress
        stop_at = c.stop_at_step
        if resume and self.resume():
            p = self.progress
            p.stopped = ""
            if stop_at <= p.step:  # the pause already happened: --resume continues past it
                stop_at = 0
            if c.max_time and p.train_seconds >= c.max_time and p.step < c.max_steps:
                raise UserError(f"{self.run_dir} has used its time budget (train.max_time={c.max_time:g} s); to "
                                f"continue it, give a larger one: --set train.max_time="
                                f"{math.ceil(p.train_seconds + c.max_time)} ({c.max_time:g} s more), or 0 for none")
        else:
            checkpoint.seed_everything(c.seed)
        self.model.train()
        self.precision = p.precision = self._choose_precision(p.precision if resume else "")
        log = MetricsLog(self.run_dir, c.tensorboard, enabled=self.parallel.is_main,
                         after_step=p.step if resume else None)
        bar = ProgressDisplay(expected_steps(p.step, p.train_seconds, c), p.step,
                              enabled=c.progress and self.parallel.is_main, clock=self.clock)
        window_loss, window_tokens, window_start = 0.0, 0, self.clock()
        segment_start = self._segment_start = self.clock() - p.train_seconds
        # Ctrl-C or SIGTERM ends the run after the step under way, with a resumable checkpoint of that step
        # (several processes would have to agree on the step: they keep the last evaluation's instead).
        stop = StopRequests(enabled=self.parallel.world == 1)
        try:
            while p.step < c.max_steps and not p.stopped:
                if c.max_time and self._out_of_time(segment_start):
                    p.stopped = f"time budget of {c.max_time:g} s reached"
                    p.train_seconds = max(p.train_seconds, c.max_time)  # spent: --resume asks for more
                    break
                if self.deadline is not None and self.clock() >= self.deadline:
                    p.stopped = DEADLINE_PASSED
                    break
                if stop_at and p.step >= stop_at:
                    p.stopped = f"paused at step {p.step} (train.stop_at_step); continue with --resume"
                    break
                loss_sum, tokens = self._step()
                p.step += 1
                p.train_seconds = self.clock() - segment_start
                window_loss += loss_sum
                window_tokens += tokens
                # the bar's total (and so its ETA) is where a time budget will stop the run
                bar.update(p.step, expected_steps(p.step, p.train_seconds, c), loss_sum, tokens)
                if p.step % c.log_every == 0:
                    elapsed = self.clock() - window_start
                    row = {"step": p.step, "train_loss": window_loss / max(window_tokens, 1),
                           "lr": self.schedule.get_last_lr()[0], "tokens_per_s": window_tokens / elapsed}
                    log(row)
                    bar.set_postfix(loss=f"{row['train_loss']:.3f}", lr=f"{row['lr']:.2e}",
                                    tok_s=f"{row['tokens_per_s']:.0f}")
                    window_loss, window_tokens, window_start = 0.0, 0, self.clock()
                if p.step % c.eval_every == 0 or p.step == c.max_steps:
                    self._evaluate(log)
                if stop.requested and p.step < c.max_steps and not p.stopped:  # else the run has just ended
                    if p.last_eval_step != p.step:
                        self.save("last")
                    raise KeyboardInterrupt
            if p.last_eval_step != p.step:  # stopped by the time budget between evaluations
                self._evaluate(log)
        finally:
            stop.close()
            bar.close()
            log.close()
            if c.curves and self.parallel.is_main:  # also for a run stopped by an error: what it learned so far
                self.draw_curves()
        self.restore_best()
        return p

    def _choose_precision(self, resumed: str) -> str:
        """``train.precision``, or for "auto" the fastest precision that holds accuracy on this run's own
        model and batches (:mod:`seqlab.train.precision`), written to ``precision.json``. A resumed run
        keeps what it chose."""
        c, p = self.config, self.parallel
        if c.precision != "auto":
            return c.precision
        if resumed:
            return resumed
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        names = precision.candidates(self.device)
        skipped = p.on_main(lambda: precision.slow_at_matmul(  # timed once; every rank tries the same precisions
            {name: precision.matmul_seconds(self.device, name, clock=self.clock, synchronize=sync) for name in names}))
        tried = [name for name in names if name not in skipped]
        seconds: dict[str, list[float]] = {}
        losses: dict[str, list[float]] = {}
        if len(tried) > 1:  # with fp32 alone left there is nothing to time
            rng = checkpoint.rng_state()  # making a batch may draw random numbers too (augmentation)
            trial = precision.peek_batches(self.batches, 2)

            def forward_backward(batch: dict[str, Tensor]) -> float:
                local = move(p.local_batch(batch), self.device)
                loss, n = p.forward_backward(self.train_model, self.loss_fn, local, 1.0)
                loss_sum, tokens = p.reduce(loss.item() * n, n)  # the whole batch's loss, wherever it was computed
                return loss_sum / max(tokens, 1)

            seconds, losses, failed = precision.time_precisions(
                self.train_model, self.model, forward_backward, trial, tried,
                lambda name: autocast(self.device, name), clock=self.clock, synchronize=sync,
                agree=lambda late: p.on_main(lambda: late) if p.world > 1 else late)
            checkpoint.set_rng_state(rng)
            skipped = {**skipped, **failed}
        result = p.on_main(lambda: precision.report(*precision.choose_precision(seconds, losses), seconds, losses,
                                                    skipped))
        if p.is_main:
            write_json(self.run_dir / "precision.json", result, indent=2)
            tqdm.write(precision.describe(result))
        return result["precision"]

    def draw_curves(self) -> None:
        """curves.png in the run directory, from its whole ``metrics.jsonl`` (a resumed run's too)."""
        from ..viz.curves import VALIDATION_AXES, plot_curves  # matplotlib: slow to import, drawn once a run

        valid = self.select if self.select in VALIDATION_AXES else "val_loss"
        plot_curves({self.run_dir.name: self.run_dir}, self.run_dir / "curves.png",
                    title=f"{self.run_dir.name}: training", valid=valid)

    def _out_of_time(self, segment_start: float) -> bool:
        """Every rank stops at the same step: the main rank's clock decides."""
        late = self.clock() - segment_start >= self.config.max_time
        return self.parallel.on_main(lambda: late) if self.parallel.world > 1 else late

    def _elapsed(self) -> float:
        """Seconds of training so far, for the schedule under a time budget: read once per schedule step
        (every parameter group gets the same value) and the same on every rank (the main rank's clock)."""
        if self._segment_start is None:  # the schedule's first rate, set before training starts
            return 0.0
        step = self.schedule.last_epoch
        if self._elapsed_at[0] != step:
            seconds = self.clock() - self._segment_start
            if self.parallel.world > 1:
                seconds = self.parallel.on_main(lambda: seconds)
            self._elapsed_at = (step, seconds)
        return self._elapsed_at[1]

    def _step(self) -> tuple[float, int]:
        c, p = self.config, self.parallel
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, tokens = 0.0, 0
        for _ in range(c.grad_accum):
            batch = move(p.local_batch(next(self.batches)), self.device)
            try:
                with autocast(self.device, self.precision):
                    loss, n = p.forward_backward(self.train_model, self.loss_fn, batch, 1.0 / c.grad_accum)
            except RuntimeError as error:
                if self.precision == "fp32" or not precision.no_kernel(error):
                    raise
                chosen = c.precision == "auto"
                raise UserError(f"train.precision={self.precision}{' (chosen by auto)' if chosen else ''}: this "
                                f"device has no {self.precision} kernel for a layer of this model "
                                f"({precision.first_sentence(error)}); use train.precision=fp32"
                                f"{'' if chosen else ', or auto, which tries it first'}") from error
            loss_sum += loss.item() * n
            tokens += n
        loss_sum, tokens = p.reduce(loss_sum, tokens)
        if not math.isfinite(loss_sum):
            kept = f"; the last good checkpoint (step {self.progress.last_eval_step}) is kept" \
                if self.progress.last_eval_step >= 0 else ""
            raise UserError(f"the training loss became {loss_sum} at step {self.progress.step + 1}: the learning "
                            f"rate is likely too high (train.lr={c.lr:g}) or {self.precision} overflowed; lower "
                            f"train.lr{' or use train.precision=fp32' if self.precision != 'fp32' else ''}{kept}")
        if c.clip_norm:
            p.clip_grad_norm(self.trained, c.clip_norm)
        self.optimizer.step()
        self.schedule.step()
        return loss_sum, tokens

    def restore_best(self) -> None:
        best = checkpoint.existing_checkpoint(self.checkpoints / "best")
        if best is not None:
            self.parallel.load_weights(self.model, best / "model.safetensors")


def expected_steps(step: int, seconds: float, config: TrainConfig) -> int:
    """Where the run will stop: ``max_steps``, or under a time budget, sooner if the steps so far
    (``step`` in ``seconds``) say the budget will run out first."""
    if not config.max_time or step == 0 or seconds <= 0:
        return config.max_steps
    return max(step, min(config.max_steps, round(step * config.max_time / seconds)))


class MetricsLog:
    """Appends rows to ``metrics.jsonl`` and, optionally, TensorBoard event files in ``tb/``. A resumed
    run passes ``after_step``, its checkpoint's step: the rows of the steps it will repeat are dropped
    first, so that the file (and TensorBoard) hold each step once."""

    def __init__(self, run_dir: Path, tensorboard: bool, enabled: bool = True, after_step: int | None = None) -> None:
        path = Path(run_dir) / METRICS_FILE
        if enabled and after_step is not None and path.is_file():
            keep_rows_until(path, after_step)
        self.file = open(path, "a", encoding="utf-8") if enabled else None
        self.writer = None
        if tensorboard and enabled:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when asked for

            # purge_step hides the events of the steps this run repeats from TensorBoard
            self.writer = SummaryWriter(str(Path(run_dir) / "tb"),
                                        purge_step=None if after_step is None else after_step + 1)

    def __call__(self, row: dict[str, Any]) -> None:
        if self.file is None:  # a rank other than the main one
            return
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["step"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.writer is not None:
            self.writer.close()


def keep_rows_until(path: Path, step: int) -> None:
    """Rewrite ``metrics.jsonl`` (atomically) with only its rows up to ``step``; a line cut short by a
    crash is dropped too."""
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line + "\n")
    atomic_write(path, lambda tmp: tmp.write_text("".join(kept), encoding="utf-8"))
