"""``seqlab train forecast --model auto`` (the default): train a fixed list of candidate forecasters,
keep the one with the best score on the *validation* split, and score only that one on the test split.

    seqlab train forecast --csv FILE --horizon H --split 0.7,0.1,0.2 [--max-time 300] [--top-k 1]

The candidates, cheapest first: every recipe below except ``patch`` at every input length L of the
grid (shortest first), then ``patch`` at every L up to 336 (PatchTST's own look-back; the bound keeps the costliest
candidates few). The recipes are the ETTh1 benchmark's
(``benchmarks/etth1.py``'s settings, chosen on ETTh1's validation split), each stopping by steps:

| candidate | model | training (batch, rate, most steps, validation every, patience) |
|---|---|---|
| ``linear`` | DLinear, moving average of 25 | 32, 5e-3, 2,560, 256, 3 |
| ``linear-lr1e-3`` | the same | 32, 1e-3, 2,560, 256, 3 |
| ``rlinear`` | DLinear with RevIN, MAE loss (with ``--quantiles``: the pinball loss) | 32, 5e-3, 2,560, 256, 3 |
| ``periodic`` | SparseTSF, period from the timestamps' spacing (below) | 256, 2e-2, 960, 32, 5 |
| ``patch`` | PatchTST: d_model 16, 4 heads, 3 layers, d_ff 128, dropout 0.3, patch 16, stride 8 | 64, 1e-3, 3,200, 128, 5 |

``train.max_steps`` (``--max-steps``, 1,500 by default) caps every recipe's steps. The other training
settings (seed, optimizer, schedule, ``model.loss`` where the recipe sets none, ``--quantiles``) are
the run's own. The recurrent, convolutional and time-step Transformer forecasters are not candidates
(each costs more steps' time than the budget of a few minutes on two cores leaves); ``--model NAME``
trains one of them.

Input lengths: ``--lookbacks 96,336`` (``model.lookbacks``), or by default 96, 336 and 720 and
``data.input_len`` (336 unless given) — and for a series whose training part cannot hold 720 + H
rows, 36 and 104 too (weekly series such as ILI). A length the split cannot hold (``split_bounds``)
is dropped; so is a recipe that does not fit a length (a period or a patch longer than L), listed
in ``auto.json`` as skipped.

The period of ``periodic``: rows per day for data spaced under a day that divides it (hourly 24,
15-minute 96), 7 for daily, 52 for weekly and 12 for monthly data; other spacings have no
``periodic`` candidate.

Choice: the lowest validation MSE (validation quantile loss with ``--quantiles``, after each candidate's
conformal calibration on those same windows: in-sample for the offsets, alike for every candidate); a tie
goes to the earlier, cheaper candidate. ``--top-k K`` averages the forecasts of the best K (``ForecastEnsemble``).
Nothing reads the test windows until the choice is made; then the chosen model is scored on them once.
The same data, settings and seed give the same choice: precision ``auto`` is pinned to fp32 (timing
bf16 against fp32 would make the choice depend on the machine), and no candidate stops by time.
``train.max_time`` (``--max-time SECONDS``; 0, the default, is none) can bound the whole search:
when it is spent, the candidate under way stops at its next step and the rest are skipped, which is
then said on standard error and in ``auto.json``; only then does the choice depend on the machine.

The run directory is the chosen model's, as if it had been trained directly (``run.json`` names its
model and settings; eval, predict, backtest and the explorer use it unchanged), plus ``auto.json``:
every candidate's validation scores, steps and seconds, the choice and why, and what was skipped (a
candidate whose training fails, a diverged loss say, is skipped and the search goes on).
``metrics.json`` adds ``auto_choice``, ``auto_seconds`` and ``auto_budget_spent``. The candidates
train in ``RUN/auto/``, removed at the end (and on any error or interruption; a run directory left
empty by that is removed too). ``auto.json``'s ``top_k`` is what was asked, ``top_k_used`` how many
were averaged (fewer when fewer candidates fit or trained, said once on standard error). With ``--top-k`` K > 1 the run's ``model.arch`` stays ``auto``
and its checkpoint is the ensemble; such a run does not resume or refit.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import build, to_dict
from ..data import covariates as cov, timeseries as ts
from ..errors import DataError, UserError
from ..io import write_json
from ..models import forecasters as fm
from ..train import checkpoint
from ..train.device import resolve_device
from ..train.loop import DEADLINE_PASSED
from . import forecast as fc, forecast_calibration as rolling, run_dir as runs

LOOKBACKS, SHORT_LOOKBACKS = (96, 336, 720), (36, 104)

_LINEAR = {"model.arch": "linear", "model.kernel_size": 25, "model.revin": False, "train.batch_size": 32,
           "train.lr": 5e-3, "train.max_steps": 2560, "train.eval_every": 256, "train.patience": 3}
RECIPES: dict[str, dict[str, Any]] = {  # name -> settings, in the order tried at each input length
    "linear": _LINEAR,
    "linear-lr1e-3": {**_LINEAR, "train.lr": 1e-3},
    "rlinear": {**_LINEAR, "model.revin": True, "model.loss": "mae"},
    "periodic": {"model.arch": "periodic", "model.revin": False, "train.batch_size": 256, "train.lr": 2e-2,
                 "train.max_steps": 960, "train.eval_every": 32, "train.patience": 5},
    "patch": {"model.arch": "patch", "model.d_model": 16, "model.n_heads": 4, "model.n_layers": 3,
              "model.d_ff": 128, "model.dropout": 0.3, "model.patch_len": 16, "model.stride": 8,
              "train.batch_size": 64, "train.lr": 1e-3, "train.max_steps": 3200, "train.eval_every": 128,
              "train.patience": 5},
}
LAST = ("patch",)  # the costly recipes: tried after every cheap one, at lengths up to LAST_MAX_LEN
LAST_MAX_LEN = 336  # PatchTST's own look-back (Nie et al. 2023); a bound on the search's costliest candidates


@dataclass
class Candidate:
    name: str  # RECIPE-L{input_len}
    config: fc.ForecastConfig


def seasonal_period(timestamps: pd.DatetimeIndex) -> int | None:
    """The rows in one season of the series' spacing (the median step): a day for steps under a day
    that divide it, a week for daily data, a year for weekly (52) and monthly (12) data; else None."""
    if len(timestamps) < 2:
        return None
    step, day = pd.Series(timestamps).diff().median(), pd.Timedelta(days=1)
    if pd.isna(step) or step <= pd.Timedelta(0):
        return None
    if step < day and day % step == pd.Timedelta(0):
        return int(day // step)
    if step == day:
        return 7
    if step == 7 * day:
        return 52
    if 28 * day <= step <= 31 * day:
        return 12
    return None


def lookbacks(config: fc.ForecastConfig, n_rows: int) -> list[int]:
    """The input lengths tried, shortest first: those of the grid (see the module's docstring) that the
    split holds; a DataError when none does."""
    d, m = config.data, config.model
    if m.lookbacks.strip():
        try:
            grid = sorted({int(n) for n in m.lookbacks.split(",")})
        except ValueError:
            grid = []
        if not grid or grid[0] < 2:
            raise UserError(f"--lookbacks (model.lookbacks) must be input lengths of at least 2, like 96,336; "
                            f"got {m.lookbacks!r}")
    else:
        grid = sorted({*LOOKBACKS, d.input_len})
        if not fits(n_rows, d.split, max(LOOKBACKS), d.horizon):
            grid = sorted({*grid, *SHORT_LOOKBACKS})
    kept = [L for L in grid if fits(n_rows, d.split, L, d.horizon)]
    if not kept:
        ts.split_bounds(n_rows, d.split, grid[0], d.horizon)  # the shortest one's reason, in its words
    return kept


def fits(n_rows: int, split: str, input_len: int, horizon: int) -> bool:
    try:
        ts.split_bounds(n_rows, split, input_len, horizon)
    except DataError as error:
        if "--split must be" in str(error):  # not a matter of length: say it
            raise
        return False
    return True


def plan(config: fc.ForecastConfig, series: ts.Series) -> tuple[list[Candidate], list[dict[str, str]]]:
    """The candidates in the order they train, and those left out because a recipe does not fit."""
    period = seasonal_period(series.timestamps)
    lengths = lookbacks(config, len(series.values))
    cheap = [name for name in RECIPES if name not in LAST]
    order = [(name, L) for name in cheap for L in lengths]
    order.sort(key=lambda pair: (lengths.index(pair[1]), cheap.index(pair[0])))  # by length, then recipe
    order += [(name, L) for name in LAST for L in lengths]
    candidates, left_out = [], []
    for name, L in order:
        settings = dict(RECIPES[name], **{"data.input_len": L})
        if name in LAST and L > LAST_MAX_LEN:
            left_out.append({"name": f"{name}-L{L}", "reason": f"{name} is tried up to L = {LAST_MAX_LEN}"})
            continue
        if name == "periodic":
            if period is None:
                left_out.append({"name": f"{name}-L{L}", "reason": "no season known for the timestamps' spacing"})
                continue
            settings["model.period"] = period
        try:
            candidates.append(Candidate(f"{name}-L{L}", candidate_config(config, settings)))
        except UserError as error:  # a period or patch longer than L
            left_out.append({"name": f"{name}-L{L}", "reason": str(error).split(": ", 1)[-1]})
    return candidates, left_out


def candidate_config(config: fc.ForecastConfig, settings: dict[str, Any]) -> fc.ForecastConfig:
    """The run's config with a recipe's settings: steps capped by the run's, no time cap (the search's
    guard stops it), fp32 unless a precision was chosen, quiet, no pictures (the chosen one draws its own)."""
    tree = to_dict(config)
    for key, value in settings.items():
        section, name = key.split(".")
        tree[section][name] = value
    t = tree["train"]
    t["max_steps"] = min(settings.get("train.max_steps", t["max_steps"]), config.train.max_steps)
    t.update(max_time=0.0, progress=False, tensorboard=False, curves=False)
    if t["precision"] == "auto":
        t["precision"] = "fp32"
    if config.model.levels and tree["model"]["loss"] != "mse":  # quantiles train by the pinball loss
        tree["model"]["loss"] = "mse"
    tree["model"].update(top_k=1, lookbacks="")
    return build(fc.ForecastConfig, tree)


def search(config: fc.ForecastConfig, run: Path, series: ts.Series, *, resume: bool = False,
           log=print) -> dict[str, Any]:
    """Train the candidates into ``run``/auto, choose on validation, make ``run`` the chosen model's
    run, score it on the test split; -> its metrics."""
    if resume:
        raise UserError(f"{run} averages several models (--model auto --top-k): it does not resume")
    started = time.perf_counter()
    if config.data.calendar.strip() == "auto":  # decided once, on the training file, and stored in the run
        config = replace(config, data=cov.resolved(config.data, series.timestamps))
    budget = config.train.max_time  # 0: none, so that the choice never depends on the machine's speed
    deadline = started + budget if budget else float("inf")
    candidates, left_out = plan(config, series)
    levels = config.model.levels
    select = "val_quantile_loss" if levels else "val_mse"
    k = min(config.model.top_k, len(candidates))
    folder = run / "auto"
    table: list[dict[str, Any]] = []
    skipped = [dict(entry, skipped="does not fit") for entry in left_out]
    log(f"auto: {len(candidates)} candidates, chosen by {select} on the validation split; "
        + (f"budget {budget:g} s" if budget else "no time budget (--max-time)"))
    try:
        for i, candidate in enumerate(candidates):
            if i and time.perf_counter() >= deadline:
                skipped += [{"name": c.name, "skipped": "budget"} for c in candidates[i:]]
                sys.stderr.write(f"warning: --model auto: the search's budget of {budget:g} s (--max-time) is "
                                 f"spent; {len(candidates) - i} of {len(candidates)} candidates skipped: the "
                                 f"choice depends on this machine's speed\n")
                break
            begun = time.perf_counter()
            (folder / candidate.name).mkdir(parents=True)
            said: list[str] = []  # what train() would print: its model line, why it stopped
            try:
                _, metrics = fc.train(candidate.config, folder / candidate.name, series, log=said.append,
                                      score_test=False, deadline=deadline)
            except UserError as error:  # a loss that diverged at this recipe's rate: the others go on
                shutil.rmtree(folder / candidate.name, ignore_errors=True)
                skipped.append({"name": candidate.name, "skipped": f"failed: {error}"})
                log(f"auto {i + 1}/{len(candidates)} {candidate.name}: failed: {error}")
                continue
            row = describe(candidate, metrics, time.perf_counter() - begun, cut=DEADLINE_PASSED in said)
            table.append(row)
            log(f"auto {i + 1}/{len(candidates)} {candidate.name}: {select} {row[select]:.4f}, "
                f"{row['steps']} steps, {row['seconds']:.1f} s" + (" (stopped by the budget)" if row["cut"] else ""))
        if not table:
            raise UserError(f"--model auto: every candidate failed; {skipped[-1]['name']}: "
                            f"{skipped[-1]['skipped'].removeprefix('failed: ')}")
        k = min(k, len(table))
        if k < config.model.top_k:  # fewer candidates fit or trained than asked for: said once
            sys.stderr.write(f"warning: --top-k {config.model.top_k}: only {len(table)} candidates trained; "
                             f"the forecast averages {k}\n")
        ranked = sorted(range(len(table)), key=lambda i: (table[i][select], i))[:k]
        by_name = {c.name: c for c in candidates}
        chosen = [by_name[table[i]["name"]] for i in ranked]
        if k == 1:
            metrics = adopt(run, folder / chosen[0].name, config, series)
        else:
            metrics = combine(run, [folder / c.name for c in chosen], config, series)
    except BaseException:  # an error or an interruption: leave nothing half-made
        shutil.rmtree(folder, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    choice = chosen[0].name if k == 1 else "mean of " + ", ".join(c.name for c in chosen)
    budget_cut = any(s["skipped"] == "budget" for s in skipped) or any(row["cut"] for row in table)
    report = {"choice": [c.name for c in chosen],
              "reason": (f"the lowest {select} on the validation split" if k == 1 else
                         f"the {k} lowest {select} on the validation split, their forecasts averaged"),
              "selected_by": select, "top_k": config.model.top_k, "top_k_used": k, "budget_seconds": budget,
              "budget_spent": budget_cut, "seconds": round(time.perf_counter() - started, 2),
              "chosen": [{"name": c.name, "config": to_dict(c.config)} for c in chosen],
              "candidates": table, "skipped": skipped}
    if k > 1:
        report["ensemble"] = {key: value for key, value in metrics.items() if key.startswith("val_")}
    write_json(run / "auto.json", report, indent=2)
    metrics.update(auto_choice=choice, auto_seconds=report["seconds"], auto_budget_spent=budget_cut)
    runs.write_metrics(run, metrics)
    log(f"auto: chose {choice} ({select} {min(row[select] for row in table):.4f} on validation)"
        if k == 1 else f"auto: chose {choice} ({select} {metrics[select]:.4f} on validation)")
    return metrics


def describe(candidate: Candidate, metrics: dict[str, Any], seconds: float, cut: bool) -> dict[str, Any]:
    """One row of the validation table (``cut``: stopped by the search's budget)."""
    c = candidate.config
    return {"name": candidate.name, "arch": c.model.arch, "input_len": c.data.input_len, "lr": c.train.lr,
            **{key: value for key, value in metrics.items() if key.startswith("val_")},
            "steps": metrics["steps"], "best_step": metrics["best_step"], "parameters": metrics["parameters"],
            "seconds": round(seconds, 2), "cut": cut}


def adopt(run: Path, candidate: Path, config: fc.ForecastConfig, series: ts.Series) -> dict[str, Any]:
    """Move the chosen candidate's files into ``run`` (the display settings back to the run's), draw its
    curves, and score it on the test split: -> its metrics, as a direct run of it would have them."""
    for entry in candidate.iterdir():
        os.replace(entry, run / entry.name)
    info = runs.read_run(run)
    info["config"]["train"].update({key: getattr(config.train, key) for key in ("progress", "tensorboard", "curves")})
    runs.write_run(run, fc.TASK, info["config"])
    if config.train.curves:
        from ..viz.curves import VALIDATION_AXES, plot_curves

        select = "val_quantile_loss" if config.model.levels else "val_mse"
        plot_curves({run.name: run}, run / "curves.png", title=f"{run.name}: training",
                    valid=select if select in VALIDATION_AXES else "val_loss")
    forecast = fc.Forecast.load(run, str(resolve_device(config.train.device)))
    metrics = runs.read_json(run / "metrics.json")
    return {**{key: value for key, value in metrics.items() if key.startswith("val_")},
            **score_test(forecast, run, series),
            **{key: value for key, value in metrics.items() if not key.startswith("val_")}}


def combine(run: Path, members: list[Path], config: fc.ForecastConfig, series: ts.Series) -> dict[str, Any]:
    """``run`` as the mean of the ``members`` runs' forecasts (a ``ForecastEnsemble`` checkpoint): its
    config is the run's with ``data.input_len`` the longest member's; -> its validation and test scores."""
    loaded = [fc.Forecast.load(member) for member in members]
    ensemble = fm.ForecastEnsemble.of([f.model for f in loaded]).eval()
    longest = members[max(range(len(members)), key=lambda i: loaded[i].config.data.input_len)]
    tree = to_dict(config)
    tree["data"]["input_len"] = ensemble.config.input_len
    shutil.copyfile(longest / "series.json", run / "series.json")
    runs.write_run(run, fc.TASK, to_dict(build(fc.ForecastConfig, tree)))
    checkpoint.save_checkpoint(run / "checkpoints" / "best", ensemble,
                               {"members": [m.name for m in members]})
    forecast = fc.Forecast.load(run, str(resolve_device(config.train.device)))
    uncalibrated = {}
    if forecast.levels and config.model.calibrate:  # the mean forecast calibrated as a whole
        valid = windows_of(forecast, series, runs.read_json(run / "series.json")["bounds"]["valid"])
        uncalibrated = fc.calibrate(run, forecast.model, valid, forecast.device, forecast.levels, forecast.targets)
    m = [runs.read_json(member / "metrics.json") for member in members]
    return {**scores_on(forecast, run, series, "valid"), **uncalibrated, **score_test(forecast, run, series),
            "arch": "auto", "members": [member.name for member in members],
            "input_len": ensemble.config.input_len, "horizon": config.data.horizon,
            "features": config.data.features, "parameters": sum(x["parameters"] for x in m),
            "train_seconds": round(sum(x["train_seconds"] for x in m), 2)}


def windows_of(forecast: fc.Forecast, series: ts.Series, rows: list[int]) -> ts.Windows:
    d = forecast.config.data
    start, end = rows
    return ts.Windows(forecast.scaler.transform(series.values)[start:end], d.input_len, d.horizon, forecast.future)


def scores_on(forecast: fc.Forecast, run: Path, series: ts.Series, split: str, draw: bool = False) -> dict[str, Any]:
    """The run's errors on the windows of one split (``valid`` or ``test``, the bounds in its
    ``series.json``) as ``val_…`` / ``test_…``; ``draw``: forecast.png from those windows too."""
    bounds = runs.read_json(run / "series.json")["bounds"]
    windows = windows_of(forecast, series, bounds[split])
    if split == "test":  # each calibrated on the windows before it, from the validation split on
        scaled = forecast.scaler.transform(series.values)
        prediction, truth = rolling.scored_windows(forecast.model, forecast.config, scaled, bounds[split],
                                                   forecast.device, forecast.future, since=bounds["valid"][0])
    else:
        prediction, truth = fc.predict_windows(forecast.model, windows, 256, forecast.device)
    if draw:
        fc.draw_pictures(forecast.model, run, windows, prediction, truth, series, forecast.config)
    scores = fc.window_errors(prediction, truth, forecast.targets, forecast.scaler, forecast.levels)
    prefix = "val" if split == "valid" else split
    return {f"{prefix}_{key}": value for key, value in scores.items()}


def score_test(forecast: fc.Forecast, run: Path, series: ts.Series) -> dict[str, Any]:
    """The one reading of the test windows: the chosen model's test scores, and forecast.png."""
    return scores_on(forecast, run, series, "test", draw=True)
