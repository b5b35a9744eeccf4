import contextlib
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from seqlab.errors import UserError
from seqlab.train.precision import (candidates, choose_precision, describe, holds_accuracy, matmul_seconds,
                                    peek_batches, report, slow_at_matmul, time_precisions)

from test_engine import losses, make_trainer  # pytest puts this directory on sys.path

FAST, SLOW = [0.05, 0.05, 0.06], [0.10, 0.11, 0.10]


def test_the_faster_precision_is_chosen_when_its_losses_hold():
    same = {"fp32": [2.50, 2.40], "bf16": [2.51, 2.39]}
    assert choose_precision({"fp32": SLOW, "bf16": FAST}, same)[0] == "bf16"
    assert choose_precision({"fp32": FAST, "bf16": SLOW}, same)[0] == "fp32"


def test_a_lead_within_the_margin_keeps_fp32():
    same = {"fp32": [2.5], "bf16": [2.5]}
    assert choose_precision({"fp32": [0.100] * 3, "bf16": [0.095] * 3}, same, margin=0.1)[0] == "fp32"
    assert choose_precision({"fp32": [0.100] * 3, "bf16": [0.085] * 3}, same, margin=0.1)[0] == "bf16"


def test_the_median_decides_not_one_outlier():
    same = {"fp32": [2.5], "bf16": [2.5]}
    assert choose_precision({"fp32": [0.10, 0.10, 0.01], "bf16": [0.05, 0.05, 0.05]}, same)[0] == "bf16"


@pytest.mark.parametrize("bf16_losses", [[math.nan, 2.4], [2.5, math.inf], [3.5, 2.4], [2.5, 1.0]])
def test_a_fast_precision_whose_loss_is_off_or_not_finite_falls_back_to_fp32(bf16_losses):
    choice, reason = choose_precision({"fp32": SLOW, "bf16": FAST}, {"fp32": [2.5, 2.4], "bf16": bf16_losses})
    assert choice == "fp32" and "bf16" in reason


def test_holds_accuracy_tolerance():
    assert holds_accuracy([1.04], [1.0], rtol=0.05, atol=0.0)
    assert not holds_accuracy([1.06], [1.0], rtol=0.05, atol=0.0)
    assert not holds_accuracy([1.0], [1.0, 1.0])


class AutocastClock:
    """Moves only inside the loss: ``seconds`` per step, by whether bf16 autocast is on."""

    def __init__(self, fp32: float, bf16: float) -> None:
        self.now, self.cost = 0.0, {False: fp32, True: bf16}
        self.steps_in = {False: 0, True: 0}

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        on = torch.is_autocast_enabled("cpu")
        self.now += self.cost[on]
        self.steps_in[on] += 1


def auto_trainer(run_dir, clock, poison_bf16=False, **overrides):
    trainer = make_trainer(run_dir, clock=clock, precision="auto", **overrides)
    loss_fn = trainer.loss_fn

    def ticking(model, batch):
        clock.tick()
        loss, n = loss_fn(model, batch)
        if poison_bf16 and torch.is_autocast_enabled("cpu"):
            loss = loss * math.nan
        return loss, n

    trainer.loss_fn = ticking
    return trainer


def test_auto_picks_bf16_when_faster_logs_it_and_trains_in_it(tmp_path, capsys):
    clock = AutocastClock(fp32=2.0, bf16=1.0)
    progress = auto_trainer(tmp_path, clock).fit()
    chosen = json.loads((tmp_path / "precision.json").read_text())
    assert chosen["precision"] == progress.precision == "bf16"
    assert chosen["median_step_ms"] == {"fp32": 2000.0, "bf16": 1000.0}
    assert len(chosen["trial_losses"]["bf16"]) == 2
    assert "precision auto: bf16" in capsys.readouterr().out
    # The trial: 2 warm-up steps and one timed pass of 2 in each precision (fp32's two 2-second steps, and
    # bf16's two of 1 s, reach the 2 s that are enough; 3 timed passes otherwise); then the run's 12 steps,
    # all in bf16.
    assert clock.steps_in == {False: 4, True: 4 + 12}


def test_auto_refuses_a_faster_precision_whose_loss_is_not_finite(tmp_path):
    clock = AutocastClock(fp32=2.0, bf16=1.0)
    progress = auto_trainer(tmp_path, clock, poison_bf16=True).fit()
    chosen = json.loads((tmp_path / "precision.json").read_text())
    assert chosen["precision"] == progress.precision == "fp32"
    assert clock.steps_in[True] == 4  # only the trial ran in bf16


class DrawingBatches:
    """Batches whose making draws a random number, as augmentation does."""

    def __init__(self, batches):
        self.batches = batches

    def __next__(self):
        torch.rand(1)
        return next(self.batches)

    def state_dict(self):
        return self.batches.state_dict()

    def load_state_dict(self, state):
        self.batches.load_state_dict(state)


def test_the_trial_leaves_the_run_as_it_would_have_been(tmp_path):
    # Dropout 0.2 and the batches draw from the random generators, and the data order has a position:
    # the trial must put all back, so an "auto" run that picks fp32 equals a run pinned to fp32, bit for bit.
    (tmp_path / "auto").mkdir(), (tmp_path / "pinned").mkdir()
    auto = auto_trainer(tmp_path / "auto", AutocastClock(fp32=1.0, bf16=2.0))
    auto.batches = DrawingBatches(auto.batches)
    progress = auto.fit()
    assert progress.precision == "fp32"
    pinned = make_trainer(tmp_path / "pinned")
    pinned.batches = DrawingBatches(pinned.batches)
    pinned.fit()
    assert losses(tmp_path / "auto") == losses(tmp_path / "pinned")
    auto, pinned = (load_file(str(tmp_path / d / "checkpoints" / "last" / "model.safetensors")) for d in ("auto", "pinned"))
    assert all(torch.equal(auto[k], pinned[k]) for k in pinned)


def test_a_resumed_auto_run_keeps_its_choice(tmp_path):
    paused = auto_trainer(tmp_path, AutocastClock(fp32=2.0, bf16=1.0), stop_at_step=6).fit()
    assert paused.precision == "bf16"
    (tmp_path / "precision.json").unlink()
    clock = AutocastClock(fp32=1.0, bf16=2.0)  # would now pick fp32: a resume must not ask again
    resumed = auto_trainer(tmp_path, clock).fit(resume=True)
    assert resumed.precision == "bf16" and clock.steps_in == {False: 0, True: 6}
    assert not (tmp_path / "precision.json").exists()


def test_holds_accuracy_defaults_are_5_percent_plus_0_02():
    assert holds_accuracy([1.069], [1.0]) and holds_accuracy([0.931], [1.0])
    assert not holds_accuracy([1.08], [1.0]) and not holds_accuracy([0.92], [1.0])


def test_holds_accuracy_bound_is_inclusive_and_relative_to_the_reference():
    assert holds_accuracy([1.5], [1.0], rtol=0.5, atol=0.0)  # exactly on the bound (exact in binary)
    assert holds_accuracy([2.9], [2.0], rtol=0.5, atol=0.0)  # 0.5·2.0 = 1.0 allowed
    assert not holds_accuracy([3.1], [2.0], rtol=0.5, atol=0.0)


def test_candidates_by_device(monkeypatch):
    assert candidates(torch.device("cpu")) == ["fp32", "bf16"]
    assert candidates(torch.device("mps")) == ["fp32"]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert candidates(torch.device("cuda")) == ["fp32"]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert candidates(torch.device("cuda")) == ["fp32", "bf16"]


def test_precisions_are_tried_fastest_first_not_by_name():
    same = [2.5, 2.4]
    seconds = {"fp32": [0.10], "bf16": [0.08], "fp16": [0.05]}
    assert choose_precision(seconds, {"fp32": same, "bf16": same, "fp16": same})[0] == "fp16"


def test_exactly_margin_faster_is_fast_enough():
    same = {"fp32": [2.5], "bf16": [2.5]}
    assert choose_precision({"fp32": [1.0], "bf16": [0.75]}, same, margin=0.25)[0] == "bf16"


def test_choose_precision_passes_its_tolerances_on():
    seconds = {"fp32": SLOW, "bf16": FAST}
    off_by_half = {"fp32": [10.0], "bf16": [10.5]}
    assert choose_precision(seconds, off_by_half, rtol=0.0, atol=0.1)[0] == "fp32"
    assert choose_precision(seconds, off_by_half, rtol=0.0, atol=1.0)[0] == "bf16"


def test_a_rejected_precision_does_not_stop_the_search_and_reasons_say_why():
    seconds = {"fp32": [0.10], "bf16": [0.08], "fp16": [0.05]}
    choice, reason = choose_precision(seconds, {"fp32": [2.5], "bf16": [2.5], "fp16": [math.nan]})
    assert choice == "bf16" and reason == "1.25x the steps a second of fp32, losses within tolerance"
    choice, reason = choose_precision(seconds, {"fp32": [2.5], "bf16": [9.0], "fp16": [math.nan]})
    assert choice == "fp32" and reason == "fp16, bf16 faster but its loss was off (or not finite)"


def test_report_rounds_to_microseconds_and_describe_lists_the_medians():
    seconds = {"fp32": [0.0012345678, 0.0020004, 0.0030001], "bf16": [0.0010002]}
    result = report("fp32", "why", seconds, {"fp32": [2.5], "bf16": [2.6]})
    assert result == {"precision": "fp32", "reason": "why",
                      "median_step_ms": {"fp32": 2.0, "bf16": 1.0},
                      "step_ms": {"fp32": [1.235, 2.0, 3.0], "bf16": [1.0]},
                      "trial_losses": {"fp32": [2.5], "bf16": [2.6]}}
    assert report("fp32", "", {"fp32": [0.0012345678]}, {})["median_step_ms"] == {"fp32": 1.235}
    assert describe(result) == "precision auto: fp32 (median step fp32 2.0 ms, bf16 1.0 ms; why)"


class InPlaceBatches:
    """An endless iterator whose ``state_dict`` hands out its own list, which ``next`` then changes in
    place (as a module's ``state_dict`` hands out its own tensors)."""

    def __init__(self):
        self.seen = []

    def __next__(self):
        self.seen.append(len(self.seen))
        return {"n": len(self.seen)}

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = list(state["seen"])


def test_peek_batches_leaves_the_position_even_when_the_state_is_shared():
    batches = InPlaceBatches()
    next(batches)
    taken = peek_batches(batches, 3)
    assert [b["n"] for b in taken] == [2, 3, 4]
    assert next(batches) == {"n": 2}


def test_the_timing_trial_drops_gradients_before_each_step_and_at_the_end():
    model = torch.nn.Linear(3, 1)
    grads_before = []

    def forward_backward(batch):
        grads_before.append([p.grad for p in model.parameters()])
        loss = model(batch["x"]).square().mean()
        loss.backward()
        return loss.item()

    batches = [{"x": torch.ones(2, 3)}, {"x": torch.zeros(2, 3)}]
    time_precisions(model, model, forward_backward, batches, ["fp32"], lambda name: contextlib.nullcontext(),
                    repeats=1)
    assert len(grads_before) == 4 and all(g is None for step in grads_before for g in step)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.filterwarnings("ignore:CUDA is not available")  # no CUDA here: the context is only built
def test_bf16_asks_autocast_for_bfloat16_on_every_device_not_the_devices_default():
    """CUDA's autocast defaults to float16, CPU's to bfloat16: the run names its dtype either way."""
    from seqlab.train.loop import autocast

    assert autocast(torch.device("cuda"), "bf16").fast_dtype == torch.bfloat16
    assert autocast(torch.device("cpu"), "bf16").fast_dtype == torch.bfloat16
    assert not isinstance(autocast(torch.device("cpu"), "fp32"), torch.autocast)


def test_the_trial_compares_each_batchs_mean_loss_and_writes_precision_json_indented(tmp_path):
    import copy

    from test_trainer_step import data, mse, tiny

    batches = [dict(zip(("x", "y"), data(n, seed=n))) for n in (1, 3)]  # sizes 1 and 3: a mean, not a sum
    t = tiny(tmp_path, batches, precision="auto")
    t.clock = lambda: 0.0  # time stands still: bf16 is neither skipped nor given up on any machine
    reference = copy.deepcopy(t.model)
    with torch.no_grad():
        expected = [mse(reference, batch)[0].item() for batch in batches]
    chosen = t._choose_precision("")
    text = (tmp_path / "precision.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    result = json.loads(text)
    assert chosen == result["precision"] in ("fp32", "bf16")
    assert result["trial_losses"]["fp32"] == pytest.approx(expected, rel=1e-6)
    assert result["trial_losses"]["bf16"] == pytest.approx(expected, rel=0.05)


def test_a_precision_twice_as_slow_at_matmul_is_skipped_with_its_reason():
    assert slow_at_matmul({"fp32": 1.0, "bf16": 2.0}) == {}  # the bound is inclusive
    skipped = slow_at_matmul({"fp32": 1.0, "bf16": 2.01})
    assert list(skipped) == ["bf16"] and "2.0x fp32's" in skipped["bf16"]
    assert slow_at_matmul({"fp32": 1.0, "bf16": 0.2}) == {}
    assert slow_at_matmul({"fp32": 1.0, "bf16": 1.4}, limit=1.3) != {}
    assert choose_precision({}, {}) == ("fp32", "no other precision left to time")
    assert choose_precision({"fp32": [1.0]}, {"fp32": [2.0]}) == ("fp32", "no other precision left to time")


class DtypeClock:
    """A clock that only the (patched) matrix product moves, by ``cost[dtype]`` times the count so far."""

    def __init__(self, cost):
        self.now, self.cost, self.products = 0.0, cost, []

    def __call__(self):
        return self.now


def test_matmul_seconds_times_the_named_dtype_and_leaves_the_random_state(monkeypatch):
    clock = DtypeClock({torch.float32: 1.0, torch.bfloat16: 5.0})
    real = torch.Tensor.__matmul__

    def counted(a, b):
        clock.products.append(a.dtype)
        clock.now += clock.cost[a.dtype] * (len(clock.products) + 1)  # later products slower: the best counts
        return real(a, b)

    monkeypatch.setattr(torch.Tensor, "__matmul__", counted)
    state = torch.get_rng_state()
    fp32 = matmul_seconds(torch.device("cpu"), "fp32", size=8, repeats=3, clock=clock)
    assert torch.equal(torch.get_rng_state(), state)
    assert clock.products == [torch.float32] * 4 and fp32 == 1.0 * 3  # the first timed of 3 (after 1 untimed)
    clock.products.clear()
    assert matmul_seconds(torch.device("cpu"), "bf16", size=8, repeats=2, clock=clock) == 5.0 * 3
    assert clock.products == [torch.bfloat16] * 3


def test_a_much_slower_precision_is_given_up_after_one_step():
    costs = {"fp32": 1.0, "bf16": 3.5}
    now = [0.0]
    current = ["fp32"]
    steps = {"fp32": 0, "bf16": 0}

    def forward_backward(batch):
        now[0] += costs[current[0]]
        steps[current[0]] += 1
        return 2.0

    def autocast(name):
        current[0] = name
        return contextlib.nullcontext()

    model = torch.nn.Linear(2, 1)
    seconds, losses, _ = time_precisions(model, model, forward_backward, [{}, {}], ["fp32", "bf16"], autocast,
                                      repeats=3, clock=lambda: now[0], enough=math.inf)
    assert steps == {"fp32": 8, "bf16": 1} and seconds["bf16"] == [3.5] and losses["bf16"] == []
    assert choose_precision(seconds, losses)[0] == "fp32"
    costs["bf16"] = 3.0  # at the bound: tried in full
    steps.update(fp32=0, bf16=0)
    seconds, losses, _ = time_precisions(model, model, forward_backward, [{}, {}], ["fp32", "bf16"], autocast,
                                      repeats=3, clock=lambda: now[0], enough=math.inf)
    assert steps == {"fp32": 8, "bf16": 8} and len(seconds["bf16"]) == 6 and len(losses["bf16"]) == 2
    # Every rank follows the main rank's decision: told "not late", a slow precision is tried in full.
    costs["bf16"] = 10.0
    steps.update(fp32=0, bf16=0)
    time_precisions(model, model, forward_backward, [{}, {}], ["fp32", "bf16"], autocast, repeats=3,
                    clock=lambda: now[0], agree=lambda late: False)
    assert steps["bf16"] == 8


def test_a_precision_whose_step_fails_is_left_out_with_why_and_the_state_put_back():
    # bf16 autocast around an LSTM on a CPU without bf16 instructions: oneDNN raises in the step.
    model = torch.nn.Linear(2, 1)
    running = torch.nn.BatchNorm1d(2)  # a buffer the steps change, put back after the failed trial
    before = running.running_mean.clone()
    steps = []

    def forward_backward(batch):
        running(torch.randn(4, 2) + 5)
        model(torch.ones(1, 2)).sum().backward()
        if torch.is_autocast_enabled("cpu"):
            steps.append("bf16")
            raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation "
                               "primitive. Run workload with environment variable ONEDNN_VERBOSE=all to get")
        steps.append("fp32")
        return 2.0

    def autocast(name):
        return torch.autocast("cpu", dtype=torch.bfloat16) if name == "bf16" else contextlib.nullcontext()

    torch.manual_seed(5)
    expected_draw = (torch.manual_seed(5), torch.rand(1))[1]
    torch.manual_seed(5)
    seconds, losses, failed = time_precisions(model, running, forward_backward, [{}, {}], ["fp32", "bf16"],
                                              autocast, repeats=1)
    assert steps == ["fp32"] * 4 + ["bf16"] and set(seconds) == set(losses) == {"fp32"}
    assert failed == {"bf16": "its trial step failed on this device (could not create a primitive descriptor "
                              "for the LSTM forward propagation primitive)"}
    assert torch.equal(running.running_mean, before) and all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.rand(1), expected_draw)  # the random state as before the trial
    assert choose_precision(seconds, losses) == ("fp32", "no other precision left to time")
    with pytest.raises(RuntimeError, match="primitive"):  # fp32's step failing is the run's error: raised
        time_precisions(model, running, forward_backward, [{}], ["fp32"],
                        lambda name: torch.autocast("cpu", dtype=torch.bfloat16), repeats=1)

    def another_fault(batch):
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")
        return 2.0

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):  # not a missing kernel: raised
        time_precisions(model, running, another_fault, [{}], ["fp32", "bf16"], autocast, repeats=1)


def test_a_precision_is_timed_no_longer_than_enough_seconds_of_whole_passes():
    now, costs, steps = [0.0], {"fp32": 0.75, "bf16": 0.5}, []

    def forward_backward(batch):
        now[0] += costs[torch.is_autocast_enabled("cpu") and "bf16" or "fp32"]
        steps.append(torch.is_autocast_enabled("cpu"))
        return 2.0

    def autocast(name):
        return torch.autocast("cpu", dtype=torch.bfloat16) if name == "bf16" else contextlib.nullcontext()

    def trial(**kw):
        steps.clear()
        model = torch.nn.Linear(2, 1)
        return time_precisions(model, model, forward_backward, [{}, {}], ["fp32", "bf16"], autocast, repeats=3,
                               clock=lambda: now[0], **kw)[:2]

    # fp32: passes of 1.5 s, two reach 2 s; bf16: passes of 1 s, the second reaches it (inclusive)
    seconds, losses = trial(enough=2.0)
    assert [len(seconds["fp32"]), len(seconds["bf16"])] == [4, 4] and steps == [False] * 6 + [True] * 6
    assert losses == {"fp32": [2.0, 2.0], "bf16": [2.0, 2.0]}  # the warm-up's losses, as without the limit
    seconds, _ = trial(enough=1.5)
    assert [len(seconds["fp32"]), len(seconds["bf16"])] == [2, 4]
    seconds, _ = trial(enough=0.0)  # at least one timed pass
    assert [len(seconds["fp32"]), len(seconds["bf16"])] == [2, 2] and len(steps) == 8
    asked = []
    seconds, _ = trial(enough=0.0, agree=lambda late: asked.append(late) or False)  # the main rank says "go on"
    assert [len(seconds["fp32"]), len(seconds["bf16"])] == [6, 6] and True in asked


def test_auto_skips_a_precision_slow_at_matmul_without_running_a_step_in_it(tmp_path, capsys, monkeypatch):
    import seqlab.train.precision as precision

    monkeypatch.setattr(precision, "matmul_seconds", lambda device, name, **kw: {"fp32": 1.0, "bf16": 40.0}[name])
    clock = AutocastClock(fp32=2.0, bf16=1.0)  # its steps would be faster: only the probe keeps it out
    progress = auto_trainer(tmp_path, clock).fit()
    chosen = json.loads((tmp_path / "precision.json").read_text())
    assert chosen["precision"] == progress.precision == "fp32"
    # fp32 alone left: nothing is timed, and the run is the one pinned to fp32 would be.
    assert clock.steps_in == {False: 12, True: 0} and chosen["median_step_ms"] == {}
    assert chosen["reason"] == "no other precision left to time" and "40.0x fp32's" in chosen["skipped"]["bf16"]
    assert ("precision auto: fp32 (no other precision left to time; bf16 left out: its 256³ matrix product took "
            "40.0x fp32's on this device)") in capsys.readouterr().out


def test_auto_trains_in_fp32_when_the_bf16_trial_step_fails(tmp_path, capsys, monkeypatch):
    # A recurrent model under bf16 autocast on a CPU without bf16 instructions: oneDNN raises in the step.
    import seqlab.train.precision as precision

    monkeypatch.setattr(precision, "matmul_seconds", lambda device, name, **kw: 1.0)  # the probe lets bf16 in
    clock = AutocastClock(fp32=2.0, bf16=1.0)
    trainer = auto_trainer(tmp_path, clock)
    ticking = trainer.loss_fn

    def no_bf16_kernel(model, batch):
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation primitive.")
        return ticking(model, batch)

    trainer.loss_fn = no_bf16_kernel
    progress = trainer.fit()
    chosen = json.loads((tmp_path / "precision.json").read_text())
    assert chosen["precision"] == progress.precision == "fp32" and progress.step > 0
    assert chosen["skipped"] == {"bf16": "its trial step failed on this device (could not create a primitive "
                                         "descriptor for the LSTM forward propagation primitive)"}
    assert "bf16 left out: its trial step failed on this device" in capsys.readouterr().out


def test_bf16_set_by_hand_without_a_kernel_is_one_line_naming_the_way_out(tmp_path):
    for message, refused in (("could not create a primitive descriptor for the LSTM forward propagation "
                              "primitive. Run workload with environment variable ONEDNN_VERBOSE=all", True),
                             ("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", False)):
        (tmp_path / str(refused)).mkdir()
        trainer = make_trainer(tmp_path / str(refused), precision="bf16")

        def failing(model, batch):
            raise RuntimeError(message)

        trainer.loss_fn = failing
        if refused:  # the device's limit, not the model's fault: a UserError (one line, exit 2)
            with pytest.raises(UserError, match=r"^train.precision=bf16: this device has no bf16 kernel for a layer "
                                                r"of this model \(could not create a primitive descriptor for the "
                                                r"LSTM forward propagation primitive\); use train.precision=fp32"):
                trainer.fit()
        else:  # anything else is a real error, raised as it is
            with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
                trainer.fit()
