"""A forecaster that reads covariates: any base forecaster's forecast of the modelled channels plus a
term learned from the covariates, after TiDE (Das et al. 2023, "Long-term Forecasting with TiDE",
§3: past covariates encoded with the look-back, future covariates fed to each horizon step, a linear
residual path beside the MLP).

    x (B, L, C + P + F): the modelled channels, then P past and F future covariates, over the L input rows
    future (B, H, F): the future covariates over the H horizon rows
    -> base(x[..., :C]) + term: (B, H, C), or (B, H, C, Q) with quantiles

The term: each covariate's L input values are mapped to H values by one linear map along time,
shared by the covariates (B, H, P + F); beside each horizon step's own F future values that makes a
(B, H, P + 2F) feature per step, which a linear map plus a one-hidden-layer MLP turn into C (or C·Q)
values. The base reads the modelled channels only, so a base that ignores extra channels (patch,
periodic) loses nothing; the output layers start at zero, so an untrained wrapper forecasts what its
base does. Nothing after the origin but ``future`` enters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from . import pretrained
from .forecasters import Forecaster, _ordered
from .quantiles import check_calibration, check_quantiles


@dataclass
class CovariateForecasterConfig:
    channels: int  # C: the modelled channels (the base's)
    input_len: int
    horizon: int
    past: int = 0  # P: past covariates
    future: int = 0  # F: future covariates
    d_hidden: int = 64
    dropout: float = 0.1
    quantiles: tuple[float, ...] = ()  # the base's levels
    base: dict[str, Any] = field(default_factory=dict)  # the base's config.json: {"model_class": …, **config}
    calibration: list[list[float]] = field(default_factory=list)  # (C, Q) conformal offsets; the base has none

    def __post_init__(self) -> None:
        self.quantiles = check_quantiles(self.quantiles)
        self.calibration = check_calibration(self.calibration, self.channels, self.quantiles)
        if self.past + self.future < 1:
            raise ValueError("a CovariateForecaster needs at least one covariate (past + future >= 1)")


@pretrained.register
class CovariateForecaster(Forecaster):
    config_class = CovariateForecasterConfig

    def __init__(self, config: CovariateForecasterConfig, base: nn.Module | None = None) -> None:
        super().__init__()
        self.config = c = config
        if base is None:
            values = dict(c.base)
            cls = pretrained.MODEL_CLASSES[values.pop("model_class")]
            base = cls(pretrained.build_config(cls.config_class, values, "CovariateForecasterConfig.base"))
        if tuple(base.config.quantiles) != c.quantiles or base.config.channels != c.channels:
            raise ValueError("the base forecaster's channels and quantiles must be the wrapper's")
        self.base = base
        base.orders_output = False  # its levels raw, as trained: this wrapper sorts and calibrates after its terms
        self.n_quantiles = len(c.quantiles)
        width = c.past + 2 * c.future
        out = c.channels * max(self.n_quantiles, 1)
        self.past_time = nn.Linear(c.input_len, c.horizon)  # each covariate's L values -> H
        self.linear = nn.Linear(width, out)
        self.mlp = nn.Sequential(nn.Linear(width, c.d_hidden), nn.ReLU(), nn.Dropout(c.dropout),
                                 nn.Linear(c.d_hidden, out))
        for layer in (self.linear, self.mlp[-1]):  # start as the base alone
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @classmethod
    def around(cls, base: Forecaster, past: int, future: int, d_hidden: int = 64,
               dropout: float = 0.1) -> "CovariateForecaster":
        """Wrap a built ``base`` forecaster (its weights kept) for ``past`` and ``future`` covariates."""
        b = base.config
        config = CovariateForecasterConfig(b.channels, b.input_len, b.horizon, past, future, d_hidden, dropout,
                                           tuple(b.quantiles),
                                           {"model_class": type(base).__name__, **pretrained.config_values(b)})
        return cls(config, base)

    def forward(self, x: Tensor, future: Tensor | None = None) -> Tensor:
        """x (B, L, C + P + F), future (B, H, F) (None when F = 0) -> (B, H, C) or (B, H, C, Q)."""
        c = self.config
        y = self.base(x[..., :c.channels])  # (B, H, C[, Q])
        h = self.past_time(x[..., c.channels:].transpose(1, 2)).transpose(1, 2)  # (B, H, P + F)
        if c.future:
            if future is None or future.shape[1:] != (c.horizon, c.future):
                raise ValueError(f"a CovariateForecaster with {c.future} future covariates needs future "
                                 f"(B, {c.horizon}, {c.future}); got {None if future is None else tuple(future.shape)}")
            h = torch.cat([h, future.to(h.dtype)], dim=-1)  # (B, H, P + 2F)
        term = self.linear(h) + self.mlp(h)  # (B, H, C·Q)
        if self.n_quantiles:
            term = term.unflatten(-1, (c.channels, self.n_quantiles))  # (B, H, C, Q)
        y = y + term
        return _ordered(self, y)
