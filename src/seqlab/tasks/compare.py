"""``seqlab compare translate`` and ``seqlab compare lm``: several architectures on the same data and
budget, one table.

The story of seeds 001, 003 and 004 run on your data: a fixed context (simple) -> the context at every
step (context) -> attention over all encoder states (attention) -> convolutions (conv) -> the
Transformer. Writes ``compare.md`` and ``compare.csv`` (parameters, training time, seconds per epoch,
validation perplexity, test perplexity per word, test BLEU and exact match), ``curves.png``, and an
alignment heatmap per model that has one. ``compare lm`` does the same for language models (RNN,
LSTM, GRU, Transformer) on one text file: parameters, tokens/s, validation loss, perplexity and bits
per character.
"""

from __future__ import annotations

from pathlib import Path
import pandas as pd

from ..config import load_config, to_dict
from ..errors import UserError
from ..viz.curves import plot_curves
from . import run_dir as runs
from .demo import make_splits
from .translate import TranslateConfig, load_splits, train
from .translation_models import ARCHITECTURES

LM_ARCHITECTURES = ("rnn", "lstm", "gru", "transformer")
COLUMNS = {"model": "model", "parameters": "parameters", "train_seconds": "train s", "seconds_per_epoch": "s / epoch",
           "epochs": "epochs", "val_perplexity": "val perplexity",
           "word_perplexity": "test perplexity / word", "bleu": "test BLEU", "exact_match": "exact match",
           "tokens_per_s": "tokens / s", "val_loss": "val loss (nats/token)", "val_bits_per_char": "bits / char"}
TRANSLATE_COLUMNS = ["model", "parameters", "train_seconds", "seconds_per_epoch", "epochs", "val_perplexity",
                     "word_perplexity", "bleu", "exact_match"]
LM_COLUMNS = ["model", "parameters", "train_seconds", "tokens_per_s", "val_loss", "val_perplexity",
              "val_bits_per_char"]


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
           "tokens_per_s": "{:,.0f}", "val_loss": "{:.4f}", "val_bits_per_char": "{:.4f}"}


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(COLUMNS[c] for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(FORMATS.get(c, "{}").format(v) for c, v in zip(frame.columns, row)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def write_results(frame: pd.DataFrame, run_dirs: dict[str, Path], out: Path, title: str, log) -> pd.DataFrame:
    """compare.csv, compare.md (the table, also logged) and curves.png of every model's run."""
    frame.to_csv(out / "compare.csv", index=False)
    table = markdown_table(frame)
    (out / "compare.md").write_text(table + "\n")
    plot_curves(run_dirs, out / "curves.png", title=title)
    log("\n" + table)
    return frame


def run_compare(models: list[str], out: Path, overwrite: bool, config: str | None, overrides: list[str],
                use_dates: bool, log=print, n_train: int | None = None) -> pd.DataFrame:
    configs = {arch: load_config(TranslateConfig, config, [*overrides, f"model.arch='{arch}'"]) for arch in models}
    first = configs[models[0]]
    if use_dates:
        splits = make_splits(first.train.seed, **({"n_train": n_train} if n_train else {}))
    else:
        splits = load_splits(first.data, first.train.seed)
    out = runs.create_run_dir(out, overwrite)
    runs.write_run(out, "compare-translate", {"models": models, "config": to_dict(first)})
    example = next((s for s in splits["test" if "test" in splits else "valid"][0] if s.isascii()),
                   splits["valid"][0][0])
    rows, run_dirs = [], {}
    for arch in models:
        log(f"\n== {arch} ==")
        run = out / arch
        run.mkdir()
        translator, result = train(configs[arch], run, splits, log=log)
        m, t = result["metrics"], configs[arch].train
        epochs = m["steps"] * t.batch_size * t.grad_accum / len(splits["train"][0])
        rows.append({"model": arch, "parameters": m["parameters"], "train_seconds": m["train_seconds"],
                     "seconds_per_epoch": m["train_seconds"] / max(epochs, 1e-9), "epochs": round(epochs, 2),
                     "val_perplexity": m["val_perplexity"], "word_perplexity": m["word_perplexity"],
                     "bleu": m["bleu"], "exact_match": m["exact_match"]})
        run_dirs[arch] = run
        translator.alignment_png(example, out / f"alignment-{arch}.png")
        log(f"{arch}: BLEU {m['bleu']:.2f}, exact match {m['exact_match']:.2%}, val perplexity "
            f"{m['val_perplexity']:.3f}, {m['train_seconds']:.0f} s")
    return write_results(pd.DataFrame(rows, columns=TRANSLATE_COLUMNS), run_dirs, out, "seqlab compare translate", log)


def run_compare_lm(models: list[str], out: Path, overwrite: bool, config: str | None, overrides: list[str],
                   log=print) -> pd.DataFrame:
    """Each language model on the same text, tokenizer, context length and budget."""
    from .language_model import LMConfig, train as train_lm

    configs = {arch: load_config(LMConfig, config, [*overrides, f"model.arch='{arch}'"]) for arch in models}
    first = configs[models[0]]
    if first.data.text:
        from ..data.token_stream import count_characters

        count_characters(first.data.text)  # a missing or empty file fails before anything is made
    out = runs.create_run_dir(out, overwrite)
    runs.write_run(out, "compare-lm", {"models": models, "config": to_dict(first)})
    rows, run_dirs = [], {}
    for arch in models:
        log(f"\n== {arch} ==")
        run = out / arch
        run.mkdir()
        _, m = train_lm(configs[arch], run, log=log)
        rows.append({column: m[column] for column in LM_COLUMNS if column != "model"} | {"model": arch})
        run_dirs[arch] = run
        log(f"{arch}: val loss {m['val_loss']:.4f}, {m['val_bits_per_char']:.4f} bits/char, {m['train_seconds']:.0f} s")
    return write_results(pd.DataFrame(rows, columns=LM_COLUMNS), run_dirs, out, "seqlab compare lm", log)
