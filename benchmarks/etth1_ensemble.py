"""ETTh1: the mean forecast of several trained runs, the members chosen on the validation split only.

    .venv/bin/python benchmarks/etth1_ensemble.py --csv ../shared/data/ETTh1.csv [--runs runs/etth1]
        [--models rlinear,patch,linear] [--horizons 96,192,336,720]

Reads the runs that `benchmarks/etth1.py` wrote (RUNS/MODEL-H), predicts every validation and test
window with each, and reports for each horizon: every member alone, the plain mean of all members, and
greedy ensemble selection (Caruana et al., 2004: add, with replacement, the member that most lowers the
mean forecast's validation MSE, until none does). The test split is scored once, after the choice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from seqlab.data import timeseries as ts
from seqlab.tasks.forecast import Forecast, errors, predict_windows


def forecasts(run: Path, csv: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (prediction, truth)} of one run on its own validation and test windows (standardised)."""
    forecast = Forecast.load(run)
    d = forecast.config.data
    series = ts.read_series(csv, d.date_col, d.target, d.features, d.fill)
    scaled = forecast.scaler.transform(series.values)
    bounds = ts.split_bounds(len(series.values), d.split, d.input_len, d.horizon)
    out = {}
    for name in ("valid", "test"):
        start, end = bounds[name]
        prediction, truth = predict_windows(forecast.model, ts.Windows(scaled[start:end], d.input_len, d.horizon),
                                            256, forecast.device)
        out[name] = prediction[..., forecast.targets], truth[..., forecast.targets]
    return out


def greedy_selection(valid: dict[str, np.ndarray], truth: np.ndarray, rounds: int = 20) -> list[str]:
    chosen: list[str] = []
    total, best = None, float("inf")
    for _ in range(rounds):
        scores = {}
        for name, prediction in valid.items():
            candidate = prediction if total is None else total + prediction
            scores[name] = errors(candidate / (len(chosen) + 1), truth)["mse"]
        name = min(scores, key=scores.get)
        if scores[name] >= best:
            break
        best = scores[name]
        chosen.append(name)
        total = valid[name] if total is None else total + valid[name]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--runs", type=Path, default=Path("runs/etth1"))
    parser.add_argument("--models", default="rlinear,patch,linear")
    parser.add_argument("--horizons", default="96,192,336,720")
    args = parser.parse_args()
    models = args.models.split(",")
    summary: dict[str, list[float]] = {}
    for horizon in (int(h) for h in args.horizons.split(",")):
        runs = {m: forecasts(args.runs / f"{m}-{horizon}", args.csv) for m in models
                if (args.runs / f"{m}-{horizon}" / "run.json").is_file()}
        valid_truth, test_truth = next(iter(runs.values()))["valid"][1], next(iter(runs.values()))["test"][1]
        print(f"\nH={horizon}")
        for name, out in runs.items():
            print(f"  {name:>12}: valid MSE {errors(out['valid'][0], valid_truth)['mse']:.4f}  "
                  f"test MSE {errors(out['test'][0], test_truth)['mse']:.4f}")
        mean = np.mean([out["test"][0] for out in runs.values()], axis=0)
        chosen = greedy_selection({n: out["valid"][0] for n, out in runs.items()}, valid_truth)
        selected = np.mean([runs[n]["test"][0] for n in chosen], axis=0)
        for label, prediction in ((f"mean of {'+'.join(runs)}", mean),
                                  (f"selected on validation: {'+'.join(chosen)}", selected)):
            score = errors(prediction, test_truth)
            summary.setdefault(label.split(":")[0], []).append(score["mse"])
            print(f"  {label}: test MSE {score['mse']:.4f}  MAE {score['mae']:.4f}")
    print()
    for label, values in summary.items():
        print(f"{label}: mean test MSE over horizons {np.mean(values):.4f}")


if __name__ == "__main__":
    main()
