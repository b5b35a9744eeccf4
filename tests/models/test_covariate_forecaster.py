"""CovariateForecaster around every base forecaster: shapes, no leak from after the origin but the future
covariates, an untrained wrapper forecasts what its base does, and save/load gives the same forecasts."""

import pytest
import torch
from torch import nn

from seqlab.models import CovariateForecaster, from_pretrained
from seqlab.models import forecasters as fm

L, H, C, P, F = 24, 6, 2, 1, 3
BASES = {
    "transformer": lambda q: fm.TimeStepTransformer(fm.TimeStepTransformerConfig(C, L, H, d_model=16, n_heads=2,
                                                                                 n_layers=1, d_ff=32, quantiles=q)),
    "patch": lambda q: fm.PatchTransformer(fm.PatchTransformerConfig(C, L, H, d_model=16, n_heads=2, n_layers=1,
                                                                     d_ff=32, patch_len=8, stride=4, quantiles=q)),
    "gru": lambda q: fm.RecurrentForecaster(fm.RecurrentForecasterConfig(C, L, H, d_model=16, n_layers=1,
                                                                         cell="gru", quantiles=q)),
    "conv1d": lambda q: fm.ConvForecaster(fm.ConvForecasterConfig(C, L, H, d_model=16, n_layers=1, quantiles=q)),
    "linear": lambda q: fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, quantiles=q)),
    "periodic": lambda q: fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(C, L, H, period=12,
                                                                                        quantiles=q)),
}


def wrapped(arch: str, quantiles=()) -> CovariateForecaster:
    torch.manual_seed(0)
    model = CovariateForecaster.around(BASES[arch](quantiles), P, F, d_hidden=8, dropout=0.0)
    for layer in (model.linear, model.mlp[-1]):  # trained-like output layers (they start at zero)
        nn.init.normal_(layer.weight)
        nn.init.normal_(layer.bias)
    return model.eval()


def series_and_windows(origin: int):
    """A (1, 60, C + P + F) series and window ``origin``'s x (1, L, ·) and future (1, H, F)."""
    torch.manual_seed(1)
    values = torch.randn(1, 60, C + P + F)
    return values, values[:, origin - L:origin], values[:, origin:origin + H, C + P:]


@pytest.mark.parametrize("arch", list(BASES))
@pytest.mark.parametrize("quantiles", [(), (0.1, 0.5, 0.9)])
def test_only_the_future_covariates_over_the_horizon_reach_the_forecast(arch, quantiles):
    model, origin = wrapped(arch, quantiles), 30
    values, x, future = series_and_windows(origin)
    with torch.no_grad():
        before = model(x, future)
        assert before.shape == ((1, H, C, 3) if quantiles else (1, H, C))
        # Targets and past covariates after the origin, and future covariates beyond the horizon, are
        # outside what a window hands the model: change them all, slice again, the forecast is the same.
        changed = values.clone()
        changed[:, origin:, :C + P] = torch.randn(1, 60 - origin, C + P) * 100
        changed[:, origin + H:, C + P:] = 7.0
        assert torch.equal(model(changed[:, origin - L:origin], changed[:, origin:origin + H, C + P:]), before)
        # A future covariate inside the horizon is read.
        later = future.clone()
        later[:, 2, 1] += 1.0
        assert not torch.equal(model(x, later), before)
        # And so is a past covariate before the origin.
        earlier = x.clone()
        earlier[:, -1, C] += 1.0
        assert not torch.equal(model(earlier, future), before)


@pytest.mark.parametrize("arch", ["patch", "linear"])
def test_an_untrained_wrapper_forecasts_what_its_base_does(arch):
    torch.manual_seed(0)
    base = BASES[arch](()).eval()
    model = CovariateForecaster.around(base, P, F).eval()
    _, x, future = series_and_windows(30)
    with torch.no_grad():
        torch.testing.assert_close(model(x, future), base(x[..., :C]), rtol=0, atol=0)


@pytest.mark.parametrize("quantiles", [(), (0.1, 0.5, 0.9)])
def test_save_and_load_give_the_same_forecasts(tmp_path, quantiles):
    model = wrapped("patch", quantiles)
    model.save_pretrained(tmp_path / "saved")
    loaded = from_pretrained(tmp_path / "saved").eval()
    assert isinstance(loaded, CovariateForecaster) and isinstance(loaded.base, fm.PatchTransformer)
    _, x, future = series_and_windows(40)
    with torch.no_grad():
        assert torch.equal(loaded(x, future), model(x, future))


def test_a_missing_future_is_refused():
    model = wrapped("linear")
    _, x, _ = series_and_windows(30)
    with pytest.raises(ValueError, match=r"needs future \(B, 6, 3\); got None"):
        model(x)
