"""The forecasting task's settings: the ``[data]``, ``[model]``, ``[train]`` and ``[parallel]``
sections of a ``seqlab train forecast`` recipe (``seqlab.tasks.forecast`` trains with them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import check_model, option
from ..data import covariates as cov
from ..errors import UserError
from ..models.quantiles import check_quantiles, level_text
from ..parallel.config import ParallelConfig
from ..parallel.runtime import check_layout
from ..train.config import TrainConfig


@dataclass
class ForecastDataConfig:
    csv: str = option("", "a CSV (or .tsv) with a timestamp column", path=True)
    date_col: str = option("date", "the timestamp column (default date)")
    id_col: str = option("", "a long-format CSV: the column naming each row's series; the series train one "
                             "model together (default none: the file is one series)")
    target: str = option("OT", "the column to predict (default OT)")
    features: Literal["M", "S", "MS"] = option("M", "all->all (M), target->target (S), all->target (MS)")
    input_len: int = option(336, "L: past steps read (default 336; --model auto tries it among others)")
    horizon: int = option(96, "H: future steps predicted (default 96)")
    split: str = option("ett", "'ett' (12/4/4 months of hours, the default) or fractions like 0.7,0.1,0.2")
    fill: Literal["error", "ffill", "interpolate"] = option("error", "what to do with empty cells (default error)")
    past_cols: str = option("", "covariate columns observed only up to the forecast origin, like a,b (read, "
                                "never predicted)")
    future_cols: str = option("", "covariate columns known ahead over the horizon too, like a,b (predict: the "
                                  "file's rows to forecast carry them, the target empty)")
    calendar: str = option("", "calendar features from the timestamps (sin/cos, future covariates): auto or "
                               "some of minute,hour,weekday,month,dayofyear")

    def __post_init__(self) -> None:
        if self.input_len < 2 or self.horizon < 1:
            raise ValueError("data.input_len must be at least 2 and data.horizon at least 1")
        cov.check_roles(self.past_cols, self.future_cols, self.calendar, self.target)
        if self.id_col and (self.past_cols or self.future_cols or self.calendar):
            raise ValueError("covariates (--past-cols, --future-cols, --calendar) are not read from a long-format "
                             "CSV yet; leave out --id-col or the covariates")


@dataclass
class ForecastModelConfig:
    arch: Literal["auto", "transformer", "patch", "lstm", "gru", "conv1d", "linear", "periodic"] = option(
        "auto", "the forecaster; auto (the default): train the candidates of forecast_auto (no time bound "
                "unless --max-time is given) and keep the best on the validation split", flag="model")
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2  # --config etth1-patch: 3, at twice the batch (minutes more on a laptop's CPU)
    d_ff: int = 128
    dropout: float = 0.2
    patch_len: int = 16  # patch
    stride: int = 8  # patch
    kernel_size: int = 25  # linear: the moving average's width; conv1d uses 3
    period: int = 24  # periodic: the series' period in rows (24 for hourly data with a daily cycle)
    revin: bool = False  # linear: normalise each window (RLinear); periodic: divide by its spread too; others always do
    loss: Literal["mse", "mae", "huber"] = "mse"  # the training objective; scores are MSE and MAE either way
    quantiles: str = option("", "quantile levels to predict, like 0.1,0.5,0.9 (0.5 is added; default none: "
                                "point forecasts); trained by the pinball loss")
    calibrate: bool = True  # quantiles: conformal offsets from the validation windows (seqlab.models.quantiles)
    calibration_window: int = 480  # quantiles: recalibrate every H origins on the latest K windows (forecast_calibration)
    top_k: int = option(1, "--model auto: average the forecasts of the best K candidates (default 1: the best)")
    lookbacks: str = option("", "--model auto: the input lengths to try, like 96,336 (default: 96, 336, 720 and "
                                "--input-len; 36 and 104 too for a short series)")

    def __post_init__(self) -> None:
        for name in ("top_k", "kernel_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be at least 1; got {getattr(self, name)}")
        if self.arch != "auto" and (self.top_k != 1 or self.lookbacks.strip()):  # else kept in run.json, doing nothing
            raise ValueError(f"--top-k and --lookbacks choose among --model auto's candidates; --model {self.arch} "
                             f"trains one model (a resumed run too): leave them out")
        if self.calibration_window < 0:
            raise ValueError(f"model.calibration_window must be 0 (calibrate once, on validation) or a number of "
                             f"windows; got {self.calibration_window}")

        levels = check_quantiles(self.quantiles)  # written back sorted, 0.5 in: "0.1,0.5,0.9"
        self.quantiles = ",".join(map(level_text, levels))
        if levels and self.loss != "mse":
            raise ValueError(f"model.loss={self.loss} trains point forecasts; with model.quantiles the objective "
                             f"is the pinball loss (leave model.loss unset)")
        check_model(self, self.n_heads if self.arch in ("transformer", "patch") else 1, self.n_layers, self.d_ff,
                    self.patch_len, self.stride, self.period)

    @property
    def levels(self) -> tuple[float, ...]:
        """The quantile levels as numbers, sorted; () for point forecasts."""
        return check_quantiles(self.quantiles)


def _forecast_train_defaults() -> TrainConfig:
    return TrainConfig(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, warmup_steps=0,
                       max_steps=1500, batch_size=32, label_smoothing=0.0, eval_every=100, patience=5)


@dataclass
class ForecastConfig:
    data: ForecastDataConfig = field(default_factory=ForecastDataConfig)
    model: ForecastModelConfig = field(default_factory=ForecastModelConfig)
    train: TrainConfig = field(default_factory=_forecast_train_defaults)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # used when torchrun starts several ranks

    def check_layout(self, world: int) -> None:
        """A UserError unless the [parallel] layout fits ``world`` processes and the batch splits evenly."""
        if self.model.arch == "auto" and world > 1:
            raise UserError("--model auto trains its candidates on one process; give a model (--model patch, ...) "
                            "to train on several")
        check_layout(self.parallel, world, self.train.batch_size)

    def __post_init__(self) -> None:
        self.parallel.data_parallel_only("forecast")
        L, m = self.data.input_len, self.model
        if m.arch == "auto" and self.data.id_col:
            raise ValueError("--model auto searches over one series; with --id-col give the model that the series "
                             "share (--model patch, linear, periodic, ...)")
        if m.arch == "patch" and m.patch_len > L:
            raise ValueError(f"model.patch_len ({m.patch_len}) must not exceed data.input_len ({L})")
        if m.arch == "periodic" and m.period > L:
            raise ValueError(f"model.period ({m.period}) must not exceed data.input_len ({L})")
