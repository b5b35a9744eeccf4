"""Forecasters: shapes, patching, the moving average, instance normalisation, causality of the
convolutions, the periodic model's phase alignment, the ensemble's mean over members of other lengths."""

import pytest
import torch

from seqlab.models import forecasters as fm
from seqlab.models import from_pretrained

L, H, C = 48, 12, 3
MODELS = {
    "transformer": lambda: fm.TimeStepTransformer(fm.TimeStepTransformerConfig(C, L, H, d_model=16, n_heads=2, n_layers=1,
                                                                                d_ff=32)),
    "patch": lambda: fm.PatchTransformer(fm.PatchTransformerConfig(C, L, H, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                                                  patch_len=8, stride=4)),
    "lstm": lambda: fm.RecurrentForecaster(fm.RecurrentForecasterConfig(C, L, H, d_model=16, cell="lstm")),
    "gru": lambda: fm.RecurrentForecaster(fm.RecurrentForecasterConfig(C, L, H, d_model=16, cell="gru")),
    "conv1d": lambda: fm.ConvForecaster(fm.ConvForecasterConfig(C, L, H, d_model=16)),
    "linear": lambda: fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, kernel_size=5)),
    "rlinear": lambda: fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, kernel_size=5, revin=True)),
    "periodic": lambda: fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(C, L, H, period=8)),
    "periodic-revin": lambda: fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(C, L, H, period=8,
                                                                                          revin=True)),
}


@pytest.mark.parametrize("name", MODELS)
def test_every_forecaster_maps_a_window_to_the_horizon_and_reloads(name, tmp_path):
    model = MODELS[name]().eval()
    x = torch.randn(4, L, C)
    assert model(x).shape == (4, H, C)
    model.save_pretrained(tmp_path / name)
    torch.testing.assert_close(from_pretrained(tmp_path / name).eval()(x), model(x))


def test_patchify_cuts_overlapping_patches_with_end_padding():
    model = MODELS["patch"]()
    x = torch.arange(L, dtype=torch.float32)[None, :, None].expand(2, L, C)  # (2, L, C), value = time step
    patches = model.patchify(x)
    assert patches.shape == (2 * C, model.n_patches, 8) and model.n_patches == (L - 8) // 4 + 2
    assert patches[0, 1].tolist() == list(range(4, 12))  # stride 4
    assert patches[0, -1].tolist() == [44, 45, 46, 47, 47, 47, 47, 47]  # padded with the last value


def test_instance_norm_makes_forecasts_follow_the_window_level():
    # A model that forecasts "the window's mean" in normalised space must follow any shift of the level.
    model = MODELS["transformer"]().eval()
    x = torch.randn(2, L, C)
    torch.testing.assert_close(model(x + 100.0), model(x) + 100.0, rtol=1e-4, atol=1e-3)


def test_moving_average_keeps_length_and_constants():
    model = MODELS["linear"]()
    series = torch.full((1, 2, L), 3.0)
    torch.testing.assert_close(model.moving_average(series), series)
    ramp = torch.arange(L, dtype=torch.float32).view(1, 1, L)
    assert model.moving_average(ramp)[0, 0, 10] == pytest.approx(10.0)  # centred window


@pytest.mark.parametrize("t", [1, 20, L - 2])
def test_conv_forecaster_is_causal_through_forward(t):
    # Causal convolutions: the features of step s read steps <= s only; the temporal head then reads all
    # L steps' features. So with a head that reads the features of steps < t only, the forecast must not
    # change when the steps >= t change. Reordering them keeps each window's mean and spread (what
    # RevIN divides by), so only the convolutions could carry the change backwards in time.
    model = MODELS["conv1d"]().eval()
    x = torch.randn(2, L, C)
    future_reordered = torch.cat([x[:, :t], x[:, t:].flip(1)], dim=1)  # steps >= t in reverse order
    assert not torch.equal(future_reordered, x)
    assert not torch.allclose(model(future_reordered), model(x), atol=1e-3)  # the full head sees the change
    with torch.no_grad():
        model.head.time.weight[:, t:] = 0.0  # the head reads steps < t only
    torch.testing.assert_close(model(future_reordered), model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("input_len, horizon", [(48, 12), (53, 20)])
def test_periodic_model_reads_each_phase_from_the_same_phase_of_past_periods(input_len, horizon):
    # With no smoothing and the map "next period = last period", the forecast must repeat the window's
    # last whole period: step h of the horizon is phase h mod w, read from the last period's phase.
    w = 8
    model = fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(C, input_len, horizon, period=w))
    with torch.no_grad():
        model.smooth.weight.zero_()
        model.across_days.weight.zero_()
        model.across_days.weight[:, -1] = 1.0
    x = torch.randn(2, input_len, C)
    y = model(x)
    last_period = x[:, -w:]  # (2, w, C); with input_len 53 the oldest 5 steps are not read
    expected = last_period.repeat(1, -(-horizon // w), 1)[:, :horizon]
    torch.testing.assert_close(y, expected)
    assert model.days_in == input_len // w and model.days_out == -(-horizon // w)


LEVELS = (0.1, 0.5, 0.9)


def with_quantiles(name):
    """The MODELS entry ``name`` rebuilt with quantiles 0.1, 0.5, 0.9."""
    model = MODELS[name]()
    config = type(model.config)(**{**vars(model.config), "quantiles": (0.9, 0.1)})  # unsorted, no median
    return type(model)(config)


@pytest.mark.parametrize("name", MODELS)
def test_every_forecaster_gives_sorted_quantiles_and_reloads(name, tmp_path):
    model = with_quantiles(name).eval()
    assert model.config.quantiles == LEVELS  # sorted, 0.5 added
    x = torch.randn(4, L, C)
    y = model(x)
    assert y.shape == (4, H, C, 3) and (y.diff(dim=-1) >= 0).all()
    model.save_pretrained(tmp_path / name)
    torch.testing.assert_close(from_pretrained(tmp_path / name).eval()(x), y)


@pytest.mark.parametrize("name", ["transformer", "patch", "lstm", "conv1d", "rlinear", "periodic-revin"])
def test_every_quantile_is_put_back_on_the_window_scale(name):
    # RevIN undoes each window's mean and spread on every quantile: scaling and shifting the input
    # scales and shifts all Q outputs alike.
    model = with_quantiles(name).eval()
    x = torch.randn(2, L, C)
    torch.testing.assert_close(model(3.0 * x + 100.0), 3.0 * model(x) + 100.0, rtol=1e-4, atol=1e-3)


def test_point_forecasts_are_the_default_and_quantile_heads_are_wider():
    for name in MODELS:
        point, quantile = MODELS[name](), with_quantiles(name)
        assert point.config.quantiles == ()
        assert sum(p.numel() for p in quantile.parameters()) > sum(p.numel() for p in point.parameters())


def test_periodic_quantiles_keep_each_phase_and_add_their_own_offset():
    # "Next period = last period" for every level, plus a bias of -1, 0, +1 per level: quantile j of
    # step h is the last period's phase h mod w shifted by its level's offset. Checks the (day, level)
    # layout of the widened map.
    w, horizon = 8, 20
    model = fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(C, L, horizon, period=w, quantiles=LEVELS))
    days_out = -(-horizon // w)
    with torch.no_grad():
        model.smooth.weight.zero_()
        model.across_days.weight.zero_()
        model.across_days.weight[:, -1] = 1.0
        model.across_days.bias.copy_(torch.tensor([-1.0, 0.0, 1.0]).repeat(days_out))  # output k·Q + j
    x = torch.randn(2, L, C)
    expected = x[:, -w:].repeat(1, days_out, 1)[:, :horizon]  # (2, H, C)
    torch.testing.assert_close(model(x), expected.unsqueeze(-1) + torch.tensor([-1.0, 0.0, 1.0]))


def test_quantiles_are_sorted_at_inference_only():
    # Reversed offsets (+1, 0, -1): in training each output keeps its level's slot (the pinball loss then
    # pushes it into place); in eval mode the rearrangement sorts them.
    model = fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(C, L, H, period=8, quantiles=LEVELS))
    with torch.no_grad():
        model.across_days.weight.zero_()
        model.across_days.bias.copy_(torch.tensor([1.0, 0.0, -1.0]).repeat(model.days_out))
    x = torch.randn(2, L, C)
    trained = model.train()(x)
    torch.testing.assert_close(trained[..., 0] - trained[..., 2], torch.full((2, H, C), 2.0))
    torch.testing.assert_close(model.eval()(x), trained.flip(-1))


def test_an_ensemble_forecasts_the_mean_of_its_members_each_on_its_own_last_steps(tmp_path):
    short = fm.LinearForecaster(fm.LinearForecasterConfig(C, L // 2, H, kernel_size=5)).eval()
    long = MODELS["periodic"]().eval()
    ensemble = fm.ForecastEnsemble.of([short, long]).eval()
    assert ensemble.config.input_len == L
    x = torch.randn(4, L, C)
    with torch.no_grad():
        by_hand = (short(x[:, L // 2:]) + long(x)) / 2  # the short member reads the last L/2 steps only
        torch.testing.assert_close(ensemble(x), by_hand)
        ensemble.save_pretrained(tmp_path / "ensemble")
        torch.testing.assert_close(from_pretrained(tmp_path / "ensemble").eval()(x), by_hand)
    quantiles = [fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, quantiles=(0.1, 0.9))) for _ in range(2)]
    with torch.no_grad():
        y = fm.ForecastEnsemble.of(quantiles).eval()(x)
    assert y.shape == (4, H, C, 3) and bool((y.diff(dim=-1) >= 0).all())


def test_an_ensemble_refuses_members_of_another_horizon():
    members = [MODELS["linear"](), fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H + 1))]
    with pytest.raises(ValueError, match="not the ensemble's"):
        fm.ForecastEnsemble.of(members)


def moving_average_by_hand(row: list[float], k: int) -> list[float]:
    """DLinear's moving average: the mean of k values centred on each step ((k - 1) // 2 before, k // 2
    after), the series' first and last values repeated beyond its ends."""
    n = len(row)
    return [sum(row[min(max(t + j, 0), n - 1)] for j in range(-((k - 1) // 2), k // 2 + 1)) / k for t in range(n)]


def test_linear_forecaster_is_dlinear_written_out():
    # trend = moving average; seasonal = the rest; forecast = W_t·trend + b_t + W_s·seasonal + b_s, per channel
    length, horizon, channels, k = 8, 3, 2, 3
    model = fm.LinearForecaster(fm.LinearForecasterConfig(channels, length, horizon, kernel_size=k)).eval()
    torch.manual_seed(0)
    x = torch.randn(2, length, channels)
    y = model(x)
    wt, bt = model.trend.weight.tolist(), model.trend.bias.tolist()
    ws, bs = model.seasonal.weight.tolist(), model.seasonal.bias.tolist()
    want = torch.zeros(2, horizon, channels)
    for b in range(2):
        for c in range(channels):
            row = x[b, :, c].tolist()
            trend = moving_average_by_hand(row, k)
            seasonal = [v - m for v, m in zip(row, trend)]
            for h in range(horizon):
                want[b, h, c] = (sum(w * v for w, v in zip(wt[h], trend)) + bt[h]
                                 + sum(w * v for w, v in zip(ws[h], seasonal)) + bs[h])
    torch.testing.assert_close(y, want)


def test_periodic_forecaster_is_sparsetsf_written_out():
    # per channel: the last whole days, less their mean; plus their zero-padded convolution with the period-wide
    # kernel; day d of phase p -> Σ_d' W[d', d] · s[d'·w + p]; plus the mean back
    length, horizon, w, channels = 14, 5, 4, 2  # 3 days read (the oldest 2 steps not), 2 days forecast
    model = fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(channels, length, horizon, period=w))
    with torch.no_grad():
        model.smooth.weight.copy_(torch.tensor([[[0.5, -1.0, 2.0, 0.25, -0.75]]]))
    kernel = model.smooth.weight.view(-1).tolist()
    W = model.across_days.weight.tolist()  # (2 days out, 3 days in)
    torch.manual_seed(1)
    x = torch.randn(2, length, channels) + torch.tensor([5.0, -3.0])  # channels at other levels
    y = model.eval()(x)
    want = torch.zeros(2, horizon, channels)
    for b in range(2):
        for c in range(channels):
            row = x[b, 2:, c].tolist()
            mean = sum(row) / len(row)
            s = [v - mean for v in row]
            smooth = [s[t] + sum(kernel[j] * s[t + j - 2] for j in range(5) if 0 <= t + j - 2 < len(s))
                      for t in range(len(s))]
            for h in range(horizon):
                day, phase = divmod(h, w)
                want[b, h, c] = sum(W[day][d] * smooth[d * w + phase] for d in range(3)) + mean
    torch.testing.assert_close(y, want)


def ensemble_member(**values) -> dict:
    return {"model_class": "LinearForecaster", "channels": C, "horizon": H, "input_len": L, **values}


def test_an_ensemble_config_names_what_is_wrong_with_a_member():
    with pytest.raises(ValueError, match="^a forecast ensemble needs at least one member$"):
        fm.ForecastEnsembleConfig(C, L, H, [])
    with pytest.raises(ValueError, match="^ensemble member 'TransformerLM' is not a registered forecaster$"):
        fm.ForecastEnsembleConfig(C, L, H, [ensemble_member(model_class="TransformerLM")])
    with pytest.raises(ValueError, match="^ensemble member 'NoSuchModel' is not a registered forecaster$"):
        fm.ForecastEnsembleConfig(C, L, H, [ensemble_member(model_class="NoSuchModel")])
    with pytest.raises(ValueError, match=f"^ensemble member LinearForecaster reads {L + 1} steps; the ensemble "
                                         f"reads {L}$"):
        fm.ForecastEnsembleConfig(C, L, H, [ensemble_member(input_len=L + 1)])
    with pytest.raises(ValueError, match=f"^ensemble member LinearForecaster reads 0 steps; the ensemble reads {L}$"):
        fm.ForecastEnsembleConfig(C, L, H, [ensemble_member(input_len=0)])
    no_length = ensemble_member()
    del no_length["input_len"]
    with pytest.raises(ValueError, match=f"^ensemble member LinearForecaster reads None steps; the ensemble "
                                         f"reads {L}$"):
        fm.ForecastEnsembleConfig(C, L, H, [no_length])
    # a member reading a single step is allowed
    assert fm.ForecastEnsembleConfig(C, L, H, [ensemble_member(input_len=1)]).members[0]["input_len"] == 1
    # a key its own config does not have: named when the ensemble is built
    config = fm.ForecastEnsembleConfig(C, L, H, [ensemble_member(kernal_size=5)])
    with pytest.raises(ValueError, match="^an ensemble member: unknown key 'kernal_size' for LinearForecasterConfig"):
        fm.ForecastEnsemble(config)


def test_an_ensemble_of_one_covariate_forecaster_passes_it_the_future():
    from seqlab.models import CovariateForecaster
    torch.manual_seed(0)
    base = fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, kernel_size=5))
    member = CovariateForecaster.around(base, 0, 2, d_hidden=4, dropout=0.0)
    for layer in (member.linear, member.mlp[-1]):  # non-zero, as if trained
        torch.nn.init.normal_(layer.weight)
    member.eval()
    ensemble = fm.ForecastEnsemble.of([member]).eval()
    x, future = torch.randn(2, L, C + 2), torch.randn(2, H, 2)
    with torch.no_grad():
        torch.testing.assert_close(ensemble(x, future), member(x, future))


def torch_twin(layer, d_model, n_heads, d_ff):
    """torch's own pre-norm GELU encoder layer with ``layer``'s weights copied in."""
    ref = torch.nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True).eval()
    a = layer.self_attn
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(torch.cat([a.w_q.weight, a.w_k.weight, a.w_v.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([a.w_q.bias, a.w_k.bias, a.w_v.bias]))
        ref.self_attn.out_proj.load_state_dict(a.w_o.state_dict())
        ref.linear1.load_state_dict(layer.ff.linear1.state_dict())
        ref.linear2.load_state_dict(layer.ff.linear2.state_dict())
        for name in ("norm1", "norm2"):
            torch.nn.init.normal_(getattr(layer, name).weight)  # non-trivial norms
            getattr(ref, name).load_state_dict(getattr(layer, name).state_dict())
    return ref


@pytest.mark.parametrize("name", ["transformer", "patch"])
def test_transformer_forecasters_use_pre_norm_gelu_layers_with_the_configured_dropout(name):
    # Both are pre-norm ("norm_first") with GELU, as PatchTST (Nie et al., 2023) and our seed model are:
    # each encoder layer must equal torch's TransformerEncoderLayer(norm_first=True, activation="gelu").
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    x = torch.randn(2, 5, 16)
    for layer in model.layers:
        ref = torch_twin(layer, 16, 2, 32)
        torch.testing.assert_close(layer(x), ref(x), atol=1e-5, rtol=1e-5)
    config = type(model.config)(**{**vars(model.config), "dropout": 0.37, "quantiles": ()})
    rates = {m.p for m in type(model)(config).layers.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.37}


def test_patch_config_limits_and_message():
    fm.PatchTransformerConfig(C, 16, H, patch_len=16, stride=1)  # a single patch the length of the window is fine
    for bad in ({"patch_len": 17}, {"patch_len": 8, "stride": 0}):
        with pytest.raises(ValueError, match=r"model\.patch_len \(\d+\) must fit in input_len \(16\); stride ≥ 1"):
            fm.PatchTransformerConfig(C, 16, H, **bad)


def test_periodic_config_limits_and_message():
    fm.PeriodicLinearForecasterConfig(C, 16, H, period=1)
    fm.PeriodicLinearForecasterConfig(C, 16, H, period=16)
    for period in (0, 17):
        with pytest.raises(ValueError, match=rf"^model\.period must be between 1 and input_len \(16\); got {period}$"):
            fm.PeriodicLinearForecasterConfig(C, 16, H, period=period)


@pytest.mark.parametrize("quantiles", [(), (0.5,)])
def test_periodic_forecaster_weight_count_is_the_documented_one(quantiles):
    # SparseTSF's (L/w)·⌈H/w⌉ + 2·⌊w/2⌋ + 1 weights; with quantiles a bias per future day and level too.
    w, length, horizon = 8, 48, 12
    model = fm.PeriodicLinearForecaster(fm.PeriodicLinearForecasterConfig(C, length, horizon, period=w,
                                                                          quantiles=quantiles))
    days_in, days_out, q = 6, 2, len(quantiles)
    expected = days_in * days_out * max(q, 1) + 2 * (w // 2) + 1 + (days_out * q if q else 0)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_conv_forecaster_features_are_dilated_causal_residual_convolutions_written_out():
    # Features after the conv stack, computed by hand with torch's conv1d: layer i dilated 2**i, padded
    # on the left only, GELU, added to its input.
    torch.manual_seed(0)
    model = fm.ConvForecaster(fm.ConvForecasterConfig(C, L, H, d_model=8, n_layers=3, kernel_size=3)).eval()
    seen = []
    model.head.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.randn(2, L, C)
    model(x)
    normed = (x - x.mean(1, keepdim=True)) / (x.var(1, keepdim=True, unbiased=False) + 1e-5).sqrt()
    h = torch.nn.functional.conv1d(normed.transpose(1, 2), model.embed.weight, model.embed.bias)
    for i in range(3):
        dilation = 2 ** i
        padded = torch.nn.functional.pad(h, (2 * dilation, 0))
        h = h + torch.nn.functional.gelu(torch.nn.functional.conv1d(padded, model.convs[i].weight, model.convs[i].bias,
                                                                    dilation=dilation))
    torch.testing.assert_close(seen[0], h.transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_linear_forecaster_without_revin_is_affine_in_the_window():
    # DLinear (no RevIN) is an affine map of the window: f(x + y) − f(0) = (f(x) − f(0)) + (f(y) − f(0)).
    # RevIN's division by each window's spread would break this.
    torch.manual_seed(0)
    model = fm.LinearForecaster(fm.LinearForecasterConfig(C, L, H, kernel_size=5)).eval()
    x, y, zero = torch.randn(2, L, C), 3 * torch.randn(2, L, C) + 1, torch.zeros(2, L, C)
    f0 = model(zero)
    torch.testing.assert_close(model(x + y) - f0, (model(x) - f0) + (model(y) - f0), atol=1e-4, rtol=1e-4)
