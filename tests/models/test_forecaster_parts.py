"""The parts every forecaster shares, each against its formula written out: RevIN's instance
normalisation (Kim et al., 2022), the temporal head (a linear map along time, then along features),
and the sorting of quantiles at inference."""

from types import SimpleNamespace

import pytest
import torch

from seqlab.models import forecasters as fm


def test_instance_norm_is_revins_formula_with_eps_1e_5():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3) * torch.tensor([1.0, 3.0, 0.002]) + torch.tensor([5.0, -2.0, 0.5])  # (B, L, C)
    normed, (mean, std) = fm.InstanceNorm()(x)
    want_mean = x.sum(1, keepdim=True) / 6  # per window and channel, over time
    want_var = ((x - want_mean) ** 2).sum(1, keepdim=True) / 6  # the biased variance (divided by L)
    want_std = (want_var + 1e-5).sqrt()
    assert mean.shape == std.shape == (2, 1, 3)
    torch.testing.assert_close(mean, want_mean)
    torch.testing.assert_close(std, want_std, rtol=1e-6, atol=0)  # eps matters in the flat third channel
    torch.testing.assert_close(normed, (x - want_mean) / want_std)
    # a constant window: std = sqrt(eps), the normalised window 0
    flat, (_, flat_std) = fm.InstanceNorm()(torch.full((1, 4, 1), 7.0))
    assert torch.equal(flat, torch.zeros(1, 4, 1))
    torch.testing.assert_close(flat_std, torch.full((1, 1, 1), 1e-5 ** 0.5))
    _, (_, std_eps) = fm.InstanceNorm(eps=0.25)(torch.full((1, 4, 1), 7.0))
    torch.testing.assert_close(std_eps, torch.full((1, 1, 1), 0.5))


def test_instance_norm_statistics_carry_no_gradient():
    x = torch.randn(2, 5, 3, requires_grad=True)
    normed, (mean, std) = fm.InstanceNorm()(x)
    assert not mean.requires_grad and not std.requires_grad
    normed.sum().backward()  # d/dx of (x - m) / s with m, s constants: 1 / s
    torch.testing.assert_close(x.grad, (1 / std).expand(2, 5, 3))


def test_denormalise_puts_points_and_every_quantile_back_per_channel():
    mean = torch.tensor([[[1.0, -2.0, 10.0]], [[0.0, 3.0, -1.0]]])  # (B, 1, C)
    std = torch.tensor([[[2.0, 0.5, 4.0]], [[1.0, 3.0, 0.25]]])
    y = torch.randn(2, 4, 3)
    torch.testing.assert_close(fm.InstanceNorm.denormalise(y, (mean, std)), y * std + mean)
    q = torch.randn(2, 4, 3, 5)  # (B, H, C, Q)
    want = torch.stack([q[..., i] * std + mean for i in range(5)], dim=-1)
    torch.testing.assert_close(fm.InstanceNorm.denormalise(q, (mean, std)), want)
    # C = Q: a wrong broadcast would still run, so the values are what tells
    q3 = torch.randn(2, 4, 3, 3)
    want3 = torch.stack([q3[..., i] * std + mean for i in range(3)], dim=-1)
    torch.testing.assert_close(fm.InstanceNorm.denormalise(q3, (mean, std)), want3)


@pytest.mark.parametrize("n_quantiles", [0, 3])
def test_temporal_head_maps_along_time_then_along_features(n_quantiles):
    torch.manual_seed(0)
    B, L, H, D, C = 2, 7, 4, 5, 3
    head = fm.TemporalHead(L, H, D, C, n_quantiles)
    assert (head.time.in_features, head.time.out_features) == (L, H)
    assert (head.features.in_features, head.features.out_features) == (D, C * max(n_quantiles, 1))
    h = torch.randn(B, L, D)
    # y[b, t, j] = Σ_d W_f[j, d] (Σ_s W_t[t, s] h[b, s, d] + b_t[t]) + b_f[j]
    over_time = torch.einsum("ts,bsd->btd", head.time.weight, h) + head.time.bias[None, :, None]  # (B, H, D)
    want = torch.einsum("jd,btd->btj", head.features.weight, over_time) + head.features.bias  # (B, H, C·Q)
    if n_quantiles:
        want = want.view(B, H, C, n_quantiles)  # channel-major: output j = c·Q + q
    torch.testing.assert_close(head(h), want)


def test_temporal_head_gives_point_forecasts_by_default():
    head = fm.TemporalHead(6, 2, 4, 3)
    assert head.features.out_features == 3
    assert head(torch.randn(1, 6, 4)).shape == (1, 2, 3)


def model(quantiles, training, calibration=(), orders_output=True):
    config = SimpleNamespace(quantiles=quantiles, calibration=list(calibration))
    return SimpleNamespace(config=config, training=training, orders_output=orders_output)


def test_quantiles_are_sorted_in_eval_mode_only_and_point_forecasts_never():
    y = torch.tensor([[[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]]])  # (1, 2, 3): unsorted along the last axis
    assert torch.equal(fm._ordered(model((0.1, 0.5, 0.9), False), y), y.sort(-1).values)
    assert torch.equal(fm._ordered(model((0.1, 0.5, 0.9), True), y), y)
    assert torch.equal(fm._ordered(model((0.1, 0.5, 0.9), False, orders_output=False), y), y)  # a wrapper's base
    # a point forecast's last axis is the channels: never reordered
    assert torch.equal(fm._ordered(model((), False), y), y)
    assert torch.equal(fm._ordered(model((), True), y), y)


def test_calibration_offsets_are_added_in_eval_mode_then_sorted():
    y = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]]])  # (H=1, C=2, Q=3)
    offsets = [[-0.5, 0.0, 0.25], [3.0, 0.0, 0.0]]  # channel 1's lowest level pushed above its median
    calibrated = fm._ordered(model((0.1, 0.5, 0.9), False, offsets), y)
    assert calibrated.tolist() == [[[0.5, 2.0, 3.25], [1.0, 1.0, 2.0]]]  # never past the median
    assert torch.equal(fm._ordered(model((0.1, 0.5, 0.9), True, offsets), y), y)  # training: raw outputs
    # two levels on one side: the 0.05 one shifted inside the 0.1 one is held at it (sorting would pull
    # the 0.1 level in, narrowing the 80 % interval); the 0.95 one shifted inside stays at the 0.9 one
    five = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 4.0]]])  # (H=1, C=1, Q=5)
    shifted = fm._ordered(model((0.05, 0.1, 0.5, 0.9, 0.95), False, [[1.5, -0.5, 0.0, 0.5, -1.0]]), five)
    assert shifted.tolist() == [[[0.5, 0.5, 2.0, 3.5, 3.5]]]
