"""Optimiser parameter groups (against torch's own optimizers built by hand) and the learning-rate schedules
(against their formulas written out here)."""

import math

import pytest
import torch
from torch import nn

from seqlab.train.config import TrainConfig
from seqlab.train.optim import build_optimizer, build_schedule, noam_rate, scale_lr, scheduled_step, warmup_cosine


def test_scale_lr_trains_marked_parameters_at_a_fraction_of_the_rate():
    """A body at 0.1 of the run's rate and a head at the full rate (Howard & Ruder, 2018 §3.2)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    scale_lr(model[0].parameters(), 0.1)
    assert [getattr(p, "lr_scale", None) for p in model.parameters()] == [0.1, 0.1, None, None]
    optimizer = build_optimizer(model, TrainConfig(lr=2e-3, schedule="constant", optimizer="adamw",
                                                   weight_decay=0.01))
    rate = {id(p): (group["lr"], group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]}
    body_weight, body_bias, head_weight, head_bias = model.parameters()
    assert rate[id(body_weight)] == pytest.approx((2e-4, 0.01))
    assert rate[id(body_bias)] == pytest.approx((2e-4, 0.0))
    assert rate[id(head_weight)] == pytest.approx((2e-3, 0.01))
    assert rate[id(head_bias)] == pytest.approx((2e-3, 0.0))


@pytest.mark.parametrize("warmup", [0, 1])
def test_noam_with_no_warmup_takes_one_step_of_it(warmup):
    """warmup 0 or 1: step · 1^-1.5 = step >= step^-0.5, so the rate is d^-0.5 · step^-0.5 from step 1."""
    for step in (1, 2, 9):
        assert noam_rate(step, 64, warmup) == pytest.approx(64**-0.5 * step**-0.5)


# --- build_optimizer against torch.optim.AdamW / Adam built by hand --------------------------------

def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(5, 4), nn.LayerNorm(4), nn.Linear(4, 3))


def _by_hand(model, optimizer_class, lr, decay, betas, eps):
    """Matrices decay, vectors (biases, norms) don't: the split written out here, not read from seqlab."""
    matrices = [p for p in model.parameters() if p.dim() == 2]
    vectors = [p for p in model.parameters() if p.dim() == 1]
    return optimizer_class([{"params": matrices, "weight_decay": decay}, {"params": vectors, "weight_decay": 0.0}],
                           lr=lr, betas=betas, eps=eps, foreach=True)


def _two_steps(model, optimizer):
    for seed in (1, 2):
        optimizer.zero_grad()
        generator = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=generator)
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name, optimizer_class, decay", [("adamw", torch.optim.AdamW, 0.25),
                                                          ("adam", torch.optim.Adam, 0.0)])
def test_build_optimizer_matches_torch_built_by_hand(name, optimizer_class, decay):
    """AdamW decays the matrices only (weight_decay 0.25); Adam decays nothing whatever weight_decay says.
    The groups, their settings and two steps agree with torch's own optimizer built by hand."""
    config = TrainConfig(lr=3e-3, schedule="cosine", optimizer=name, weight_decay=0.25, betas=(0.8, 0.95), eps=1e-6)
    model, reference_model = _model(), _model()
    optimizer = build_optimizer(model, config)
    reference = _by_hand(reference_model, optimizer_class, 3e-3, decay, (0.8, 0.95), 1e-6)
    assert type(optimizer) is optimizer_class
    assert optimizer.state_dict()["param_groups"] == reference.state_dict()["param_groups"]
    assert all(group["foreach"] is True and group["lr"] == 3e-3 for group in optimizer.param_groups)
    assert optimizer.defaults["lr"] == 3e-3  # what a group added later (add_param_group) would get
    for p, q in zip(_two_steps(model, optimizer), _two_steps(reference_model, reference)):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_noam_optimizer_has_base_rate_one():
    """The noam schedule yields the rate itself, so every group's base rate is 1 whatever train.lr says."""
    optimizer = build_optimizer(_model(), TrainConfig(lr=3e-3, schedule="noam"))
    assert [group["lr"] for group in optimizer.param_groups] == [1.0, 1.0]
    assert optimizer.defaults["lr"] == 1.0


def test_frozen_parameters_join_no_group_and_unmarked_ones_run_at_the_full_rate():
    model = _model()
    model[0].weight.requires_grad_(False)
    optimizer = build_optimizer(model, TrainConfig(lr=2e-3, schedule="constant"))
    grouped = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in list(model.parameters())[1:])
    assert [group["lr"] for group in optimizer.param_groups] == [2e-3, 2e-3]


def test_sharded_parameters_get_groups_of_their_own():
    """A parameter with a ``device_mesh`` (a tensor-parallel DTensor) never shares a foreach group with a
    plain one: here one matrix and one vector are marked, so four groups, each all-marked or all-plain."""
    model = _model()
    marked = {id(model[2].weight), id(model[2].bias)}
    for p in (model[2].weight, model[2].bias):
        p.device_mesh = object()
    optimizer = build_optimizer(model, TrainConfig(schedule="constant", weight_decay=0.5))
    groups = [({id(p) in marked for p in group["params"]}, {p.dim() for p in group["params"]}, group["weight_decay"])
              for group in optimizer.param_groups]
    assert sorted(groups, key=repr) == sorted([({False}, {2}, 0.5), ({False}, {1}, 0.0),
                                               ({True}, {2}, 0.5), ({True}, {1}, 0.0)], key=repr)


# --- schedules: hand-written formulas -------------------------------------------------------------

def cosine_by_hand(step, warmup, total):
    if step < warmup:
        return (step + 1) / warmup
    done = min((step - warmup) / max(total - warmup, 1), 1.0)
    return (1 + math.cos(math.pi * done)) / 2


@pytest.mark.parametrize("warmup, total", [(4, 12), (3, 4), (2, 2), (5, 3)])
def test_warmup_cosine_is_linear_warmup_then_half_a_cosine(warmup, total):
    expected = {(4, 12): [0.25, 0.5, 0.75, 1.0, 1.0, (1 + math.cos(math.pi / 8)) / 2, (1 + math.cos(math.pi / 4)) / 2],
                (3, 4): [1 / 3, 2 / 3, 1.0, 1.0, 0.0, 0.0, 0.0],
                (2, 2): [0.5, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
                (5, 3): [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 0.0]}[(warmup, total)]
    got = [warmup_cosine(step, warmup, total) for step in range(7)]
    assert got == pytest.approx(expected, abs=1e-12)
    assert warmup_cosine(total + 5, warmup, total) == pytest.approx(0.0, abs=1e-12)  # stays at 0 past the end


def test_warmup_cosine_halfway_down_is_a_half():
    assert warmup_cosine(10, 4, 16) == pytest.approx(0.5)  # cos(π/2) = 0
    assert warmup_cosine(13, 4, 16) == pytest.approx((1 + math.cos(math.pi * 0.75)) / 2)


def test_scheduled_step_under_a_time_budget_is_the_larger_fraction():
    config = TrainConfig(max_steps=50, max_time=100.0, warmup_steps=0)
    assert scheduled_step(10, config, lambda: 30.0) == pytest.approx(15.0)  # 30% of the budget, 20% of the steps
    assert scheduled_step(20, config, lambda: 30.0) == 20  # steps ahead of the clock
    assert scheduled_step(10, config, lambda: 500.0) == pytest.approx(50.0)  # past the budget: the end, no further
    assert scheduled_step(10, config, None) == 10  # no clock: steps only
    assert scheduled_step(7, TrainConfig(max_steps=50, max_time=0.0), lambda: 30.0) == 7  # no budget: steps only


def _rates(config, d_model=16, elapsed=None, steps=8):
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model, config)
    schedule = build_schedule(optimizer, config, d_model, elapsed)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_noam_schedule_is_eq_3_at_step_plus_one():
    rates = _rates(TrainConfig(schedule="noam", warmup_steps=3, lr=5.0))
    assert rates == pytest.approx([16**-0.5 * min(s**-0.5, s * 3**-1.5) for s in range(1, 9)])


def test_cosine_schedule_scales_the_peak_rate():
    rates = _rates(TrainConfig(schedule="cosine", warmup_steps=3, max_steps=6, lr=0.5))
    assert rates == pytest.approx([0.5 * cosine_by_hand(s, 3, 6) for s in range(8)], abs=1e-12)


@pytest.mark.parametrize("warmup", [0, 1, 4])
def test_constant_schedule_warms_up_linearly_then_holds(warmup):
    rates = _rates(TrainConfig(schedule="constant", warmup_steps=warmup, lr=0.5))
    assert rates == pytest.approx([0.5 * min(1.0, (s + 1) / max(warmup, 1)) for s in range(8)])


@pytest.mark.parametrize("schedule", ["noam", "cosine", "constant"])
def test_schedules_read_the_clock_under_a_time_budget(schedule):
    """Budget 100 s for 20 steps; the clock says 50 s, so every step reads the schedule at step 10 at least."""
    config = TrainConfig(schedule=schedule, warmup_steps=4, max_steps=20, max_time=100.0, lr=0.5)
    rates = _rates(config, elapsed=lambda: 50.0, steps=3)
    at = {"noam": lambda s: 16**-0.5 * min((s + 1) ** -0.5, (s + 1) * 4**-1.5),
          "cosine": lambda s: 0.5 * cosine_by_hand(s, 4, 20),
          "constant": lambda s: 0.5 * min(1.0, (s + 1) / 4)}[schedule]
    assert rates == pytest.approx([at(10.0)] * 3)
