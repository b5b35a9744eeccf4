"""Scores shared by the classification tasks (text and images): labels of new data mapped onto a
trained run's classes, accuracy and macro-F1, and precision, recall and F1 for each class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError


def class_indices(names: list[str], classes: list[str], source: str | Path) -> list[int]:
    """Labels of new data -> the run's class indices; a label the run never learned is a DataError."""
    if unknown := sorted(set(names) - set(classes)):
        raise DataError(f"{source} has labels the run was not trained on: {', '.join(map(repr, unknown[:5]))}"
                        f"{' …' if len(unknown) > 5 else ''} (its classes: {', '.join(classes)})")
    return [classes.index(name) for name in names]


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score  # here, not at the top: it would slow every command's start-up

    return {"accuracy": float((truth == predicted).mean()),
            "macro_f1": float(f1_score(truth, predicted, average="macro"))}


def scores_by_class(truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """``scores`` and, under ``per_class``, each class's precision, recall, F1 and support (how many of
    the scored examples are that class; a class with none scores 0)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=range(len(classes)),
                                                                     zero_division=0)
    per_class = {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for name, p, r, f, s in zip(classes, precision, recall, f1, support)}
    return {**scores(truth, predicted), "per_class": per_class}


def ranked_line(source: str, probabilities: dict[str, float]) -> str:
    """``source<TAB>best p  next p …``: what ``seqlab predict`` prints for one input."""
    ranked = sorted(probabilities.items(), key=lambda item: -item[1])
    return f"{source}\t" + "  ".join(f"{name} {p:.3f}" for name, p in ranked)
