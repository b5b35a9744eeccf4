"""Linear text classifiers over n-grams (Joachims 1998; Wang & Manning 2012), the baselines beside the
neural ones: logistic regression on TF-IDF ("tfidf") or present/absent ("bow") n-grams, and NBSVM
("nbsvm"; Wang & Manning, 2012), whose present/absent n-grams are first scaled by how much more often
they occur in a class than outside it.

scikit-learn counts the n-grams and fits the regressions. What is kept is what a prediction needs — the
vocabularies (JSON) and one weight row per scorer (safetensors) — so that a run is saved and loaded like
the neural models, without pickle:

    model = LinearTextClassifier("nbsvm", char_ngrams=5).fit(texts, labels)
    model.save_pretrained("runs/reviews")
    LinearTextClassifier.from_pretrained("runs/reviews").predict_proba(["a gripping film"])  # (1, K)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from ..io import atomic_write

TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]"  # words, and each punctuation mark as a word of its own
CONFIG_FILE, WEIGHTS_FILE = "linear_model.json", "linear_model.safetensors"
SETTINGS = ("arch", "word_ngrams", "char_ngrams", "C", "nb_alpha", "nb_beta", "classes")  # saved as JSON


def ngram_vectorizers(arch: str, word_ngrams: int = 2, char_ngrams: int = 0,
                      vocabularies: list[list[str]] | None = None) -> list:
    """Word 1- to word_ngrams-grams and, unless char_ngrams is 0, character 2- to char_ngrams-grams
    inside words (they share stems: "gripping", "grip"): TF-IDF for tfidf, else present/absent."""
    # scikit-learn and SciPy are imported where used in this module: importing them takes most of a
    # second, which every seqlab command would pay at start-up (the task registry imports this module).
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    if arch == "tfidf":
        kind, options = TfidfVectorizer, {"sublinear_tf": True}
    else:
        kind, options = CountVectorizer, {"binary": True}
    settings = [{"ngram_range": (1, word_ngrams), "token_pattern": TOKEN_PATTERN}]
    if char_ngrams:
        settings.append({"analyzer": "char_wb", "ngram_range": (2, char_ngrams)})
    if vocabularies is not None:
        settings = [{**s, "vocabulary": v} for s, v in zip(settings, vocabularies, strict=True)]
    return [kind(**s, **options) for s in settings]


def nb_log_count_ratio(features, is_class: np.ndarray, alpha: float) -> np.ndarray:
    """r = log((p / ‖p‖₁) / (q / ‖q‖₁)), p and q the smoothed feature counts inside and outside the class
    (Wang & Manning, 2012): how much more often each n-gram occurs in the class than elsewhere."""
    p = alpha + np.asarray(features[is_class].sum(axis=0)).ravel()
    q = alpha + np.asarray(features[~is_class].sum(axis=0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


@dataclass
class LinearTextClassifier:
    arch: str  # "tfidf", "bow" or "nbsvm"
    word_ngrams: int = 2
    char_ngrams: int = 0
    C: float = 4.0  # inverse regularisation of the logistic regression
    nb_alpha: float = 1.0  # nbsvm: smoothing of the counts in the log-count ratio
    # nbsvm: Wang & Manning's interpolation w' = (1 - β)·mean|w| + β·w of each regression's weights: β = 1
    # keeps the regression, smaller β leans towards naive Bayes (the ratios' sum); they use 0.25.
    nb_beta: float = 1.0
    classes: list = field(default_factory=list)
    # Fitted: the vectorizers, and the scores z = x · weights[m] + bias[m], one row m per scorer: one for
    # two classes; for more, one a class, combined by a softmax (logistic regression, multinomial) or,
    # for nbsvm's one-against-the-rest scorers, by normalising their sigmoids.
    vectorizers: list = field(default_factory=list, repr=False)
    weights: np.ndarray | None = field(default=None, repr=False)  # (M, F)
    bias: np.ndarray | None = field(default=None, repr=False)  # (M,)

    def features(self, texts: list[str]):
        from scipy.sparse import hstack

        return hstack([v.transform(texts) for v in self.vectorizers]).tocsr()  # (N, F), sparse

    def fit(self, texts: list[str], labels) -> LinearTextClassifier:
        from scipy.sparse import hstack
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels)
        self.classes = np.unique(labels).tolist()
        self.vectorizers = ngram_vectorizers(self.arch, self.word_ngrams, self.char_ngrams)
        x = hstack([v.fit_transform(texts) for v in self.vectorizers]).tocsr()
        if self.arch != "nbsvm":
            model = LogisticRegression(C=self.C, max_iter=2000).fit(x, labels)
            self.weights, self.bias = model.coef_, model.intercept_
            return self
        rows, biases = [], []
        for c in self.classes if len(self.classes) > 2 else self.classes[1:]:
            r = nb_log_count_ratio(x, labels == c, self.nb_alpha)
            model = LogisticRegression(C=self.C, max_iter=2000).fit(x.multiply(r).tocsr(), labels == c)
            w = model.coef_[0]
            w = (1 - self.nb_beta) * np.abs(w).mean() + self.nb_beta * w
            rows.append(r * w)  # (x ⊙ r) · w = x · (r ⊙ w): the ratio folds into the weights
            biases.append(model.intercept_[0])
        self.weights, self.bias = np.stack(rows), np.asarray(biases)
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(N, K) class probabilities, columns in the order of ``classes``."""
        from scipy.special import expit, softmax

        z = np.asarray(self.features(texts) @ self.weights.T) + self.bias  # (N, M)
        if len(self.classes) == 2:
            p = expit(z)
            return np.concatenate([1 - p, p], axis=1)
        if self.arch != "nbsvm":
            return softmax(z, axis=1)
        scores = expit(z)
        return scores / scores.sum(axis=1, keepdims=True)

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        settings = {name: getattr(self, name) for name in SETTINGS}
        vocabularies = [v.get_feature_names_out().tolist() for v in self.vectorizers]
        config = json.dumps({**settings, "vocabularies": vocabularies})
        atomic_write(directory / CONFIG_FILE, lambda path: path.write_text(config))
        tensors = {"weights": self.weights, "bias": self.bias}
        if self.arch == "tfidf":
            tensors.update({f"idf.{i}": v.idf_ for i, v in enumerate(self.vectorizers)})
        # safetensors writes an array's memory as it lies: a strided view (scikit-learn's coef_ can be
        # one) would be saved scrambled.
        tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        atomic_write(directory / WEIGHTS_FILE, lambda path: save_file(tensors, str(path)))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> LinearTextClassifier:
        from ..errors import DamagedFileError
        from ..io import check_safetensors, read_json_file

        directory = Path(directory)
        settings: dict[str, Any] = read_json_file(directory / CONFIG_FILE)
        if not isinstance(settings, dict) or "vocabularies" not in settings:
            raise DamagedFileError(directory / CONFIG_FILE, "no vocabularies")
        vocabularies = settings.pop("vocabularies")
        tensors = load_file(str(check_safetensors(directory / WEIGHTS_FILE)))
        model = cls(**settings, weights=tensors["weights"], bias=tensors["bias"])
        model.vectorizers = ngram_vectorizers(model.arch, model.word_ngrams, model.char_ngrams, vocabularies)
        if model.arch == "tfidf":
            for i, vectorizer in enumerate(model.vectorizers):
                vectorizer.idf_ = tensors[f"idf.{i}"]
        return model
