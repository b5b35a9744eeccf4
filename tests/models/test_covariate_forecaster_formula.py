"""CovariateForecaster's output written out: base(x_C) + linear(h) + W2·relu(W1·h + b1) + b2, with
h = [past_time(covariates), future], with the base's levels as trained (unsorted) and the quantiles sorted
once, after the sum, in eval; its construction errors."""

import pytest
import torch
from torch import nn

from seqlab.models import CovariateForecaster
from seqlab.models import forecasters as fm

C, L, H, P, F = 2, 6, 3, 1, 1


def wrapped(quantiles=()):
    torch.manual_seed(0)
    base = fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, quantiles=quantiles))
    model = CovariateForecaster.around(base, P, F, d_hidden=5, dropout=0.0)
    for layer in (model.linear, model.mlp[-1], base.trend, base.seasonal):  # random: the base's levels cross
        nn.init.normal_(layer.weight)
        nn.init.normal_(layer.bias)
    return model.eval()


def test_around_defaults_and_mlp_layers():
    base = fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H))
    model = CovariateForecaster.around(base, P, F, dropout=0.2)
    assert model.config.d_hidden == 64
    first, relu, drop, last = model.mlp
    assert isinstance(relu, nn.ReLU) and isinstance(drop, nn.Dropout) and drop.p == 0.2
    assert (first.in_features, first.out_features, last.out_features) == (P + 2 * F, 64, C)


@pytest.mark.parametrize("quantiles", [(), (0.1, 0.5, 0.9)])
def test_forward_is_the_written_out_formula(quantiles):
    model = wrapped(quantiles)
    torch.manual_seed(1)
    x, future = torch.randn(4, L, C + P + F), torch.randn(4, H, F, dtype=torch.float64)
    with torch.no_grad():
        got = model(x, future)
        y = model.base.train()(x[..., :C])  # the base's levels as trained: unsorted (it has no dropout)
        model.base.eval()
        if quantiles:  # the case this test is for: levels that cross, to be sorted after the sum only
            assert (y.diff(dim=-1) < 0).any()
        cov = x[..., C:].transpose(1, 2)  # (B, P + F, L)
        h = (cov @ model.past_time.weight.T + model.past_time.bias).transpose(1, 2)
        h = torch.cat([h, future.float()], dim=-1)
        w1, b1 = model.mlp[0].weight, model.mlp[0].bias
        w2, b2 = model.mlp[-1].weight, model.mlp[-1].bias
        term = h @ model.linear.weight.T + model.linear.bias + torch.clamp(h @ w1.T + b1, min=0) @ w2.T + b2
        if quantiles:
            expected = (y + term.reshape(4, H, C, len(quantiles))).sort(dim=-1).values
        else:
            expected = y + term
    torch.testing.assert_close(got, expected)


def test_future_shape_error_names_what_came():
    model = wrapped()
    x = torch.randn(2, L, C + P + F)
    with pytest.raises(ValueError, match=r"needs future \(B, 3, 1\); got None$"):
        model(x)
    with pytest.raises(ValueError, match=r"needs future \(B, 3, 1\); got \(2, 4, 1\)$"):
        model(x, torch.randn(2, 4, 1))


def test_base_must_match_channels_or_quantiles():
    cfg = wrapped().config
    for bad in (fm.LinearForecaster(fm.LinearForecasterConfig(C + 1, L, H)),
                fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, quantiles=(0.1, 0.9)))):
        with pytest.raises(ValueError, match=r"^the base forecaster's channels and quantiles must be the wrapper's$"):
            CovariateForecaster(cfg, bad)


def test_a_bad_base_config_names_where_it_came_from():
    cfg = wrapped().config
    cfg.base = {**cfg.base, "bogus": 1}
    with pytest.raises(ValueError, match=r"^CovariateForecasterConfig\.base: unknown key 'bogus'"):
        CovariateForecaster(cfg)
