"""Forecasters: (B, L, C) past values -> (B, H, C) the next H values of every channel.

Seed 000's comparison on one footing: self-attention over time steps (``TimeStepTransformer``), over
patches of each channel (``PatchTransformer``, PatchTST-style), recurrence (``RecurrentForecaster``),
convolution (``ConvForecaster``), a linear map with a trend/seasonal split (``LinearForecaster``,
DLinear-style) and a linear map across periods (``PeriodicLinearForecaster``, SparseTSF-style). All but
the linear ones normalise each window by its own mean and spread first (RevIN; the periodic one by its
mean only, as SparseTSF does), which removes the level shifts between training and test periods that
real series have.

Every config takes ``quantiles`` (default (): point forecasts, (B, H, C)). With levels τ_1 < … < τ_Q
(0.5 among them; :mod:`.quantiles`), the final projection is Q times wider and the forecast is
(B, H, C, Q), one value per level, sorted in eval mode so they never cross; the normalisation is undone on
each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import GRU, LSTM, LearnedPositionalEmbedding, SinusoidalPositionalEncoding, encoder_layer
from . import pretrained
from .quantiles import calibrated, check_calibration, check_quantiles


class InstanceNorm(nn.Module):
    """RevIN (Kim et al., 2022): subtract each window's per-channel mean, divide by its standard
    deviation; ``denormalise`` puts the forecast back on the window's own scale."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        mean = x.mean(dim=1, keepdim=True).detach()  # (B, 1, C)
        std = (x.var(dim=1, keepdim=True, unbiased=False) + self.eps).sqrt().detach()
        return (x - mean) / std, (mean, std)

    @staticmethod
    def denormalise(y: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
        """y (B, H, C), or (B, H, C, Q) quantiles, each put back the same way."""
        mean, std = stats  # (B, 1, C)
        if y.dim() == 4:
            mean, std = mean.unsqueeze(-1), std.unsqueeze(-1)  # (B, 1, C, 1)
        return y * std + mean


class TemporalHead(nn.Module):
    """(B, L, D) features per input step -> (B, H, C): a linear map along time, then along features;
    with ``n_quantiles`` Q > 0, (B, H, C, Q)."""

    def __init__(self, input_len: int, horizon: int, d_model: int, channels: int, n_quantiles: int = 0) -> None:
        super().__init__()
        self.n_quantiles = n_quantiles
        self.time = nn.Linear(input_len, horizon)
        self.features = nn.Linear(d_model, channels * max(n_quantiles, 1))

    def forward(self, h: Tensor) -> Tensor:
        y = self.features(self.time(h.transpose(1, 2)).transpose(1, 2))  # (B, H, C·Q)
        return y.unflatten(-1, (-1, self.n_quantiles)) if self.n_quantiles else y


def _levels(config) -> None:
    """Check a forecaster config's ``quantiles`` (sorted, 0.5 added: :func:`check_quantiles`) and its
    ``calibration`` (channels × levels, or empty)."""
    config.quantiles = check_quantiles(config.quantiles)
    config.calibration = check_calibration(config.calibration, config.channels, config.quantiles)


def _ordered(model: nn.Module, y: Tensor) -> Tensor:
    """The forecast as it leaves a forecaster: in eval mode quantiles sorted along their last axis (the
    rearrangement, applied after fitting: in training each output keeps its own level, or outputs whose
    order changes from window to window would trade levels), then shifted by the config's conformal
    ``calibration`` if it has one (:func:`.quantiles.calibrated`); a point forecast as is. A model inside
    another (``orders_output`` off: a covariate wrapper's base) leaves that to the outer one, which adds
    its own per-level terms to the levels as they were trained."""
    c = model.config
    if not c.quantiles or model.training or not model.orders_output:
        return y
    return calibrated(y, c.calibration, c.quantiles)


def _encode(layers: nn.ModuleList, h: Tensor, need_weights: bool) -> tuple[Tensor, list[Tensor]]:
    """Run the encoder layers; per layer its attention weights when ``need_weights`` (else [])."""
    maps = []
    for layer in layers:
        if need_weights:
            h, weights = layer(h, need_weights=True)
            maps.append(weights)
        else:
            h = layer(h)
    return h, maps


class Forecaster(pretrained.PretrainedModel):
    """What every forecaster shares: a config whose first fields are ``channels`` (C), ``input_len`` (L)
    and ``horizon`` (H), and save/load."""

    orders_output = True  # see _ordered; not a setting: only a wrapper turns it off, for its base


@dataclass
class TimeStepTransformerConfig:
    channels: int
    input_len: int
    horizon: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 128
    dropout: float = 0.1
    quantiles: tuple[float, ...] = ()  # () = point forecasts; else the levels predicted (0.5 added)
    calibration: list[list[float]] = field(default_factory=list)  # (C, Q) conformal offsets, added in eval mode

    def __post_init__(self) -> None:
        _levels(self)


@pretrained.register
class TimeStepTransformer(Forecaster):
    """Seed 000's model: each time step is a token (its C values projected to d_model), sinusoidal
    positions, a Transformer encoder, and a head that maps the L encoded steps to H forecasts."""

    config_class = TimeStepTransformerConfig

    def __init__(self, config: TimeStepTransformerConfig) -> None:
        super().__init__()
        self.config = c = config
        channels, input_len, horizon, d_model, dropout = c.channels, c.input_len, c.horizon, c.d_model, c.dropout
        self.norm = InstanceNorm()
        self.embed = nn.Linear(channels, d_model)
        self.position = SinusoidalPositionalEncoding(d_model, input_len)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(encoder_layer(d_model, c.n_heads, c.d_ff, dropout, norm_first=True, activation="gelu")
                                    for _ in range(c.n_layers))
        self.final_norm = nn.LayerNorm(d_model)
        self.head = TemporalHead(input_len, horizon, d_model, channels, len(c.quantiles))

    def forward(self, x: Tensor, need_weights: bool = False):
        """x (B, L, C) -> (B, H, C) (or (B, H, C, Q) quantiles); with ``need_weights``, (forecast, per layer the
        (B, heads, L, L) self-attention weights over the time steps)."""
        x, stats = self.norm(x)  # (B, L, C)
        h = self.dropout(self.position(self.embed(x)))  # (B, L, D)
        h, maps = _encode(self.layers, h, need_weights)
        y = self.norm.denormalise(self.head(self.final_norm(h)), stats)  # (B, H, C) or (B, H, C, Q)
        y = _ordered(self, y)
        return (y, maps) if need_weights else y


@dataclass
class PatchTransformerConfig:
    channels: int
    input_len: int
    horizon: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 3
    d_ff: int = 128
    dropout: float = 0.2
    patch_len: int = 16
    stride: int = 8
    quantiles: tuple[float, ...] = ()  # () = point forecasts; else the levels predicted (0.5 added)
    calibration: list[list[float]] = field(default_factory=list)  # (C, Q) conformal offsets, added in eval mode

    def __post_init__(self) -> None:
        _levels(self)
        if self.patch_len > self.input_len or self.stride < 1:
            raise ValueError(f"model.patch_len ({self.patch_len}) must fit in input_len ({self.input_len}); "
                             f"stride ≥ 1")


@pretrained.register
class PatchTransformer(Forecaster):
    """PatchTST (Nie et al., 2023): every channel on its own (channel independence), cut into patches
    of ``patch_len`` steps every ``stride`` steps; each patch is a token; a Transformer encoder over
    the patches; the flattened patch features map linearly to the H forecasts."""

    config_class = PatchTransformerConfig

    def __init__(self, config: PatchTransformerConfig) -> None:
        super().__init__()
        self.config = c = config
        input_len, horizon, d_model, dropout, patch_len, stride = (c.input_len, c.horizon, c.d_model, c.dropout,
                                                                   c.patch_len, c.stride)
        self.patch_len, self.stride = patch_len, stride
        self.n_patches = (input_len - patch_len) // stride + 2  # +1: the series is padded by one stride
        self.norm = InstanceNorm()
        self.embed = nn.Linear(patch_len, d_model)
        self.position = LearnedPositionalEmbedding(self.n_patches, d_model)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(encoder_layer(d_model, c.n_heads, c.d_ff, dropout, norm_first=True, activation="gelu")
                                    for _ in range(c.n_layers))
        self.final_norm = nn.LayerNorm(d_model)
        self.n_quantiles = len(c.quantiles)
        self.head = nn.Linear(self.n_patches * d_model, horizon * max(self.n_quantiles, 1))

    def patchify(self, x: Tensor) -> Tensor:
        """(B, L, C) -> (B·C, P, patch_len): each channel's series, padded at the end by repeating its
        last value ``stride`` times, cut into P overlapping patches."""
        B, L, C = x.shape
        series = x.transpose(1, 2).reshape(B * C, L)
        series = torch.cat([series, series[:, -1:].expand(-1, self.stride)], dim=1)
        return series.unfold(-1, self.patch_len, self.stride)

    def forward(self, x: Tensor, need_weights: bool = False):
        """x (B, L, C) -> (B, H, C) (or (B, H, C, Q) quantiles); with ``need_weights``, (forecast, per layer the
        (B·C, heads, P, P) self-attention weights over each channel's patches)."""
        B, L, C = x.shape
        x, stats = self.norm(x)
        h = self.dropout(self.position(self.embed(self.patchify(x))))  # (B·C, P, D)
        h, maps = _encode(self.layers, h, need_weights)
        y = self.head(self.final_norm(h).flatten(1))  # (B·C, H·Q)
        y = y.view(B, C, -1, self.n_quantiles) if self.n_quantiles else y.view(B, C, -1)  # (B, C, H[, Q])
        y = _ordered(self, self.norm.denormalise(y.transpose(1, 2), stats))  # (B, H, C[, Q])
        return (y, maps) if need_weights else y


@dataclass
class RecurrentForecasterConfig:
    channels: int
    input_len: int
    horizon: int
    d_model: int = 64
    n_layers: int = 2
    cell: str = "lstm"  # or "gru"
    dropout: float = 0.1
    quantiles: tuple[float, ...] = ()  # () = point forecasts; else the levels predicted (0.5 added)
    calibration: list[list[float]] = field(default_factory=list)  # (C, Q) conformal offsets, added in eval mode

    def __post_init__(self) -> None:
        _levels(self)
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru'; got {self.cell!r}")


@pretrained.register
class RecurrentForecaster(Forecaster):
    """An LSTM or GRU reads the window step by step; its outputs at every step go through the same
    temporal head as the Transformer's (so the comparison is of the encoders)."""

    config_class = RecurrentForecasterConfig

    def __init__(self, config: RecurrentForecasterConfig) -> None:
        super().__init__()
        self.config = c = config
        self.norm = InstanceNorm()
        self.rnn = (LSTM if c.cell == "lstm" else GRU)(c.channels, c.d_model, c.n_layers, dropout=c.dropout)
        self.head = TemporalHead(c.input_len, c.horizon, c.d_model, c.channels, len(c.quantiles))

    def forward(self, x: Tensor) -> Tensor:
        x, stats = self.norm(x)
        h, _ = self.rnn(x)  # (B, L, D)
        return _ordered(self, self.norm.denormalise(self.head(h), stats))


@dataclass
class ConvForecasterConfig:
    channels: int
    input_len: int
    horizon: int
    d_model: int = 64
    n_layers: int = 4
    kernel_size: int = 3
    dropout: float = 0.1
    quantiles: tuple[float, ...] = ()  # () = point forecasts; else the levels predicted (0.5 added)
    calibration: list[list[float]] = field(default_factory=list)  # (C, Q) conformal offsets, added in eval mode

    def __post_init__(self) -> None:
        _levels(self)


@pretrained.register
class ConvForecaster(Forecaster):
    """Stacked causal 1-D convolutions with growing dilation (receptive field 1 + (k-1)(2^n - 1) steps),
    residual connections, then the temporal head."""

    config_class = ConvForecasterConfig

    def __init__(self, config: ConvForecasterConfig) -> None:
        super().__init__()
        self.config = c = config
        channels, d_model = c.channels, c.d_model
        self.norm = InstanceNorm()
        self.embed = nn.Conv1d(channels, d_model, 1)
        self.convs = nn.ModuleList(nn.Conv1d(d_model, d_model, c.kernel_size, dilation=2**i)
                                   for i in range(c.n_layers))
        self.dropout = nn.Dropout(c.dropout)
        self.head = TemporalHead(c.input_len, c.horizon, d_model, channels, len(c.quantiles))

    def forward(self, x: Tensor) -> Tensor:
        x, stats = self.norm(x)
        h = self.embed(x.transpose(1, 2))  # (B, D, L)
        for conv in self.convs:
            left = conv.dilation[0] * (conv.kernel_size[0] - 1)  # causal: pad the past only
            h = h + self.dropout(F.gelu(conv(F.pad(h, (left, 0)))))
        return _ordered(self, self.norm.denormalise(self.head(h.transpose(1, 2)), stats))


@dataclass
class LinearForecasterConfig:
    channels: int
    input_len: int
    horizon: int
    kernel_size: int = 25  # the moving average's width
    revin: bool = False
    quantiles: tuple[float, ...] = ()  # () = point forecasts; else the levels predicted (0.5 added)
    calibration: list[list[float]] = field(default_factory=list)  # (C, Q) conformal offsets, added in eval mode

    def __post_init__(self) -> None:
        _levels(self)


@pretrained.register
class LinearForecaster(Forecaster):
    """DLinear (Zeng et al., 2023): split each channel into a trend (moving average over
    ``kernel_size`` steps) and the seasonal rest; one linear map L -> H for each, shared by channels.
    ``revin=True`` normalises each window first, as RLinear (Li et al., 2023) does."""

    config_class = LinearForecasterConfig

    def __init__(self, config: LinearForecasterConfig) -> None:
        super().__init__()
        self.config = c = config
        self.kernel_size = c.kernel_size
        self.norm = InstanceNorm() if c.revin else None
        self.n_quantiles = len(c.quantiles)  # each map gives Q values per future step
        self.trend = nn.Linear(c.input_len, c.horizon * max(self.n_quantiles, 1))
        self.seasonal = nn.Linear(c.input_len, c.horizon * max(self.n_quantiles, 1))

    def moving_average(self, x: Tensor) -> Tensor:
        """(B, C, L) -> (B, C, L), each end padded by repeating its value so the length is kept."""
        front, back = (self.kernel_size - 1) // 2, self.kernel_size // 2
        padded = torch.cat([x[..., :1].expand(-1, -1, front), x, x[..., -1:].expand(-1, -1, back)], dim=-1)
        return F.avg_pool1d(padded, self.kernel_size, stride=1)

    def forward(self, x: Tensor) -> Tensor:
        if self.norm is not None:
            x, stats = self.norm(x)
        series = x.transpose(1, 2)  # (B, C, L)
        trend = self.moving_average(series)
        y = self.trend(trend) + self.seasonal(series - trend)  # (B, C, H·Q)
        if self.n_quantiles:
            y = y.unflatten(-1, (-1, self.n_quantiles))  # (B, C, H, Q)
        y = y.transpose(1, 2)  # (B, H, C[, Q])
        return _ordered(self, self.norm.denormalise(y, stats) if self.norm is not None else y)


@dataclass
class PeriodicLinearForecasterConfig:
    channels: int
    input_len: int
    horizon: int
    period: int = 24  # w, in rows
    revin: bool = False
    quantiles: tuple[float, ...] = ()  # () = point forecasts; else the levels predicted (0.5 added)
    calibration: list[list[float]] = field(default_factory=list)  # (C, Q) conformal offsets, added in eval mode

    def __post_init__(self) -> None:
        _levels(self)
        if not 1 <= self.period <= self.input_len:
            raise ValueError(f"model.period must be between 1 and input_len ({self.input_len}); got {self.period}")


@pretrained.register
class PeriodicLinearForecaster(Forecaster):
    """SparseTSF (Lin et al., 2024): with a known period w (24 for hourly data), the value at phase p of
    a future day is predicted from phase p of the past days only. Each channel's window, less its mean,
    is smoothed by a learned convolution over one period (added back as a residual), cut into L/w days,
    and one linear map (L/w days -> ceil(H/w) days, shared by all phases and channels) runs down each
    phase. (L/w)·⌈H/w⌉ + 2·⌊w/2⌋ + 1 weights: it cannot overfit much, which is its point. The oldest
    L mod w steps are not read. With Q quantiles the map gives Q values per future day and phase, and
    a bias per future day and level (the spread between levels is a constant offset the unbiased map of
    a window less its mean could not give)."""

    config_class = PeriodicLinearForecasterConfig

    def __init__(self, config: PeriodicLinearForecasterConfig) -> None:
        super().__init__()
        self.config = c = config
        input_len, horizon, period = c.input_len, c.horizon, c.period
        self.period, self.horizon = period, horizon
        self.days_in, self.days_out = input_len // period, -(-horizon // period)
        self.norm = InstanceNorm() if c.revin else None
        self.smooth = nn.Conv1d(1, 1, 2 * (period // 2) + 1, padding=period // 2, bias=False)
        self.n_quantiles = len(c.quantiles)
        self.across_days = nn.Linear(self.days_in, self.days_out * max(self.n_quantiles, 1), bias=self.n_quantiles > 0)

    def forward(self, x: Tensor) -> Tensor:
        B, _, C = x.shape
        x = x[:, x.size(1) - self.days_in * self.period:]  # (B, L', C), L' a whole number of periods
        if self.norm is not None:
            x, stats = self.norm(x)
        else:
            mean = x.mean(dim=1, keepdim=True)
            x = x - mean
        series = x.transpose(1, 2).reshape(B * C, 1, -1)  # (B·C, 1, L')
        series = series + self.smooth(series)
        phases = series.view(B * C, self.days_in, self.period).transpose(1, 2)  # (B·C, w, days)
        y = self.across_days(phases)  # (B·C, w, days·Q)
        if self.n_quantiles:
            y = y.unflatten(-1, (-1, self.n_quantiles)).transpose(1, 2)  # (B·C, days, w, Q)
            y = y.reshape(B, C, -1, self.n_quantiles)[:, :, :self.horizon].transpose(1, 2)  # (B, H, C, Q)
        else:
            y = y.transpose(1, 2).reshape(B, C, -1)[..., :self.horizon].transpose(1, 2)  # (B, H, C)
        if self.norm is not None:
            y = self.norm.denormalise(y, stats)
        else:
            y = y + (mean.unsqueeze(-1) if self.n_quantiles else mean)
        return _ordered(self, y)


@dataclass
class ForecastEnsembleConfig:
    channels: int
    input_len: int  # L: the longest of the members' input lengths
    horizon: int
    members: list[dict] = field(default_factory=list)  # each {"model_class": NAME, **its config's fields}
    quantiles: tuple[float, ...] = ()  # () = point forecasts; else the levels predicted (0.5 added)
    calibration: list[list[float]] = field(default_factory=list)  # (C, Q) conformal offsets, added in eval mode

    def __post_init__(self) -> None:
        _levels(self)
        if not self.members:
            raise ValueError("a forecast ensemble needs at least one member")
        for member in self.members:
            name = member.get("model_class")
            if name not in pretrained.MODEL_CLASSES or not issubclass(pretrained.MODEL_CLASSES[name], Forecaster):
                raise ValueError(f"ensemble member {name!r} is not a registered forecaster")
            shape = (member.get("channels"), member.get("horizon"), tuple(member.get("quantiles") or ()))
            if shape != (self.channels, self.horizon, self.quantiles):
                raise ValueError(f"ensemble member {name} forecasts (channels, horizon, quantiles) = {shape}, "
                                 f"not the ensemble's {(self.channels, self.horizon, self.quantiles)}")
            if not 1 <= member.get("input_len", 0) <= self.input_len:
                raise ValueError(f"ensemble member {name} reads {member.get('input_len')} steps; the ensemble "
                                 f"reads {self.input_len}")


@pretrained.register
class ForecastEnsemble(Forecaster):
    """The mean of several trained forecasters' forecasts (a combination of forecasts, Bates & Granger,
    1969): each member reads the last ``input_len`` of its own from the ensemble's window of the longest
    one, so members of different look-backs combine. Quantile forecasts average level by level (the
    mean of sorted vectors is sorted)."""

    config_class = ForecastEnsembleConfig

    def __init__(self, config: ForecastEnsembleConfig) -> None:
        super().__init__()
        self.config = config
        built = []
        for member in config.members:
            values = {key: value for key, value in member.items() if key != "model_class"}
            cls = pretrained.MODEL_CLASSES[member["model_class"]]
            built.append(cls(pretrained.build_config(cls.config_class, values, "an ensemble member")))
        self.members = nn.ModuleList(built)

    @classmethod
    def of(cls, members: list[nn.Module]) -> "ForecastEnsemble":
        """An ensemble of trained forecasters, their weights copied in."""
        first = members[0].config
        ensemble = cls(ForecastEnsembleConfig(
            first.channels, max(m.config.input_len for m in members), first.horizon,
            [{"model_class": type(m).__name__, **pretrained.config_values(m.config), "calibration": []}
             for m in members],  # the ensemble is calibrated as a whole, not each member
            first.quantiles))
        for mine, theirs in zip(ensemble.members, members):
            mine.load_state_dict(theirs.state_dict())
        return ensemble

    def forward(self, x: Tensor, *future: Tensor) -> Tensor:
        """x (B, L, C) -> the members' mean forecast (B, H, C) (or (B, H, C, Q)); members that read
        future covariates (a CovariateForecaster each) take ``future`` (B, H, F) as well."""
        forecasts = [member(x[:, x.size(1) - member.config.input_len:], *future) for member in self.members]
        return _ordered(self, torch.stack(forecasts).mean(dim=0))


ARCHITECTURES = ("transformer", "patch", "lstm", "gru", "conv1d", "linear", "periodic")
