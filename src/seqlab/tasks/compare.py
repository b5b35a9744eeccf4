"""``seqlab compare translate|lm|classify|forecast``: several architectures on the same data and
budget, one table.

The story of seeds 001, 003 and 004 run on your data: a fixed context (simple) -> the context at every
step (context) -> attention over all encoder states (attention) -> convolutions (conv) -> the
Transformer. Writes ``compare.md`` and ``compare.csv`` (parameters, training time, seconds per epoch,
validation perplexity, test perplexity per word, test BLEU and exact match), ``curves.png``, and an
alignment heatmap per model that has one. ``compare lm`` does the same for language models (RNN,
LSTM, GRU, Transformer) on one text file: parameters, tokens/s, validation loss, perplexity and bits
per character. ``compare classify`` puts the Transformer, BiLSTM and CNN beside the linear baselines on
one labelled CSV (the same split, or the same K folds), ``compare forecast`` every forecaster on one
series (the same windows).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..config import load_config, to_dict
from ..errors import UserError
from ..viz.curves import plot_curves
from . import run_dir as runs
from .demo import make_splits
from .translate import TranslateConfig, load_splits, train
from .translation_models import ARCHITECTURES

LM_ARCHITECTURES = ("rnn", "lstm", "gru", "transformer")
CLASSIFY_ARCHITECTURES = ("transformer", "lstm", "conv1d", "tfidf", "bow", "nbsvm")
FORECAST_ARCHITECTURES = ("transformer", "patch", "lstm", "gru", "conv1d", "linear", "periodic")
COLUMNS = {"model": "model", "parameters": "parameters", "train_seconds": "train s", "seconds_per_epoch": "s / epoch",
           "epochs": "epochs", "val_perplexity": "val perplexity",
           "word_perplexity": "test perplexity / word", "bleu": "test BLEU", "exact_match": "exact match",
           "tokens_per_s": "tokens / s", "val_loss": "val loss (nats/token)", "val_bits_per_char": "bits / char",
           "seconds": "seconds", "test_accuracy": "test accuracy", "test_macro_f1": "test macro-F1",
           "cv_accuracy": "CV accuracy", "cv_accuracy_std": "± std over folds", "cv_macro_f1": "CV macro-F1",
           "test_mse": "test MSE", "test_mae": "test MAE", "test_mse_original": "test MSE (data's units)",
           "test_mae_original": "test MAE (data's units)"}
TRANSLATE_COLUMNS = ["model", "parameters", "train_seconds", "seconds_per_epoch", "epochs", "val_perplexity",
                     "word_perplexity", "bleu", "exact_match"]
LM_COLUMNS = ["model", "parameters", "train_seconds", "tokens_per_s", "val_loss", "val_perplexity",
              "val_bits_per_char"]
CLASSIFY_COLUMNS = ["model", "parameters", "seconds", "test_accuracy", "test_macro_f1"]
CV_COLUMNS = ["model", "parameters", "seconds", "cv_accuracy", "cv_accuracy_std", "cv_macro_f1"]
FORECAST_COLUMNS = ["model", "parameters", "train_seconds", "epochs", "test_mse", "test_mae", "test_mse_original",
                    "test_mae_original"]


def parse_models(text: str, known: tuple[str, ...] = ARCHITECTURES) -> list[str]:
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
    header = "| " + " | ".join(COLUMNS[c] for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(FORMATS.get(c, "{}").format(v) for c, v in zip(frame.columns, row)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


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
    out = runs.create_run_dir(out, overwrite)
    runs.write_run(out, f"compare-{kind}", {"models": models, "config": to_dict(config)})
    return out


def run_compare(models: list[str], out: Path, overwrite: bool, config: str | None, overrides: list[str],
                use_dates: bool, log=print, n_train: int | None = None) -> pd.DataFrame:
    configs = {arch: load_config(TranslateConfig, config, [*overrides, f"model.arch='{arch}'"]) for arch in models}
    first = configs[models[0]]
    if use_dates:
        splits = make_splits(first.train.seed, **({"n_train": n_train} if n_train else {}))
    else:
        splits = load_splits(first.data, first.train.seed)
    out = open_compare_dir(out, overwrite, "translate", models, first)

    def train_one(arch: str, run: Path) -> dict[str, Any]:
        _, result = train(configs[arch], run, splits, log=log)
        m, t = result["metrics"], configs[arch].train
        epochs = m["steps"] * t.batch_size * t.grad_accum / len(splits["train"][0])
        if (run / "cross_attention.png").is_file():  # the same scored sentence for every model that has one
            shutil.copyfile(run / "cross_attention.png", out / f"alignment-{arch}.png")
        log(f"{arch}: BLEU {m['bleu']:.2f}, exact match {m['exact_match']:.2%}, val perplexity "
            f"{m['val_perplexity']:.3f}, {m['train_seconds']:.0f} s")
        return m | {"seconds_per_epoch": m["train_seconds"] / max(epochs, 1e-9), "epochs": round(epochs, 2)}

    frame = train_each(models, out, train_one, TRANSLATE_COLUMNS, log)
    return write_results(frame, {arch: out / arch for arch in models}, out, "seqlab compare translate", log)


def run_compare_lm(models: list[str], out: Path, overwrite: bool, config: str | None, overrides: list[str],
                   log=print) -> pd.DataFrame:
    """Each language model on the same text, tokenizer, context length and budget."""
    from .language_model import LMConfig, train as train_lm

    configs = {arch: load_config(LMConfig, config, [*overrides, f"model.arch='{arch}'"]) for arch in models}
    if configs[models[0]].data.text:
        from ..data.token_stream import count_characters

        count_characters(configs[models[0]].data.text)  # a missing or empty file fails before anything is made
    out = open_compare_dir(out, overwrite, "lm", models, configs[models[0]])

    def train_one(arch: str, run: Path) -> dict[str, Any]:
        _, m = train_lm(configs[arch], run, log=log)
        log(f"{arch}: val loss {m['val_loss']:.4f}, {m['val_bits_per_char']:.4f} bits/char, {m['train_seconds']:.0f} s")
        return m

    frame = train_each(models, out, train_one, LM_COLUMNS, log)
    return write_results(frame, {arch: out / arch for arch in models}, out, "seqlab compare lm", log)


def run_compare_classify(models: list[str], out: Path, overwrite: bool, config: str | None, overrides: list[str],
                         log=print) -> pd.DataFrame:
    """Each classifier on the same labelled texts: the same train/test split, or the same K folds."""
    from ..data.labelled_text import read_labelled
    from .classify import NEURAL, ClassifyConfig, check_class_counts, train as train_classify

    configs = {arch: load_config(ClassifyConfig, config, [*overrides, f"model.arch='{arch}'"]) for arch in models}
    d = configs[models[0]].data
    if not d.csv:
        raise UserError("no data: give --csv FILE with a text and a label column")
    texts, labels = read_labelled(d.csv, d.text_col, d.label_col, d.encoding)
    check_class_counts(labels, d.cv)  # data errors before the directory is made
    out = open_compare_dir(out, overwrite, "classify", models, configs[models[0]])

    def train_one(arch: str, run: Path) -> dict[str, Any]:
        m = train_classify(configs[arch], run, texts, labels, log=log)
        score = f"{m['cv_accuracy']:.2%} CV accuracy" if d.cv else f"{m['test_accuracy']:.2%} test accuracy"
        log(f"{arch}: {score}, {m['seconds']:.0f} s")
        return m

    frame = train_each(models, out, train_one, CV_COLUMNS if d.cv else CLASSIFY_COLUMNS, log)
    curves = {} if d.cv else {arch: out / arch for arch in models if arch in NEURAL}  # linear models have none
    return write_results(frame, curves, out, "seqlab compare classify", log, valid="val_accuracy")


def run_compare_forecast(models: list[str], out: Path, overwrite: bool, config: str | None, overrides: list[str],
                         log=print) -> pd.DataFrame:
    """Each forecaster on the same series, split and windows."""
    from ..data.timeseries import split_bounds
    from .forecast import ForecastConfig, read_series, train as train_forecast

    configs = {arch: load_config(ForecastConfig, config, [*overrides, f"model.arch='{arch}'"]) for arch in models}
    d = configs[models[0]].data
    series = read_series(d)
    split_bounds(len(series.values), d.split, d.input_len, d.horizon)  # data errors before the directory is made
    out = open_compare_dir(out, overwrite, "forecast", models, configs[models[0]])

    def train_one(arch: str, run: Path) -> dict[str, Any]:
        _, m = train_forecast(configs[arch], run, series, log=log)
        log(f"{arch}: test MSE {m['test_mse']:.4f}, MAE {m['test_mae']:.4f} (standardised), {m['train_seconds']:.0f} s")
        return m

    frame = train_each(models, out, train_one, FORECAST_COLUMNS, log)
    return write_results(frame, {arch: out / arch for arch in models}, out, "seqlab compare forecast", log,
                         valid="val_mse")
