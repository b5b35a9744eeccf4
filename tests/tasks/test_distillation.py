"""The distillation loss of the text classifiers, against values worked by hand: it must read the
teacher (a student that ignored it would still pass an accuracy bar on easy data)."""

import math

import pytest
import torch

from seqlab.tasks.distill import distillation_loss

# The student's probabilities are [1/2, 1/4, 1/4]; the true class is 0.
LOGITS = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
LABELS = torch.tensor([0])
LN2 = math.log(2)


def test_distillation_loss_equals_the_hand_computed_value():
    teacher = torch.tensor([[0.2, 0.2, 0.6]])
    # CE to the labels: -ln 1/2 = ln 2. CE to the teacher: -(.2 ln 1/2 + .2 ln 1/4 + .6 ln 1/4) = 1.8 ln 2.
    # (1 - .7)·ln 2 + .7·1.8 ln 2 = 1.56 ln 2.
    assert distillation_loss(LOGITS, LABELS, teacher, 0.7).item() == pytest.approx(1.56 * LN2, rel=1e-6)
    assert distillation_loss(LOGITS, LABELS, teacher, 0.0).item() == pytest.approx(LN2, rel=1e-6)
    assert distillation_loss(LOGITS, LABELS, teacher, 1.0).item() == pytest.approx(1.8 * LN2, rel=1e-6)


def test_distillation_loss_follows_the_teacher():
    agreeing, disagreeing = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 1.0]])
    # A teacher sure of class 0: CE ln 2; sure of class 2: CE ln 4.
    assert distillation_loss(LOGITS, LABELS, agreeing, 0.5).item() == pytest.approx(LN2, rel=1e-6)
    assert distillation_loss(LOGITS, LABELS, disagreeing, 0.5).item() == pytest.approx(1.5 * LN2, rel=1e-6)
    # and its gradient pulls the student towards the teacher's class
    logits = LOGITS.clone().requires_grad_()
    distillation_loss(logits, LABELS, disagreeing, 1.0).backward()
    assert logits.grad[0, 2] < 0 < logits.grad[0, 0]
