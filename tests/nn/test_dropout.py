"""dropped: the dropout module's output in training with a rate above 0, else its input without a call."""

import pytest
import torch
from torch import nn

from seqlab.nn.dropout import dropped


class CountingDropout(nn.Dropout):
    def __init__(self, p):
        super().__init__(p)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x)


def test_drops_in_training_as_torch_does():
    x = torch.randn(4, 64)
    dropout = CountingDropout(0.3).train()
    torch.manual_seed(0)
    out = dropped(dropout, x)
    torch.manual_seed(0)
    torch.testing.assert_close(out, torch.nn.functional.dropout(x, 0.3))
    assert dropout.calls == 1 and (out == 0).any()


@pytest.mark.parametrize("training, p", [(False, 0.3), (True, 0.0), (False, 0.0)])
def test_otherwise_the_input_itself_without_the_call(training, p):
    x = torch.randn(4, 64)
    dropout = CountingDropout(p).train(training)
    assert dropped(dropout, x) is x and dropout.calls == 0
