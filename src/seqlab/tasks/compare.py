"""``seqlab compare translate|lm|classify|forecast``: several architectures on the same data and
budget, one table.

The lineage run on your data: a fixed context (simple; Sutskever et al. 2014) -> the context at every
step (context; Cho et al. 2014) -> attention over all encoder states (attention; Bahdanau et al. 2015,
Luong et al. 2015) -> convolutions (conv; Gehring et al. 2017) -> the Transformer (Vaswani et al. 2017). Writes ``compare.md`` and ``compare.csv`` (parameters, training time, seconds per epoch,
validation perplexity, then perplexity per word, BLEU and exact match on the split a ``scored on``
column names: the test split, or the validation split when no test files are given), ``curves.png``, and an
alignment heatmap per model that has one. ``compare lm`` does the same for language models (RNN,
LSTM, GRU, Transformer) on one text (a file, a folder or a glob pattern): parameters, tokens/s,
validation loss, perplexity and bits per character. ``compare classify`` puts the Transformer, BiLSTM and CNN beside the linear baselines on
one labelled CSV (the same split, or the same K folds), ``compare forecast`` every forecaster on one
series (the same windows).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .. import tables
from ..config import absolute_paths, input_paths, load_config, to_dict
from ..errors import UserError
from ..viz.curves import plot_curves
from . import run_dir as runs
from .task import Task

COLUMNS = {"model": "model", "parameters": "parameters", "train_seconds": "train s", "seconds_per_epoch": "s / epoch",
           "epochs": "epochs", "val_perplexity": "val perplexity",
           "scored_split": "scored on", "word_perplexity": "perplexity / word", "bleu": "BLEU",
           "exact_match": "exact match",
           "tokens_per_s": "tokens / s", "val_loss": "val loss (nats/token)", "val_bits_per_char": "bits / char",
           "seconds": "seconds", "test_accuracy": "test accuracy", "test_macro_f1": "test macro-F1",
           "cv_accuracy": "CV accuracy", "cv_accuracy_std": "± std over folds", "cv_macro_f1": "CV macro-F1",
           "test_mse": "test MSE", "test_mae": "test MAE", "test_mse_original": "test MSE (data's units)",
           "test_mae_original": "test MAE (data's units)"}


def parse_models(text: str, known: tuple[str, ...]) -> list[str]:
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in known]
    if unknown or not models:
        raise UserError(f"unknown model kind {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}")
    if len(set(models)) != len(models):
        raise UserError("each model kind may appear once in --models")
    return models


FORMATS = {"parameters": "{:,}", "train_seconds": "{:.1f}", "seconds_per_epoch": "{:.1f}", "epochs": "{:.2f}",
           "val_perplexity": "{:.4f}", "word_perplexity": "{:.2f}", "bleu": "{:.2f}", "exact_match": "{:.2%}",
           "tokens_per_s": "{:,.0f}", "val_loss": "{:.4f}", "val_bits_per_char": "{:.4f}", "seconds": "{:.1f}",
           "test_accuracy": "{:.2%}", "test_macro_f1": "{:.2%}", "cv_accuracy": "{:.2%}", "cv_accuracy_std": "{:.2%}",
           "cv_macro_f1": "{:.2%}", "test_mse": "{:.4f}", "test_mae": "{:.4f}", "test_mse_original": "{:.4g}",
           "test_mae_original": "{:.4g}"}


def markdown_table(frame: pd.DataFrame) -> str:
    """The frame as a Markdown table, its columns lined up on screen (:mod:`seqlab.tables`)."""
    header = [COLUMNS.get(c, c.replace("_", " ")) for c in frame.columns]
    body = [[FORMATS.get(c, "{}").format(v) for c, v in zip(frame.columns, row)]
            for row in frame.itertuples(index=False)]
    return tables.markdown_table(header, body)


def write_results(frame: pd.DataFrame, run_dirs: dict[str, Path], out: Path, title: str, log,
                  valid: str = "val_loss") -> pd.DataFrame:
    """compare.csv, compare.md (the table, also logged) and curves.png of the runs that have curves."""
    frame.to_csv(out / "compare.csv", index=False)
    table = markdown_table(frame)
    (out / "compare.md").write_text(table + "\n")
    if run_dirs:
        plot_curves(run_dirs, out / "curves.png", title=title, valid=valid)
    log("\n" + table)
    return frame


def train_each(models: list[str], out: Path, train_one: Callable[[str, Path], dict[str, Any]], columns: list[str],
               log) -> pd.DataFrame:
    """Train every model in out/ARCH (``train_one(arch, run)`` -> its figures); -> one row of ``columns`` each."""
    rows = []
    for arch in models:
        log(f"\n== {arch} ==")
        (out / arch).mkdir()
        figures = train_one(arch, out / arch)
        rows.append({"model": arch} | {column: figures[column] for column in columns if column != "model"})
    return pd.DataFrame(rows, columns=columns)


def open_compare_dir(out: Path, overwrite: bool, kind: str, models: list[str], config) -> Path:
    out = runs.create_run_dir(out, overwrite, input_paths(config))
    runs.write_run(out, f"compare-{kind}", {"models": models, "config": to_dict(config)})
    return out


def run_compare(task: Task, models: list[str], out: Path, overwrite: bool, config: str | None,
                overrides: list[str], options: dict[str, Any] | None = None, log=print) -> pd.DataFrame:
    """Train each of ``models`` (``model.arch`` values of ``task``) on the same data and budget into
    ``out/ARCH``; write the table and the curves. ``options``: the task's own compare flags."""
    configs = {arch: load_config(task.config_class, config, [*overrides, f"model.arch='{arch}'"]) for arch in models}
    first = configs[models[0]]
    runs.check_not_paused(first, "seqlab compare")
    data = task.compare_data(first, options or {})  # data errors before the directory is made
    for arch in models:  # and every model's own checks, so that a later one cannot fail on them
        task.check_new_run(configs[arch])
    # after reading, so that errors name the paths as given; each model's run.json then resumes from anywhere
    configs = {arch: absolute_paths(c) for arch, c in configs.items()}
    first = configs[models[0]]
    out = open_compare_dir(out, overwrite, task.name, models, first)

    def train_one(arch: str, run: Path) -> dict[str, Any]:
        metrics = task.train(configs[arch], run, data, log=log)
        if (run / "cross_attention.png").is_file():  # the same scored sentence for every model that has one
            shutil.copyfile(run / "cross_attention.png", out / f"alignment-{arch}.png")
        log(f"{arch}: {task.summary(configs[arch], metrics)}")
        return task.compare_row(configs[arch], data, run, metrics)

    with runs.filling(out):  # a model that failed, or Ctrl-C: no table, so nothing half-made stays
        frame = train_each(models, out, train_one, task.compare_columns(first), log)
    curves = {arch: out / arch for arch in models if task.has_curves(configs[arch])}
    return write_results(frame, curves, out, f"seqlab compare {task.name}", log, valid=task.validation_metric)
