"""Quantile intervals calibrated once on the validation split, or again at each forecast origin on the
latest windows whose values are known by then: the coverage each gives on data it has not seen.

    .venv/bin/python benchmarks/rolling_calibration.py --run RUN [--interval 80] [--windows 96,240,480,720,1440,0]
        [--every 24]

RUN is a forecast run trained with quantiles (``seqlab train forecast ... --quantiles 0.1,0.5,0.9``). Its
raw quantile forecasts (its own ``calibration`` left out) of every validation and test window are
computed once. Then, for the central interval ``--interval`` (80: between the levels 0.1 and 0.9), the
offsets applied as the run applies its own (:func:`seqlab.models.quantiles.calibrated`) and the coverage
measured as ``eval`` does (:func:`seqlab.models.quantiles.quantile_errors`):

- raw: no calibration;
- once: the offsets the run keeps in its model (:func:`seqlab.models.quantiles.conformal_offsets` on all
  validation windows), applied to every test window, as ``model.calibration_window=0`` does;
- rolling, K windows: at each forecast origin, the offsets of the latest K windows whose whole horizon
  lies before that origin (0: all of them since the start of the validation split), recomputed every
  ``--every`` origins: split conformal prediction on a sliding calibration set, as for a series whose
  spread drifts (Gibbs & Candès, "Adaptive Conformal Inference Under Distribution Shift", NeurIPS 2021,
  discuss why a fixed calibration set fails there). Runs do this themselves since the thirty-first
  session (``model.calibration_window``, :mod:`seqlab.tasks.forecast_calibration`), every H origins.

K is chosen on validation only: the rolling rule run over the second half of the validation windows
(calibrated on the windows before each origin, the first half included). The test split is scored for
every K, so the table also shows what the choice missed; the figure to report is the chosen K's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from seqlab.models.quantiles import calibrated, central_intervals, conformal_offsets, quantile_errors
from seqlab.tasks import forecast as fc
from seqlab.tasks.forecast_auto import windows_of
from seqlab.tasks.run_dir import read_json


def coverage(prediction: np.ndarray, truth: np.ndarray, levels, interval: str, offsets=None) -> float:
    """The share of true values inside the central interval, the offsets (C, Q) applied first."""
    if offsets is not None:
        prediction = calibrated(torch.from_numpy(prediction), offsets.tolist(), levels).numpy()
    return quantile_errors(prediction, truth, levels)[f"coverage_{interval}"]


def rolling(prediction, truth, start, horizon, window, every, levels, interval) -> float:
    """The coverage of windows start… when each block of ``every`` origins is calibrated on the latest
    ``window`` windows (0: all) that end before the block's first origin."""
    inside = total = 0.0
    for i in range(start, len(prediction), every):
        known = i - horizon + 1  # windows 0 … i - horizon have all their values before origin i
        first = max(0, known - window) if window else 0
        offsets = conformal_offsets(prediction[first:known], truth[first:known], levels)
        block = slice(i, min(i + every, len(prediction)))
        inside += coverage(prediction[block], truth[block], levels, interval, offsets) * truth[block].size
        total += truth[block].size
    return inside / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--interval", default="80", help="the central interval, by its nominal coverage in percent")
    parser.add_argument("--windows", default="96,240,480,720,1440,0", help="K values of the rolling rule (0: all)")
    parser.add_argument("--every", type=int, default=24, help="origins between two recalibrations")
    args = parser.parse_args()

    forecast = fc.Forecast.load(args.run)
    levels = forecast.levels
    if args.interval not in central_intervals(levels):
        raise SystemExit(f"{args.run}'s quantiles {levels} span no {args.interval} % central interval")
    lo, hi = central_intervals(levels)[args.interval]
    forecast.model.config.calibration = []  # raw forecasts: every rule below calibrates them itself
    series = fc.read_series(forecast.config.data)
    bounds = read_json(args.run / "series.json")["bounds"]
    raw = {}
    for split in ("valid", "test"):
        prediction, truth = fc.predict_windows(forecast.model, windows_of(forecast, series, bounds[split]), 256, "cpu")
        raw[split] = prediction, truth[..., : prediction.shape[2]]
    (pv, tv), (pt, tt) = raw["valid"], raw["test"]
    horizon, nominal = pv.shape[1], levels[hi] - levels[lo]
    print(f"run {args.run}: {len(pv):,} validation and {len(pt):,} test windows, horizon {horizon}, "
          f"interval {levels[lo]}-{levels[hi]} (nominal {nominal:.0%})")
    print(f"raw:  validation {coverage(pv, tv, levels, args.interval):.4f}  "
          f"test {coverage(pt, tt, levels, args.interval):.4f}")
    once = conformal_offsets(pv, tv, levels)
    print(f"once on validation: test {coverage(pt, tt, levels, args.interval, once):.4f}")
    both_p, both_t = np.concatenate([pv, pt]), np.concatenate([tv, tt])
    results = []
    for window in (int(k) for k in args.windows.split(",")):
        valid = rolling(pv, tv, len(pv) // 2, horizon, window, args.every, levels, args.interval)
        test = rolling(both_p, both_t, len(pv), horizon, window, args.every, levels, args.interval)
        results.append((window, valid, test))
        print(f"rolling, K = {window or 'all'}: validation (second half) {valid:.4f}  test {test:.4f}")
    chosen = min(results, key=lambda r: abs(r[1] - nominal))
    print(f"chosen on validation: K = {chosen[0] or 'all'} (validation {chosen[1]:.4f}); its test coverage {chosen[2]:.4f}")


if __name__ == "__main__":
    main()
