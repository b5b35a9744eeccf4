"""The position-wise feed-forward network's activations against their formulas."""

import math

import pytest
import torch

from seqlab.nn.feedforward import PositionwiseFeedForward


def formula(name: str, x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    if name == "relu":
        return x.clamp(min=0)
    if name == "gelu":  # x·Φ(x), Hendrycks & Gimpel (2016)
        return x * 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    if name == "silu":  # x·σ(x), Elfwing et al. (2018)
        return x / (1 + torch.exp(-x))
    # their tanh approximation of Φ, as GPT-2 computes it
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


@pytest.mark.parametrize("name", ["relu", "gelu", "gelu_tanh", "silu"])
def test_activation_is_its_formula(name):
    torch.manual_seed(0)
    ff = PositionwiseFeedForward(4, 8, activation=name)
    x = torch.randn(2, 3, 4) * 3
    hidden = formula(name, ff.linear1(x))
    expected = hidden @ ff.linear2.weight.double().T + ff.linear2.bias.double()
    torch.testing.assert_close(ff(x).double(), expected, rtol=1e-5, atol=1e-6)


def test_gelu_tanh_differs_from_exact_gelu():
    x = torch.linspace(-4, 4, 101, dtype=torch.float64)
    assert (formula("gelu", x) - formula("gelu_tanh", x)).abs().max() > 1e-5


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="gelu_tanh"):
        PositionwiseFeedForward(4, 8, activation="swish")  # seqlab's name for it is silu
