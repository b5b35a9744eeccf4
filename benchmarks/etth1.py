"""ETTh1, multivariate (7 channels in, 7 out), the ETT split (12/4/4 months), input 336 hours by default:
test MSE and MAE (standardised, as published) for each forecaster at each horizon, with training time on
this CPU.

    .venv/bin/python benchmarks/etth1.py --csv ../shared/data/ETTh1.csv [--models patch,linear,...]
        [--horizons 96,192,336,720] [--out runs/etth1] [--seeds 0,1,2]

Each model trains with the settings below (early stopping on validation MSE, best checkpoint scored;
``rlinear`` is the linear model with RevIN and an MAE training loss), capped at the stated seconds.
With several ``--seeds`` each model trains once a seed, and a last row scores the mean forecast of those
runs (a seed ensemble; nothing is chosen on the test split). ``periodic`` is run with --input-len 720.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from seqlab.config import load_config
from seqlab.tasks import run_dir as runs
from seqlab.tasks.forecast import ForecastConfig, errors, read_series, train
from etth1_ensemble import forecasts

# fp32: the recorded rows trained in it (the default before precision "auto"), so they reproduce
COMMON = ["data.features='M'", "data.target='OT'", "data.split='ett'", "train.progress=false",
          "train.tensorboard=false", "train.max_time=600", "train.precision='fp32'"]
# name -> overrides (model.arch is the name unless an override sets it)
SETTINGS = {
    "patch": ["model.d_model=16", "model.n_heads=4", "model.n_layers=3", "model.d_ff=128", "model.dropout=0.3",
              "model.patch_len=16", "model.stride=8", "train.batch_size=64", "train.lr=1e-3",
              "train.max_steps=3200", "train.eval_every=128", "train.patience=5", "train.max_time=150"],
    "linear": ["model.kernel_size=25", "train.batch_size=32", "train.lr=5e-3", "train.max_steps=2560",
               "train.eval_every=256", "train.patience=3"],
    "rlinear": ["model.arch='linear'", "model.revin=true", "model.loss='mae'", "model.kernel_size=25",
                "train.batch_size=32", "train.lr=5e-3", "train.max_steps=2560", "train.eval_every=256",
                "train.patience=3"],
    "periodic": ["model.period=24", "train.batch_size=256", "train.lr=2e-2", "train.max_steps=960",
                 "train.eval_every=32", "train.patience=5"],
    "transformer": ["model.d_model=64", "model.n_heads=4", "model.n_layers=2", "model.d_ff=128",
                    "model.dropout=0.1", "train.batch_size=64", "train.lr=5e-4", "train.max_steps=2000",
                    "train.eval_every=128", "train.patience=5", "train.max_time=120"],
    "lstm": ["model.d_model=64", "model.n_layers=2", "model.dropout=0.1", "train.batch_size=64", "train.lr=1e-3",
             "train.max_steps=2000", "train.eval_every=128", "train.patience=5", "train.max_time=120"],
    "gru": ["model.d_model=64", "model.n_layers=2", "model.dropout=0.1", "train.batch_size=64", "train.lr=1e-3",
            "train.max_steps=2000", "train.eval_every=128", "train.patience=5", "train.max_time=120"],
    "conv1d": ["model.d_model=64", "model.n_layers=4", "model.dropout=0.1", "train.batch_size=64",
               "train.lr=1e-3", "train.max_steps=2000", "train.eval_every=128", "train.patience=5",
               "train.max_time=120"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--models", default="patch,linear,rlinear,transformer,lstm,gru,conv1d",
                        help="also: periodic (run it with --input-len 720); rlinear: the linear model with "
                             "RevIN and an MAE training loss")
    parser.add_argument("--horizons", default="96,192,336,720")
    parser.add_argument("--input-len", type=int, default=336)
    parser.add_argument("--out", type=Path, default=Path("runs/etth1"))
    parser.add_argument("--set", action="append", default=[], help="extra overrides for every model")
    parser.add_argument("--seeds", default="0", help="train.seed values; several add a seed-ensemble row")
    args = parser.parse_args()
    horizons = [int(h) for h in args.horizons.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    series = None  # the CSV, read once: every run uses the same file, columns and split
    print(f"ETTh1 multivariate, ETT split, input {args.input_len}; test MSE / MAE (standardised)\n")
    print("| model | " + " | ".join(f"H={h} MSE | H={h} MAE" for h in horizons) + " | mean MSE | train s |")
    print("|---|" + "---|---|" * len(horizons) + "---|---|")
    for arch in args.models.split(","):
        ensemble: dict[int, list[Path]] = {h: [] for h in horizons}
        for seed in seeds:
            cells, mses, seconds = [], [], 0.0
            for horizon in horizons:
                overrides = [*COMMON, f"model.arch='{arch}'", *SETTINGS[arch], f"data.csv='{args.csv}'",
                             f"data.input_len={args.input_len}", f"data.horizon={horizon}", *args.set,
                             f"train.seed={seed}"]
                config = load_config(ForecastConfig, None, overrides)
                name = f"{arch}-{horizon}" if len(seeds) == 1 else f"{arch}-seed{seed}-{horizon}"
                run = runs.create_run_dir(args.out / name, overwrite=True)
                series = series or read_series(config.data)
                _, m = train(config, run, series, log=lambda *_: None)
                ensemble[horizon].append(run)
                cells += [f"{m['test_mse']:.4f}", f"{m['test_mae']:.4f}"]
                mses.append(m["test_mse"])
                seconds += m["train_seconds"]
            label = arch if len(seeds) == 1 else f"{arch}, seed {seed}"
            print(f"| {label} | " + " | ".join(cells) + f" | {statistics.mean(mses):.4f} | {seconds:.0f} |",
                  flush=True)
        if len(seeds) > 1:
            cells, mses = [], []
            for horizon in horizons:
                members = [forecasts(run, args.csv)["test"] for run in ensemble[horizon]]
                score = errors(np.mean([prediction for prediction, _ in members], axis=0), members[0][1])
                cells += [f"{score['mse']:.4f}", f"{score['mae']:.4f}"]
                mses.append(score["mse"])
            print(f"| {arch}, mean forecast of seeds {args.seeds} | " + " | ".join(cells) +
                  f" | {statistics.mean(mses):.4f} | — |", flush=True)


if __name__ == "__main__":
    main()
