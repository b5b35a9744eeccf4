"""MR movie-review polarity (Pang & Lee, 2005; 10,662 snippets, Latin-1): 10-fold cross-validation
accuracy of every text classifier, on the same folds, with no externally pre-trained vectors.

    .venv/bin/python benchmarks/mr.py --data ../shared/data/mr [--models tfidf,bow,nbsvm,conv1d,lstm,transformer,...]
        [--folds 10] [--out runs/mr]

transformer-kd, lstm-kd and conv1d-kd are those models distilled from NBSVM: 70 % of the loss follows the
probabilities of an NBSVM teacher fitted, fold by fold, on the same training texts. nbsvm-chars adds word
3-grams and character 2- to 5-grams inside words; transformer-kd-chars and conv1d-kd-chars are
distilled from it; nbsvm-chars-beta also interpolates towards naive Bayes as Wang & Manning do.
--ensembles nbsvm+tfidf+transformer-kd averages those runs' held-out probabilities (same folds).

Published (Kim, 2014): CNN-rand 76.1, CNN-non-static with GoogleNews word2vec 81.5; NBSVM 79.4.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from seqlab.config import load_config
from seqlab.data.text import read_lines
from seqlab.tasks import run_dir as runs
from seqlab.tasks.classify import ClassifyConfig, train

# fp32: the recorded rows trained in it (the default before precision "auto"), so they reproduce
COMMON = ["train.progress=false", "train.tensorboard=false", "train.precision='fp32'"]
SETTINGS = {
    "tfidf": ["model.C=8.0"],
    "bow": ["model.C=0.5"],
    "nbsvm": ["model.C=1.0", "model.nb_alpha=1.0"],
    "conv1d": ["model.d_model=128", "model.n_filters=100", "model.dropout=0.5", "model.embeddings='skipgram'",
               "model.word2vec_epochs=20", "train.lr=1e-3", "train.batch_size=50", "train.max_steps=1500",
               "train.eval_every=100", "train.weight_decay=0.0"],
    "lstm": ["model.d_model=128", "model.hidden_size=128", "model.dropout=0.5", "model.embeddings='skipgram'",
             "model.word2vec_epochs=20", "train.lr=1e-3", "train.batch_size=50", "train.max_steps=1000",
             "train.eval_every=100"],
    "transformer": ["model.d_model=128", "model.n_heads=4", "model.n_layers=2", "model.d_ff=256",
                    "model.dropout=0.3", "model.embeddings='skipgram'", "model.word2vec_epochs=20",
                    "train.lr=5e-4", "train.batch_size=50", "train.max_steps=1000", "train.eval_every=100"],
}
# Distilled from NBSVM; the teacher's soft labels regularise enough that the Transformer can be wider
# with less dropout (plain, that width did no better).
DISTILLED = ["model.teacher='nbsvm'", "model.C=1.0", "model.teacher_weight=0.7"]
# The Transformer also learns from four word-dropped copies of each training text, labelled by the teacher.
SETTINGS["transformer-kd"] = [*SETTINGS["transformer"], *DISTILLED, "model.d_model=256", "model.dropout=0.1",
                              "model.augment_copies=4", "train.max_steps=1500"]
SETTINGS["lstm-kd"] = [*SETTINGS["lstm"], *DISTILLED]
SETTINGS["conv1d-kd"] = [*SETTINGS["conv1d"], *DISTILLED, "model.augment_copies=4"]
# Word 1- to 3-grams and character 2- to 5-grams; C chosen on two other 10-fold splits (seeds 1 and 2).
SETTINGS["nbsvm-chars"] = ["model.C=0.25", "model.nb_alpha=1.0", "model.word_ngrams=3", "model.char_ngrams=5"]
# The same with Wang & Manning's interpolation (β = 0.25, theirs; C chosen on seeds 1 and 2 as well).
SETTINGS["nbsvm-chars-beta"] = ["model.C=1.0", "model.nb_alpha=1.0", "model.word_ngrams=3", "model.char_ngrams=5",
                                "model.nb_beta=0.25"]
for student in ("transformer-kd", "conv1d-kd"):
    SETTINGS[f"{student}-chars"] = [*SETTINGS[student], *SETTINGS["nbsvm-chars"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with rt-polarity.pos and rt-polarity.neg")
    parser.add_argument("--models", default="tfidf,bow,nbsvm,conv1d,lstm,transformer")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/mr"))
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--ensembles", default="", help="e.g. nbsvm+transformer-kd: the mean of those models' "
                        "held-out probabilities (from their runs under --out, this or an earlier call)")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    if unknown := [m for m in models if m not in SETTINGS]:
        parser.error(f"unknown model {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    missing = [m for e in args.ensembles.split(",") if e for m in e.split("+")
               if m not in models and not (args.out / m / "cv_probabilities.npy").is_file()]
    if missing:
        parser.error(f"no cross-validated run of {', '.join(missing)} under {args.out}: add them to --models")
    texts, labels = read_mr(args.data)
    print(f"MR: {len(texts):,} snippets; {args.folds}-fold cross-validation accuracy (same folds for every model)\n")
    print("| model | accuracy | ± std over folds | macro-F1 | seconds |\n|---|---|---|---|---|")
    for arch in models:
        overrides = [*COMMON, *SETTINGS[arch], f"model.arch='{arch.split('-')[0]}'", f"data.cv={args.folds}"]
        config = load_config(ClassifyConfig, None, [*overrides, *args.set])
        run = runs.create_run_dir(args.out / arch, overwrite=True)
        m = train(config, run, texts, labels, log=lambda *_: None)
        print(f"| {arch} | {100 * m['cv_accuracy']:.2f} | {100 * m['cv_accuracy_std']:.2f} | "
              f"{100 * m['cv_macro_f1']:.2f} | {m['seconds']:.0f} |", flush=True)
    seed = load_config(ClassifyConfig, None, [o for o in args.set if o.startswith("train.")]).train.seed
    for ensemble in filter(None, args.ensembles.split(",")):
        print(ensemble_row(ensemble, args.out, np.array([name == "pos" for name in labels]), args.folds, seed))


def read_mr(folder: Path) -> tuple[list[str], list[str]]:
    """MR's snippets, the positive ones first, and their labels ("pos", "neg")."""
    texts, labels = [], []
    for name in ("pos", "neg"):
        lines = read_lines(folder / f"rt-polarity.{name}", encoding="latin-1")
        texts += lines
        labels += [name] * len(lines)
    return texts, labels


def ensemble_row(ensemble: str, out: Path, truth: np.ndarray, folds: int, seed: int) -> str:
    """Each text scored by the mean of the members' probabilities, every member's from the same fold
    (the folds depend on the seed only), so the ensemble is cross-validated on the same folds."""
    probs = np.mean([np.load(out / member / "cv_probabilities.npy") for member in ensemble.split("+")], axis=0)
    correct = probs.argmax(-1) == truth  # classes sorted: neg = 0, pos = 1
    accuracies = [correct[rows].mean() for _, rows in StratifiedKFold(folds, shuffle=True, random_state=seed)
                  .split(truth, truth)]
    return (f"| {ensemble} (mean of probabilities) | {100 * statistics.mean(accuracies):.2f} | "
            f"{100 * statistics.stdev(accuracies):.2f} | — | — |")


if __name__ == "__main__":
    main()
