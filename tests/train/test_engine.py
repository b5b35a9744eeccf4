import json
import math

import pytest
import torch
from safetensors.torch import load_file

from seqlab.data.batching import BucketedBatches, fixed_batches
from seqlab.models import Transformer, TransformerConfig
from seqlab.tasks.translate import token_loss, validation_metrics
from seqlab.train import checkpoint
from seqlab.train.config import TrainConfig
from seqlab.train.loop import DEADLINE_PASSED, Trainer, expected_steps
from seqlab.train.optim import build_schedule, noam_rate, warmup_cosine


def reversal_data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    sources = [torch.randint(4, 12, (int(torch.randint(3, 8, (1,), generator=g)),), generator=g).tolist()
               for _ in range(n)]
    return sources, [s[::-1] for s in sources]


def make_trainer(run_dir, clock=None, **overrides):
    settings = dict(max_steps=12, eval_every=4, batch_size=8, warmup_steps=3, lr=3e-3, progress=False,
                    tensorboard=False, log_every=2, seed=7, precision="fp32")
    settings.update(overrides)
    config = TrainConfig(**settings)
    torch.manual_seed(config.seed)
    model = Transformer(TransformerConfig(12, 12, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.2, max_len=16))
    train, valid = reversal_data(64, 1), reversal_data(16, 2)
    batches = BucketedBatches(*train, config.batch_size, config.seed)
    valid_batches = fixed_batches(*valid, 8)
    return Trainer(model, config, run_dir, loss_fn=lambda m, b: token_loss(m, b, config.label_smoothing),
                   batches=batches, evaluate=lambda m: validation_metrics(m, valid_batches, "cpu"),
                   d_model=16, **({"clock": clock} if clock else {}))


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def losses(run_dir):
    return [row["train_loss"] for row in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if "train_loss" in row]


def test_resume_after_crash_equals_uninterrupted_run(tmp_path, monkeypatch):
    straight_dir, crashed_dir = tmp_path / "straight", tmp_path / "crashed"
    straight_dir.mkdir(), crashed_dir.mkdir()
    straight = make_trainer(straight_dir)
    straight.fit()
    # Compare the final (last-step) weights, not the restored best ones.
    final = load_file(str(straight_dir / "checkpoints" / "last" / "model.safetensors"))

    crashing = make_trainer(crashed_dir)
    calls = {"n": 0}
    real_step = Trainer._step

    def step_then_crash(self):
        calls["n"] += 1
        if calls["n"] == 7:  # after the checkpoint at step 4, before the one at step 8
            raise RuntimeError("simulated crash")
        return real_step(self)

    monkeypatch.setattr(Trainer, "_step", step_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit()
    monkeypatch.setattr(Trainer, "_step", real_step)

    # A brand-new process: fresh model, optimizer and data iterator; everything comes from disk.
    resumed = make_trainer(crashed_dir, seed=999)  # even a different seed cannot matter now
    torch.manual_seed(12345)
    progress = resumed.fit(resume=True)
    assert progress.step == 12
    resumed_final = load_file(str(crashed_dir / "checkpoints" / "last" / "model.safetensors"))
    assert final.keys() == resumed_final.keys()
    for key in final:
        assert torch.equal(final[key], resumed_final[key]), key
    # Losses logged after the resume point equal the uninterrupted run's.
    assert losses(straight_dir)[-2:] == losses(crashed_dir)[-2:]


def test_training_reduces_loss_and_keeps_best(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=60, eval_every=20, lr=1e-2)
    progress = trainer.fit()
    curve = losses(tmp_path)
    assert curve[-1] < curve[0] * 0.8
    assert (tmp_path / "checkpoints" / "best" / "model.safetensors").is_file()
    assert progress.best == min(row["val_loss"] for row in
                                map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())
                                if "val_loss" in row)


def test_early_stopping_and_time_budget(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    stopped = make_trainer(tmp_path / "a", max_steps=400, eval_every=1, lr=0.0, warmup_steps=0,
                           patience=2).fit()
    assert "early stopping" in stopped.stopped and stopped.step == 3
    timed = make_trainer(tmp_path / "b", max_steps=10**6, max_time=0.5).fit()
    assert timed.stopped.startswith("time budget") and timed.step < 10**6


class ListBatches:
    def __init__(self, batches):
        self.batches, self.index = batches, 0

    def __next__(self):
        self.index += 1
        return self.batches[self.index - 1]

    def state_dict(self):
        return {"index": self.index}

    def load_state_dict(self, state):
        self.index = state["index"]


def test_gradient_accumulation_equals_a_bigger_batch(tmp_path):
    # One optimizer step on a batch of 8 vs two accumulated micro-batches of 4 (equal token counts).
    # eps=1: Adam's first step is ~lr·sign(g), which would amplify float rounding in near-zero gradients.
    src = torch.randint(4, 12, (8, 5))
    batch = {"src": src, "tgt_in": src, "tgt_out": src}
    halves = [{k: v[i * 4:(i + 1) * 4] for k, v in batch.items()} for i in range(2)]
    results = []
    for accumulate, batches in ((1, [batch]), (2, halves)):
        config = TrainConfig(lr=1e-2, eps=1.0, warmup_steps=0, schedule="constant", clip_norm=0.0, label_smoothing=0.0,
                             grad_accum=accumulate, progress=False, tensorboard=False)
        torch.manual_seed(0)
        model = Transformer(TransformerConfig(12, 12, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0))
        trainer = Trainer(model, config, tmp_path, loss_fn=token_loss, batches=ListBatches(batches),
                          evaluate=lambda m: {"val_loss": 0.0}, d_model=16)
        trainer._step()
        results.append(weights(trainer))
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key], atol=1e-6, rtol=1e-5)


def test_noam_schedule_is_the_paper_formula():
    d, warmup = 512, 4000
    assert noam_rate(1, d, warmup) == pytest.approx(d**-0.5 * warmup**-1.5)
    assert noam_rate(warmup, d, warmup) == pytest.approx(d**-0.5 * warmup**-0.5)
    assert noam_rate(16000, d, warmup) == pytest.approx(d**-0.5 / math.sqrt(16000))
    assert max(range(1, 20000), key=lambda s: noam_rate(s, d, warmup)) == warmup
    assert warmup_cosine(0, 10, 100) == pytest.approx(0.1) and warmup_cosine(100, 10, 100) == pytest.approx(0.0)


def test_checkpoint_state_round_trip_without_pickle(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), betas=(0.9, 0.98))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {"optimizer": optimizer.state_dict(), "rng": checkpoint.rng_state(), "tuple": (1, 2.5, "x")}
    checkpoint.save_state(tmp_path, state)
    assert b"pickle" not in (tmp_path / "state.json").read_bytes()
    loaded = checkpoint.load_state(tmp_path)
    assert loaded["tuple"] == (1, 2.5, "x")
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters())
    fresh.load_state_dict(loaded["optimizer"])
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(fresh.state_dict()["state"][0][key], optimizer.state_dict()["state"][0][key])
    checkpoint.set_rng_state(loaded["rng"])
    a = torch.rand(3)
    checkpoint.set_rng_state(loaded["rng"])
    assert torch.equal(a, torch.rand(3))


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    model = Transformer(TransformerConfig(8, 8, d_model=8, n_heads=2, n_layers=1, d_ff=16))
    target = tmp_path / "last"
    checkpoint.save_checkpoint(target, model, {"step": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_state", crash)
    with pytest.raises(OSError):
        checkpoint.save_checkpoint(target, model, {"step": 2})
    assert checkpoint.existing_checkpoint(target) == target
    assert checkpoint.load_state(target) == {"step": 1}


def test_checkpoint_from_another_config_is_refused(tmp_path):
    from seqlab.errors import UserError

    trainer = make_trainer(tmp_path, max_steps=4, eval_every=4)
    trainer.fit()
    other = make_trainer(tmp_path)
    other.model = Transformer(TransformerConfig(12, 12, d_model=32, n_heads=2, n_layers=1, d_ff=32))
    other.optimizer = torch.optim.AdamW(other.model.parameters())
    with pytest.raises(UserError, match="another model config.*d_model"):
        other.resume()


def test_a_checkpoint_saved_before_a_setting_was_added_resumes(tmp_path):
    """config.json without a setting added since (here src_embedding_scale, at its default): the
    checkpoint is the same model's, so resuming goes on, as loading it does."""
    import json

    trainer = make_trainer(tmp_path, max_steps=4, eval_every=4)
    trainer.fit()
    for name in ("last", "best"):
        path = tmp_path / "checkpoints" / name / "config.json"
        config = json.loads(path.read_text())
        del config["src_embedding_scale"]
        path.write_text(json.dumps(config))
    again = make_trainer(tmp_path, max_steps=6, eval_every=4)
    assert again.fit(resume=True).step == 6


def test_without_validation_the_latest_checkpoint_is_the_best(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.evaluate, trainer.select = (lambda m: {}), None
    progress = trainer.fit()
    assert progress.best_step == progress.step == 12
    best, last = (load_file(str(tmp_path / "checkpoints" / name / "model.safetensors")) for name in ("best", "last"))
    assert all(torch.equal(best[k], last[k]) for k in last)


def test_stop_at_step_pauses_and_resume_finishes_like_one_run(tmp_path):
    straight_dir, paused_dir = tmp_path / "straight", tmp_path / "paused"
    straight_dir.mkdir(), paused_dir.mkdir()
    make_trainer(straight_dir).fit()
    paused = make_trainer(paused_dir, stop_at_step=6).fit()
    assert paused.step == 6 and "paused at step 6" in paused.stopped
    make_trainer(paused_dir).fit(resume=True)
    assert losses(paused_dir) == losses(straight_dir)
    final, expected = (load_file(str(d / "checkpoints" / "last" / "model.safetensors")) for d in (paused_dir, straight_dir))
    assert all(torch.equal(final[k], expected[k]) for k in expected)


def test_resuming_a_one_process_run_never_unpickles(tmp_path, monkeypatch):
    """One process keeps weights and optimizer state in safetensors + JSON, not in
    torch.distributed.checkpoint, whose .metadata is a pickle: --resume runs no pickle at all."""
    import pickle

    straight_dir, paused_dir = tmp_path / "straight", tmp_path / "paused"
    straight_dir.mkdir(), paused_dir.mkdir()
    make_trainer(straight_dir).fit()
    make_trainer(paused_dir, stop_at_step=6).fit()
    last = paused_dir / "checkpoints" / "last"
    assert (last / "training_state.safetensors").is_file() and (last / "training_state.json").is_file()
    assert not (last / "training_state").exists()
    assert not [p for p in paused_dir.rglob("*") if p.suffix in (".metadata", ".distcp", ".pt", ".pkl")]

    def refuse(*args, **kwargs):
        raise AssertionError("resume unpickled something")

    for owner, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(owner, name, refuse)
    make_trainer(paused_dir).fit(resume=True)
    final, expected = (load_file(str(d / "checkpoints" / "last" / "model.safetensors")) for d in (paused_dir, straight_dir))
    assert all(torch.equal(final[k], expected[k]) for k in expected)


# --- steps and time budgets ------------------------------------------------------------------------

class StepClock:
    """A clock that moves only when a training step runs (``tick`` from the loss), ``seconds`` each."""

    def __init__(self, seconds: float) -> None:
        self.now, self.seconds = 0.0, seconds

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += self.seconds


def with_ticking_loss(trainer, clock):
    loss_fn = trainer.loss_fn

    def ticking(model, batch):
        clock.tick()
        return loss_fn(model, batch)

    trainer.loss_fn = ticking
    return trainer


def logged(run_dir, key):
    return {row["step"]: row[key] for row in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if key in row}


def test_without_a_budget_a_run_ends_at_exactly_max_steps_however_slow(tmp_path):
    clock = StepClock(seconds=1000.0)  # a very slow machine: 1,000 s a step
    trainer = with_ticking_loss(make_trainer(tmp_path, clock=clock, max_steps=9, eval_every=100), clock)
    progress = trainer.fit()
    assert progress.step == 9 and progress.stopped == ""
    assert clock.now == 9000.0


def test_schedule_at_half_the_budget_equals_the_schedule_at_half_the_steps():
    config = TrainConfig(max_steps=1000, warmup_steps=100, max_time=100.0, schedule="cosine", lr=1.0)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    seconds = {"now": 50.0}
    schedule = build_schedule(optimizer, config, d_model=16, elapsed=lambda: seconds["now"])
    half = 0.5 * (1 + math.cos(math.pi * (500 - 100) / (1000 - 100)))
    rate = schedule.lr_lambdas[0]
    assert rate(10) == pytest.approx(half)  # 1 % of the steps, half of the budget: the budget leads
    assert rate(800) == pytest.approx(0.5 * (1 + math.cos(math.pi * 700 / 900)))  # the steps lead
    seconds["now"] = 100.0
    assert rate(10) == pytest.approx(0.0)  # the budget spent: the final, annealed rate
    no_budget = build_schedule(optimizer, TrainConfig(max_steps=1000, warmup_steps=100, schedule="cosine"),
                               d_model=16, elapsed=lambda: 1e9)
    assert no_budget.lr_lambdas[0](10) == pytest.approx(11 / 100)  # steps alone: still warming up


def test_a_run_stopped_by_its_budget_ends_annealed(tmp_path):
    clock = StepClock(seconds=1.0)
    trainer = with_ticking_loss(make_trainer(tmp_path, clock=clock, max_steps=1000, warmup_steps=0, max_time=10.0,
                                             eval_every=1000, log_every=1, lr=1e-3), clock)
    progress = trainer.fit()
    assert progress.step == 10 and progress.stopped.startswith("time budget")
    rates = logged(tmp_path, "lr")  # the rate set after each step, for the next one
    # After step 5 the clock reads 5 s of 10: the rate of step 500 of 1,000.
    assert rates[5] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert rates[5] == pytest.approx(5e-4)
    assert rates[10] == pytest.approx(0.0, abs=1e-12)
    assert all(rates[k] > rates[k + 1] for k in range(1, 10))


def test_a_deadline_stops_the_run_and_leaves_its_schedule_to_the_steps(tmp_path):
    clock = StepClock(seconds=1.0)
    trainer = with_ticking_loss(make_trainer(tmp_path, clock=clock, max_steps=1000, warmup_steps=0, eval_every=1000,
                                             log_every=1, lr=1e-3), clock)
    trainer.deadline = 10.0  # a clock reading: after step 10 the next step does not start
    progress = trainer.fit()
    assert progress.step == 10 and progress.stopped == DEADLINE_PASSED
    rates = logged(tmp_path, "lr")
    assert rates[5] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 5 / 1000)))  # step 5 of 1,000, not half


@pytest.mark.parametrize("step, seconds, max_steps, max_time, expected", [
    (30, 10.0, 1000, 100.0, 300),   # 3 steps a second, 100 s: the budget stops it first
    (30, 10.0, 200, 100.0, 200),    # max_steps comes first
    (30, 10.0, 1000, 0.0, 1000),    # no budget
    (0, 0.0, 1000, 100.0, 1000),    # nothing measured yet
])
def test_expected_steps_follow_the_budget(step, seconds, max_steps, max_time, expected):
    config = TrainConfig(max_steps=max_steps, max_time=max_time)
    assert expected_steps(step, seconds, config) == expected


def test_resume_passes_a_stop_at_step_already_reached_and_stops_at_a_new_one(tmp_path):
    straight_dir, paused_dir = tmp_path / "straight", tmp_path / "paused"
    straight_dir.mkdir(), paused_dir.mkdir()
    make_trainer(straight_dir).fit()
    assert make_trainer(paused_dir, stop_at_step=5).fit().step == 5
    # The run's own config still says stop_at_step=5 (as run.json does on --resume): it continues.
    assert make_trainer(paused_dir, stop_at_step=5).fit(resume=True).step == 12
    again = tmp_path / "again"
    again.mkdir()
    make_trainer(again, stop_at_step=5).fit()
    assert make_trainer(again, stop_at_step=9).fit(resume=True).step == 9  # a new pause is kept
    final, expected = (load_file(str(d / "checkpoints" / "last" / "model.safetensors"))
                       for d in (paused_dir, straight_dir))
    assert all(torch.equal(final[k], expected[k]) for k in expected)


def test_metrics_hold_each_step_once_after_a_resume(tmp_path, monkeypatch):
    straight_dir, crashed_dir = tmp_path / "straight", tmp_path / "crashed"
    straight_dir.mkdir(), crashed_dir.mkdir()
    make_trainer(straight_dir).fit()
    real_step, calls = Trainer._step, {"n": 0}

    def step_then_crash(self):
        calls["n"] += 1
        if calls["n"] == 7:  # the last checkpoint is step 4's; steps 5 and 6 are logged, then lost
            raise RuntimeError("crash")
        return real_step(self)

    monkeypatch.setattr(Trainer, "_step", step_then_crash)
    with pytest.raises(RuntimeError):
        make_trainer(crashed_dir).fit()
    with open(crashed_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "train_lo')  # a row cut short by the crash
    monkeypatch.setattr(Trainer, "_step", real_step)
    make_trainer(crashed_dir).fit(resume=True)
    steps, expected = ([(row["step"], "train_loss" in row) for row in map(json.loads, lines)]
                       for lines in ((d / "metrics.jsonl").read_text().splitlines() for d in (crashed_dir, straight_dir)))
    assert steps == expected and len(set(steps)) == len(steps)
    assert losses(crashed_dir) == losses(straight_dir)


def test_a_run_killed_while_writing_its_first_last_starts_again_exactly(tmp_path, monkeypatch):
    """``best`` is written before ``last``: killed in between, the run has a best but no last. Resuming
    from best would lose the optimizer state; the run starts again from step 0 instead, exactly."""
    straight_dir, crashed_dir = tmp_path / "straight", tmp_path / "crashed"
    straight_dir.mkdir(), crashed_dir.mkdir()
    make_trainer(straight_dir).fit()
    real_swap = checkpoint.swap_in

    def crash_on_last(staging, directory):
        if directory.name == "last":
            raise RuntimeError("killed")
        real_swap(staging, directory)

    monkeypatch.setattr(checkpoint, "swap_in", crash_on_last)
    with pytest.raises(RuntimeError):
        make_trainer(crashed_dir).fit()
    assert (crashed_dir / "checkpoints" / "best").is_dir() and not (crashed_dir / "checkpoints" / "last").exists()
    monkeypatch.setattr(checkpoint, "swap_in", real_swap)
    make_trainer(crashed_dir).fit(resume=True)
    final, expected = (load_file(str(d / "checkpoints" / "last" / "model.safetensors"))
                       for d in (crashed_dir, straight_dir))
    assert all(torch.equal(final[k], expected[k]) for k in expected)
    assert losses(crashed_dir) == losses(straight_dir)


def test_resuming_a_run_that_spent_its_time_budget_says_what_to_pass(tmp_path):
    from seqlab.errors import UserError

    assert make_trainer(tmp_path, max_time=1e-9).fit().stopped.startswith("time budget")
    with pytest.raises(UserError, match=r"has used its time budget .*--set train.max_time=1 "):
        make_trainer(tmp_path, max_time=1e-9).fit(resume=True)
    assert make_trainer(tmp_path, max_time=0.0).fit(resume=True).step == 12


def test_metrics_log_of_a_resume_drops_the_repeated_steps_from_both_files(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from seqlab.train.loop import MetricsLog

    log = MetricsLog(tmp_path, tensorboard=True)
    for step in range(1, 7):
        log({"step": step, "train_loss": float(step)})
    log.close()
    log = MetricsLog(tmp_path, tensorboard=True, after_step=3)  # resumed from step 3's checkpoint
    log({"step": 4, "train_loss": 40.0})
    log.close()
    assert losses(tmp_path) == [1.0, 2.0, 3.0, 40.0]
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train_loss")] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0)]


# --- progress without a terminal, and interruptions ---------------------------------------------------

def test_without_a_terminal_a_progress_line_comes_every_30_seconds(tmp_path, capsys):
    """Standard error captured (not a terminal): no bar, but a line every 30 s of the run's clock with
    the step, the loss since the last line, the rate and the time left."""
    clock = StepClock(seconds=10.0)  # 10 s a step: a line every third step
    trainer = with_ticking_loss(make_trainer(tmp_path, clock=clock, progress=True, eval_every=100), clock)
    trainer.fit()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert "\r" not in err and "it/s" not in err  # no tqdm bar
    assert [line.split()[1] for line in lines] == ["3/12", "6/12", "9/12", "12/12"], err
    assert lines[0].endswith("10 s/step  ETA 01:30"), lines[0]  # 9 steps left at 10 s a step
    assert lines[-1].endswith("ETA 00:00")
    losses = [float(line.split()[3]) for line in lines]
    assert all(math.isfinite(loss) and loss > 0 for loss in losses)


def test_progress_off_writes_no_lines(tmp_path, capsys):
    clock = StepClock(seconds=10.0)
    with_ticking_loss(make_trainer(tmp_path, clock=clock, progress=False), clock).fit()
    assert "step " not in capsys.readouterr().err


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupt_before_the_first_evaluation_keeps_a_checkpoint_resume_continues_from(
        tmp_path, monkeypatch, signal_name, handlers_from_before_the_run):
    import os
    import signal

    straight_dir, stopped_dir = tmp_path / "straight", tmp_path / "stopped"
    straight_dir.mkdir(), stopped_dir.mkdir()
    make_trainer(straight_dir, eval_every=8).fit()

    real_step = Trainer._step

    def step_then_signal(self):
        result = real_step(self)
        if self.progress.step == 2:  # in the middle of step 3, before the first evaluation (step 8)
            os.kill(os.getpid(), getattr(signal, signal_name))
        return result

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(Trainer, "_step", step_then_signal)
    with pytest.raises(KeyboardInterrupt):
        make_trainer(stopped_dir, eval_every=8).fit()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers given back
    assert not (stopped_dir / "checkpoints" / "best").exists()
    assert checkpoint.load_state(stopped_dir / "checkpoints" / "last")["progress"]["step"] == 3  # the step under way
    monkeypatch.setattr(Trainer, "_step", real_step)

    resumed = make_trainer(stopped_dir, eval_every=8)
    assert resumed.resume() and resumed.progress.step == 3
    assert make_trainer(stopped_dir, eval_every=8).fit(resume=True).step == 12
    final, expected = (load_file(str(d / "checkpoints" / "last" / "model.safetensors"))
                       for d in (stopped_dir, straight_dir))
    assert final.keys() == expected.keys() and all(torch.equal(final[k], expected[k]) for k in expected)
