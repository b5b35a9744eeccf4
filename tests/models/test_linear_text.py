"""The linear text classifiers: equal to scikit-learn's own pipeline (TF-IDF / binary n-grams + logistic
regression, and NBSVM written as logistic regression on ratio-scaled features), the log-count ratio, the
n-gram ranges, and a save/load round trip that predicts the same."""

import json
import random
import warnings

import numpy as np
import pytest
from scipy.sparse import csr_matrix, hstack
from sklearn.linear_model import LogisticRegression

from seqlab.models.linear_text import LinearTextClassifier, nb_log_count_ratio, ngram_vectorizers


def corpus(n_classes: int, n: int = 90):
    rng = random.Random(n_classes)
    cues = [["great", "superb", "moving"], ["awful", "dull", "boring"], ["odd", "strange", "weird"]][:n_classes]
    neutral = "the a film story plot cast was is and".split()
    labels = [i % n_classes for i in range(n)]
    texts = [" ".join(rng.sample(neutral, 3) + [rng.choice(cues[k]), rng.choice(cues[rng.randrange(n_classes)])])
             for k in labels]
    return texts, np.array(labels)


def test_nb_log_count_ratio():
    counts = csr_matrix(np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]]))
    is_class = np.array([True, True, False])
    p, q = np.array([3.0, 2.0, 2.0]), np.array([1.0, 2.0, 2.0])  # alpha 1 + column sums in / out
    np.testing.assert_allclose(nb_log_count_ratio(counts, is_class, 1.0), np.log(p / p.sum()) - np.log(q / q.sum()))


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("arch, beta", [("tfidf", 1.0), ("bow", 1.0), ("nbsvm", 1.0), ("nbsvm", 0.25)])
def test_probabilities_equal_scikit_learns(arch, beta, n_classes):
    """What the classifier keeps (one weight row per scorer, the NB ratio folded in) predicts exactly
    what scikit-learn's fitted models predict on the features themselves — for NBSVM with Wang &
    Manning's interpolation, what the interpolated weights score."""
    texts, labels = corpus(n_classes)
    new = ["a superb film", "the plot was dull and odd", "weird cast", "unseen words only"]
    model = LinearTextClassifier(arch, char_ngrams=4, C=2.0, nb_beta=beta).fit(texts, labels)
    vectorizers = ngram_vectorizers(arch, 2, 4)
    x = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
    x_new = hstack([v.transform(new) for v in vectorizers]).tocsr()
    if arch != "nbsvm":
        expected = LogisticRegression(C=2.0, max_iter=2000).fit(x, labels).predict_proba(x_new)
    else:  # NBSVM as Wang & Manning write it: features scaled by the ratio, then a linear model per class
        scores = []
        for c in range(n_classes) if n_classes > 2 else [1]:
            r = nb_log_count_ratio(x, labels == c, 1.0)
            fitted = LogisticRegression(C=2.0, max_iter=2000).fit(x.multiply(r).tocsr(), labels == c)
            if beta == 1:
                scores.append(fitted.predict_proba(x_new.multiply(r).tocsr())[:, 1])
            else:
                w = (1 - beta) * np.abs(fitted.coef_[0]).mean() + beta * fitted.coef_[0]
                scores.append(1 / (1 + np.exp(-(x_new.multiply(r).tocsr() @ w + fitted.intercept_[0]))))
        scores = np.stack(scores, axis=1)
        expected = np.hstack([1 - scores, scores]) if n_classes == 2 else scores / scores.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(new), expected, rtol=1e-10, atol=1e-12)
    assert (model.predict_proba(texts).argmax(1) == labels).mean() > 0.9


@pytest.mark.parametrize("arch", ["tfidf", "bow", "nbsvm"])
def test_save_and_load_predict_the_same(tmp_path, arch):
    texts, labels = corpus(3)
    names = np.array(["neg", "odd", "pos"])[labels]  # string classes survive the JSON too
    model = LinearTextClassifier(arch, word_ngrams=3, char_ngrams=5, nb_beta=0.25).fit(texts, names)
    model.save_pretrained(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["linear_model.json", "linear_model.safetensors"]
    loaded = LinearTextClassifier.from_pretrained(tmp_path / "run")
    new = ["a superb film", "strange and dull", "nothing known here", "x"]
    assert loaded.classes == ["neg", "odd", "pos"]
    np.testing.assert_array_equal(loaded.predict_proba(new), model.predict_proba(new))
    np.testing.assert_allclose(loaded.predict_proba(new).sum(axis=1), 1.0)


def test_word_and_character_ngram_ranges():
    for n in (1, 2, 3):
        words, = ngram_vectorizers("nbsvm", word_ngrams=n)
        features = words.fit(["not a good film ."]).get_feature_names_out()
        assert max(len(f.split()) for f in features) == n and "." in features
    _, chars = ngram_vectorizers("tfidf", char_ngrams=3)
    features = set(chars.fit(["good"]).get_feature_names_out())
    assert {"go", "goo", "od "} <= features and not any(len(f) > 3 or len(f) < 2 for f in features)


def test_default_features_by_hand():
    """Word 1- and 2-grams by default; bow and nbsvm count an n-gram once however often it occurs;
    tfidf weighs 1 + ln(count) by scikit-learn's smoothed idf ln((1 + N) / (1 + df)) + 1, rows of unit
    length."""
    docs = ["a a a b", "b c"]
    for arch in ("bow", "nbsvm"):
        words, = ngram_vectorizers(arch)
        x = words.fit_transform(docs)
        assert words.get_feature_names_out().tolist() == ["a", "a a", "a b", "b", "b c", "c"]
        np.testing.assert_array_equal(x.toarray(), [[1, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]])
    words, = ngram_vectorizers("tfidf", word_ngrams=1)
    x = words.fit_transform(docs).toarray()
    idf_once, idf_twice = np.log(3 / 2) + 1, 1.0
    row = np.array([(1 + np.log(3)) * idf_once, idf_twice, 0.0])  # a three times, b once, no c
    np.testing.assert_allclose(x[0], row / np.linalg.norm(row))
    row = np.array([0.0, idf_twice, idf_once])
    np.testing.assert_allclose(x[1], row / np.linalg.norm(row))


def test_vocabularies_must_match_the_vectorizers():
    with pytest.raises(ValueError):
        ngram_vectorizers("bow", char_ngrams=0, vocabularies=[["a"], ["ab"]])
    with pytest.raises(ValueError):
        ngram_vectorizers("bow", char_ngrams=3, vocabularies=[["a"]])


def test_a_slowly_converging_fit_is_fitted_to_the_end():
    """Labels by coin toss over a few overlapping n-grams, and a weak penalty: lbfgs needs over a hundred
    iterations (scikit-learn's default stops at 100 with a warning); the fit runs to convergence and
    equals scikit-learn's given all the iterations it wants."""
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice([f"w{i}" for i in range(8)], 3)) for _ in range(200)]
    labels = rng.integers(0, 2, 200)
    vectorizers = ngram_vectorizers("bow", 2, 4)
    x = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
    reference = LogisticRegression(C=1e4, max_iter=100_000).fit(x, labels)
    assert reference.n_iter_[0] > 100  # the premise
    r = nb_log_count_ratio(x, labels == 1, 1.0)
    assert LogisticRegression(C=1e4, max_iter=100_000).fit(x.multiply(r).tocsr(), labels == 1).n_iter_[0] > 100
    for arch in ("bow", "nbsvm"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = LinearTextClassifier(arch, char_ngrams=4, C=1e4).fit(texts, labels)
        if arch == "bow":
            np.testing.assert_allclose(model.predict_proba(texts), reference.predict_proba(x), rtol=1e-9, atol=1e-12)


def test_saving_makes_missing_folders_and_overwrites_a_run(tmp_path):
    texts, labels = corpus(2)
    model = LinearTextClassifier("bow").fit(texts, labels)
    model.save_pretrained(tmp_path / "a" / "b")
    model.save_pretrained(tmp_path / "a" / "b")  # again, into the folder that is now there
    np.testing.assert_array_equal(LinearTextClassifier.from_pretrained(tmp_path / "a" / "b").predict_proba(texts),
                                  model.predict_proba(texts))


def test_a_config_without_vocabularies_is_a_damaged_file(tmp_path):
    from seqlab.errors import DamagedFileError

    texts, labels = corpus(2)
    LinearTextClassifier("bow").fit(texts, labels).save_pretrained(tmp_path)
    config = tmp_path / "linear_model.json"
    settings = json.loads(config.read_text())
    del settings["vocabularies"]
    config.write_text(json.dumps(settings))
    with pytest.raises(DamagedFileError, match=r"linear_model\.json is damaged \(no vocabularies\)") as error:
        LinearTextClassifier.from_pretrained(tmp_path)
    assert error.value.path == config
    config.write_text("[1, 2]")
    with pytest.raises(DamagedFileError, match="no vocabularies"):
        LinearTextClassifier.from_pretrained(tmp_path)
