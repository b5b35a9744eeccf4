"""Knowledge distillation for text classifiers (Hinton et al., 2015): a linear teacher fitted on the
training texts only, its cross-fitted soft labels, word-dropped copies of the training texts that the
teacher labels (Tang et al., 2019), and the student's loss. ``seqlab.tasks.classify`` trains with them
when ``model.teacher`` is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from ..models.linear_text import LinearTextClassifier

if TYPE_CHECKING:
    from .classify import ClassifyConfig, ClassifyModelConfig


def linear_model(m: ClassifyModelConfig, arch: str) -> LinearTextClassifier:
    """An unfitted linear model of this kind with the config's settings (the model itself, or its teacher)."""
    return LinearTextClassifier(arch, m.word_ngrams, m.char_ngrams, m.C, m.nb_alpha, m.nb_beta)


def drop_words(text: str, p: float, rng: np.random.Generator) -> str:
    """The text with each (space-separated) word left out with probability p, keeping at least one."""
    words = text.split()
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept or words[:1])


def teacher_probabilities(config: ClassifyConfig, texts: list[str], labels: np.ndarray, n_classes: int,
                          variants: list[list[str]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) probabilities of the linear teacher ``model.teacher`` for each training text, each from a
    teacher fitted on the other ``model.teacher_folds`` folds (cross-fitting): a teacher that had seen a
    text would just echo its label, while these soft labels say how sure it is of texts it has not seen.
    Also (N, M, K) for ``variants``, M altered copies of each text (M = 0 without them), each from the
    same teacher as its text."""
    from sklearn.model_selection import StratifiedKFold  # here: importing scikit-learn slows start-up

    m = config.model
    folds, seed = m.teacher_folds, config.train.seed
    if np.bincount(labels, minlength=n_classes).min() < folds:
        raise DataError(f"model.teacher_folds={folds} needs at least {folds} training texts of every class")
    probs = np.zeros((len(texts), n_classes), dtype=np.float32)
    copies = len(variants[0]) if variants else 0
    variant_probs = np.zeros((len(texts), copies, n_classes), dtype=np.float32)
    for fit_rows, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, labels):
        predict = linear_model(m, m.teacher).fit([texts[i] for i in fit_rows], labels[fit_rows]).predict_proba
        probs[held_out] = predict([texts[i] for i in held_out])
        if copies:
            flat = predict([v for i in held_out for v in variants[i]])
            variant_probs[held_out] = flat.reshape(len(held_out), copies, n_classes)
    return probs, variant_probs


def distillation_loss(logits: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor, teacher_weight: float,
                      label_smoothing: float = 0.0) -> torch.Tensor:
    """Knowledge distillation (Hinton et al., 2015, §2, at temperature 1): (1 - w)·CE(logits, labels) +
    w·CE(logits, teacher). logits: (B, K); labels: (B,) class ids; teacher: (B, K) the teacher's
    probabilities. Cross-entropy against the teacher's distribution is the KL divergence to it plus the
    teacher's entropy, a constant."""
    hard = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    return (1 - teacher_weight) * hard + teacher_weight * F.cross_entropy(logits, teacher)
