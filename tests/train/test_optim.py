"""Optimiser parameter groups scaled by scale_lr, and the noam rate with no warmup."""

import pytest
import torch
from torch import nn

from seqlab.train.config import TrainConfig
from seqlab.train.optim import build_optimizer, noam_rate, scale_lr


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
