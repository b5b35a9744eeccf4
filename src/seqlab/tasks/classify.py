"""Text classification: an encoder Transformer, a BiLSTM or a CNN over words, or a linear model over
n-grams (TF-IDF / bag-of-words + logistic regression, NBSVM, Wang & Manning 2012: the statistical baselines), on a
CSV or TSV. Every single-split run keeps its model, so ``seqlab predict`` scores new texts with any of them.

    seqlab train classify --csv reviews.csv --text-col text --label-col label --model transformer [--cv 10]
    seqlab predict RUN_DIR "a gripping, beautifully acted film"
    seqlab eval RUN_DIR --csv new_reviews.csv     # accuracy and macro-F1 on new labelled text
    seqlab train classify --csv reviews.csv --init MLM_RUN   # fine-tune a masked LM's encoder (classify_init)
    seqlab train classify --csv reviews.csv --init LM_RUN    # or a causal LM's layers, GPT-style

One split (``data.test_fraction``) gives ``test_accuracy``, ``test_macro_f1`` and ``confusion.png``;
``--cv K`` gives stratified K-fold ``cv_accuracy`` (mean and per fold) instead, and each text's
probabilities from the fold that held it out in ``cv_probabilities.npy`` (to ensemble runs).

A neural model can learn from a linear teacher as well as from the labels (``--set model.teacher=nbsvm``):
knowledge distillation (Hinton et al., 2015) with the teacher fitted on the same training texts only.
``model.augment_copies`` adds altered copies of the training texts (words dropped at random) that the
teacher labels, so the student sees the teacher's judgement on more texts than the labelled ones
(Tang et al., 2019).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import build, to_dict
from ..data import word_vectors
from ..data.batching import ShuffledBatches, pad
from ..data.labelled_text import read_labelled
from ..data.tokenizer import PAD_ID, encode_all, load_tokenizer, save_tokenizer, train_tokenizer
from ..data.text import text_start
from ..errors import DataError, UserError
from ..models import classifiers
from ..models.linear_text import CONFIG_FILE as LINEAR_CONFIG_FILE
from ..models.linear_text import LinearTextClassifier
from ..parallel.runtime import SingleProcess
from ..train.loop import Trainer
from ..train.optim import scale_lr
from . import classify_init, run_dir as runs, views
from .class_scores import class_indices, ranked_line, scores, scores_by_class
from .classify_config import NEURAL, ClassifyConfig, ClassifyModelConfig, one_process_only
from .distill import distillation_loss, drop_words, linear_model, teacher_probabilities
from .init_run import too_long_hint
from .task import Flag, Task, register

TASK = "classify"
# --- scikit-learn baselines ---------------------------------------------------------------------

def fit_linear(config: ClassifyConfig, texts: list[str], labels: np.ndarray) -> LinearTextClassifier:
    return linear_model(config.model, config.model.arch).fit(texts, labels)


# --- neural models --------------------------------------------------------------------------------

def build_classifier(c: ClassifyModelConfig, vocab_size: int, n_classes: int, max_len: int,
                     pretrained: classify_init.Pretrained | None = None):
    """The network ``c`` describes; from ``pretrained``, a Transformer that reads the ids as its body
    was trained to (pooling the tokenizer's [CLS], or causally the last token) and whose position table
    is the body's (``max_len``)."""
    if c.arch == "transformer":
        reading = pretrained.source.classifier if pretrained else {"pool": c.pool}
        if pretrained:  # the body's LayerNorm ε, as it was trained
            reading = {**reading, "layer_norm_eps": getattr(pretrained.model.config, "layer_norm_eps", 1e-5)}
        return classifiers.TransformerClassifier(classifiers.TransformerClassifierConfig(
            vocab_size, n_classes, d_model=c.d_model, n_heads=c.n_heads, n_layers=c.n_layers, d_ff=c.d_ff,
            dropout=c.dropout, max_len=max_len, pad_id=PAD_ID, positional=c.positional,
            max_relative_position=c.max_relative_position, norm_first=c.norm_first, activation=c.activation,
            pooler=c.pooler, **reading))
    if c.arch == "lstm":
        return classifiers.LSTMClassifier(classifiers.LSTMClassifierConfig(
            vocab_size, n_classes, d_model=c.d_model, hidden_size=c.hidden_size, n_layers=1, dropout=c.dropout,
            pad_id=PAD_ID))
    return classifiers.ConvClassifier(classifiers.ConvClassifierConfig(
        vocab_size, n_classes, d_model=c.d_model, widths=tuple(c.widths), n_filters=c.n_filters, dropout=c.dropout,
        pad_id=PAD_ID))


def start_model(config: ClassifyConfig, vocab_size: int, n_classes: int,
                pretrained: classify_init.Pretrained | None = None):
    """The network before its first step, the same for every run (and fold) of the seed; from
    ``pretrained``, its body as pre-trained, to train gently (or not at all: frozen layers)."""
    c, t = config.model, config.train
    torch.manual_seed(t.seed)
    model = build_classifier(c, vocab_size, n_classes, pretrained.max_len if pretrained else config.data.max_len,
                             pretrained)
    if pretrained:
        model.load_body(pretrained.model.state_dict())
        model.freeze(t.freeze_layers)
        scale_lr(model.body_parameters(), t.body_lr_scale)
    return model


def encode(tokenizer, texts: list[str], max_len: int, training: bool = True, init: str = "") -> list[list[int]]:
    """Token ids of each text; a text over ``max_len`` tokens is a DataError whose hint fits the command
    (a trained model cannot read longer texts: only training takes ``--set``; nor can a body that was
    pre-trained on ``max_len`` positions, ``init``: the run it came from)."""
    ids = encode_all(tokenizer, texts)
    for number, row in enumerate(ids, 1):
        if len(row) > max_len:
            if not training:
                hint = "this model reads no more: shorten the text, or train with a larger data.max_len"
            elif init:
                hint = too_long_hint(init)
            else:
                hint = "raise it with --set data.max_len=N"
            named = f"text {number}" if not training else "a training text"  # training: a shuffled split
            raise DataError(f"{named} ({text_start(texts[number - 1])}) has {len(row)} tokens; data.max_len is "
                            f"{max_len} ({hint})")
    return [row or [PAD_ID] for row in ids]


@torch.no_grad()
def probabilities(model, ids: list[list[int]], batch_size: int = 256) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(pad(ids[i : i + batch_size]).to(device)).float().softmax(-1).cpu()
                      for i in range(0, len(ids), batch_size)]).numpy()


def fit_neural(config: ClassifyConfig, run: Path, texts: list[str], labels: np.ndarray, n_classes: int,
               log=print, parallel: SingleProcess | None = None):
    """Tokenizer and (optionally) word vectors from these texts only; a validation slice of them picks
    the best checkpoint. Returns (texts -> class probabilities, the model's parameter count); under
    torchrun the first is None except on the main rank."""
    from sklearn.model_selection import train_test_split  # here: scikit-learn would slow every start-up

    d, c, t = config.data, config.model, config.train
    parallel = parallel or SingleProcess()
    pretrained = classify_init.load_pretrained(c.init) if c.init else None
    tokenizer = pretrained.tokenizer if pretrained else train_tokenizer(texts, "word", d.vocab_size)
    parallel.on_main(lambda: save_tokenizer(tokenizer, run / "tokenizer.json"))
    tokenizer = load_tokenizer(run / "tokenizer.json")  # the main rank's, on every rank
    init = c.init if pretrained and d.max_len >= pretrained.max_len else ""  # else data.max_len may still rise
    ids = encode(tokenizer, texts, d.max_len, init=init)
    model = start_model(config, tokenizer.get_vocab_size(), n_classes, pretrained)
    if c.embeddings != "random":
        if c.embeddings in ("cbow", "skipgram"):
            sentences = [e.tokens for e in tokenizer.encode_batch(texts)]
            vectors = word_vectors.train_word2vec(sentences, c.d_model, c.embeddings == "skipgram",
                                                  c.word2vec_epochs, t.seed)
        else:
            vectors = word_vectors.read_glove(c.embeddings)
        matrix, coverage = word_vectors.embedding_matrix(tokenizer, vectors, c.d_model)
        model.load_vectors(matrix, c.freeze_embeddings)
        log(f"word vectors ({c.embeddings}) for {coverage:.1%} of the vocabulary")
    train_rows, valid_rows = train_test_split(np.arange(len(ids)), test_size=d.valid_fraction, stratify=labels,
                                              random_state=t.seed)
    train_ids, train_y = [ids[i] for i in train_rows], labels[train_rows]
    if c.teacher:  # a row per training row, fitted on those only: the validation slice stays unseen
        train_texts = [texts[i] for i in train_rows]
        rng = np.random.default_rng(t.seed)
        variants = [[drop_words(text, c.augment_drop, rng) for _ in range(c.augment_copies)] for text in train_texts]
        soft, variant_soft = teacher_probabilities(config, train_texts, train_y, n_classes, variants)
        agree = (soft.argmax(-1) == train_y).mean()
        log(f"teacher ({c.teacher}, {c.teacher_folds}-fold cross-fitted): accuracy {agree:.4f} on training texts")
        if c.augment_copies:  # each copy keeps its text's label and gets the teacher's view of it
            train_ids += encode(tokenizer, [v for row in variants for v in row], d.max_len, init=init)
            train_y = np.concatenate([train_y, np.repeat(train_y, c.augment_copies)])
            soft = np.concatenate([soft, variant_soft.reshape(-1, n_classes)])
            log(f"{len(train_ids):,} training texts with {c.augment_copies} word-dropped copies of each")
        soft = torch.from_numpy(soft)
    targets = torch.from_numpy(train_y)

    def make_batch(rows: np.ndarray) -> dict[str, torch.Tensor]:
        batch = {"ids": pad([train_ids[i] for i in rows]), "y": targets[rows]}
        if c.teacher:
            batch["teacher"] = soft[rows]
        return batch

    def loss_fn(m, batch):
        logits = m(batch["ids"])
        if c.teacher:
            loss = distillation_loss(logits, batch["y"], batch["teacher"], c.teacher_weight, t.label_smoothing)
        else:
            loss = F.cross_entropy(logits, batch["y"], label_smoothing=t.label_smoothing)
        return loss, len(batch["y"])

    def evaluate(m) -> dict[str, float]:
        predicted = probabilities(m, [ids[i] for i in valid_rows]).argmax(-1)
        return {"val_accuracy": float((predicted == labels[valid_rows]).mean())}

    n_parameters = sum(p.numel() for p in model.parameters())
    trainer = Trainer(model, t, run, loss_fn, ShuffledBatches(len(train_ids), t.batch_size, t.seed, make_batch),
                      evaluate, select="val_accuracy", maximize=True, d_model=c.d_model, parallel=parallel)
    trainer.fit()
    whole = parallel.export(trainer.model)  # the best weights as one plain model, on the main rank
    if whole is None:
        return None, n_parameters
    whole.eval()
    return (lambda new: probabilities(whole, encode(tokenizer, new, d.max_len, init=init))), n_parameters


def fit(config: ClassifyConfig, run: Path, texts: list[str], labels: np.ndarray, n_classes: int, log=print,
        parallel: SingleProcess | None = None):
    """-> (texts -> class probabilities, the parameter count: a linear model's weights and biases)."""
    if config.model.arch in NEURAL:
        return fit_neural(config, run, texts, labels, n_classes, log, parallel)
    model = fit_linear(config, texts, labels)
    if not config.data.cv:  # for seqlab predict, which takes single-split runs only (folds would cost MBs each)
        model.save_pretrained(run)
    return model.predict_proba, model.weights.size + model.bias.size


# --- the task -------------------------------------------------------------------------------------

def check_class_counts(label_names: list[str], cv: int) -> None:
    """Every class must reach each fold (or both sides of the split): fail before anything is written."""
    classes, counts = np.unique(label_names, return_counts=True)
    folds = cv or 2
    if counts.min() < folds:
        raise DataError(f"class {str(classes[int(counts.argmin())])!r} has {counts.min()} example(s); "
                        f"{'--cv ' + str(cv) if cv else 'a train/test split'} needs at least {folds} per class")


def check_splits(label_names: list[str], config: ClassifyConfig) -> None:
    """Make the splits ``train`` makes (the test split or the folds, and a neural model's validation
    split of its training rows) on the labels alone: a DataError, before anything is written, when one
    of them cannot hold an example of every class."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    d, seed = config.data, config.train.seed
    check_class_counts(label_names, d.cv)
    labels = np.asarray(label_names)
    rows = np.arange(len(labels))
    try:
        if d.cv:
            fits = [fit_rows for fit_rows, _ in StratifiedKFold(d.cv, shuffle=True, random_state=seed).split(rows, labels)]
        else:
            fits = [train_test_split(rows, test_size=d.test_fraction, stratify=labels, random_state=seed)[0]]
        if config.model.arch in NEURAL:
            for fit_rows in fits:
                train_test_split(fit_rows, test_size=d.valid_fraction, stratify=labels[fit_rows], random_state=seed)
    except ValueError:
        split = f"--cv {d.cv}" if d.cv else f"data.test_fraction={d.test_fraction}"
        raise DataError(f"{len(labels)} examples of {len(set(label_names))} classes are too few for {split}"
                        f"{f' and data.valid_fraction={d.valid_fraction}' if config.model.arch in NEURAL else ''}"
                        f" to hold an example of every class; add examples or raise those fractions") from None


def train(config: ClassifyConfig, run: Path, texts: list[str], label_names: list[str], log=print, *,
          parallel: SingleProcess | None = None) -> dict[str, Any]:
    """Fit (each fold, under ``--cv``) and score. Under torchrun, ``parallel`` is this rank's part of a
    neural model's data-parallel training; the main rank alone writes the files and scores."""
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import StratifiedKFold, train_test_split

    d, started = config.data, time.perf_counter()
    parallel = parallel or SingleProcess()
    if parallel.world > 1 and config.model.arch not in NEURAL:
        raise UserError(one_process_only(config.model.arch))
    if not parallel.is_main:
        log = lambda *args, **kwargs: None  # noqa: E731 — one rank speaks
    check_class_counts(label_names, d.cv)
    if config.model.init:  # the body's settings, in the run's config too
        pretrained = classify_init.load_pretrained(config.model.init)
        config = classify_init.with_init(config, pretrained)
        d = config.data
        log(classify_init.describe(config, pretrained))
    classes = sorted(set(label_names))
    labels = np.asarray([classes.index(name) for name in label_names])

    def describe() -> None:
        runs.write_run(run, TASK, to_dict(config))
        (run / "classes.json").write_text(json.dumps(classes))

    parallel.on_main(describe)
    metrics: dict[str, Any] = {"arch": config.model.arch, "examples": len(texts), "classes": len(classes)}
    if config.model.init:
        metrics["init"] = config.model.init
    if d.cv:
        folds_scores, sizes = [], []
        held_out = np.zeros((len(texts), len(classes)), dtype=np.float32)  # each text's probabilities, from its fold
        for k, (train_rows, test_rows) in enumerate(StratifiedKFold(d.cv, shuffle=True, random_state=config.train.seed)
                                                    .split(texts, labels), 1):
            fold_dir = run / f"fold-{k}"
            parallel.on_main(fold_dir.mkdir)
            predict, size = fit(config, fold_dir, [texts[i] for i in train_rows], labels[train_rows], len(classes),
                                log, parallel)
            sizes.append(size)
            if parallel.is_main:
                held_out[test_rows] = predict([texts[i] for i in test_rows])
                folds_scores.append(scores(labels[test_rows], held_out[test_rows].argmax(-1)))
                log(f"fold {k}/{d.cv}: accuracy {folds_scores[-1]['accuracy']:.4f}")

        def summarise() -> dict[str, Any]:
            np.save(run / "cv_probabilities.npy", held_out)  # rows in the input's order: for ensembles of runs
            accuracies = [s["accuracy"] for s in folds_scores]
            metrics.update({"cv_accuracy": statistics.mean(accuracies),
                            "cv_accuracy_std": statistics.stdev(accuracies),
                            "cv_macro_f1": statistics.mean(s["macro_f1"] for s in folds_scores),
                            "cv_folds": accuracies,
                            "parameters": round(statistics.mean(sizes))})  # the folds' vocabularies differ
            return metrics
    else:
        train_rows, test_rows = train_test_split(np.arange(len(texts)), test_size=d.test_fraction, stratify=labels,
                                                 random_state=config.train.seed)
        parallel.on_main(lambda: runs.write_example(run, {"text": texts[test_rows[0]], "source": "the first test text"}))
        predict, metrics["parameters"] = fit(config, run, [texts[i] for i in train_rows], labels[train_rows],
                                             len(classes), log, parallel)

        def summarise() -> dict[str, Any]:
            predicted = predict([texts[i] for i in test_rows]).argmax(-1)
            metrics.update({f"test_{k}": v for k, v in scores(labels[test_rows], predicted).items()})
            metrics["test_examples"] = len(test_rows)
            from ..viz.confusion import plot_confusion

            plot_confusion(confusion_matrix(labels[test_rows], predicted, labels=range(len(classes))), classes,
                           run / "confusion.png", f"{config.model.arch}: test confusion matrix")
            if config.model.arch == "transformer":  # what it reads in one test text (a short one, to be legible)
                test_texts = [texts[i] for i in test_rows]
                TextClassifierRun(run).attention_png(min(test_texts[:50], key=len), run / "attention.png")
            return metrics

    def finish() -> dict[str, Any]:
        summarise()
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        metrics["processes"] = parallel.world
        runs.write_metrics(run, metrics)
        return metrics

    return parallel.on_main(finish)


class TextClassifierRun:
    """A trained (single-split) run: texts -> class probabilities. ``model`` is its network, or None for
    a linear baseline, which is ``linear`` instead."""

    def __init__(self, run: str | Path, device: str = "cpu") -> None:
        run = Path(run)
        info = runs.read_run(run)
        self.model, self.linear = None, None
        if info["task"] == TASK:
            self.config = build(ClassifyConfig, info["config"])
            if self.config.data.cv:
                raise UserError(f"{run} is a cross-validation run (one model per fold); "
                                f"train without --cv for a model to use")
            if self.config.model.arch not in NEURAL:
                if not (run / LINEAR_CONFIG_FILE).is_file():
                    raise UserError(f"{run} holds no saved {self.config.model.arch} model (trained by a seqlab "
                                    f"that did not save linear baselines); train it again to use it")
                self.linear = LinearTextClassifier.from_pretrained(run)
        if self.linear is None:
            _, self.model = runs.load_trained(run, TASK, "a classification run", device)
            if hasattr(self.model.config, "max_len"):  # a text is cut to data.max_len tokens for it
                runs.check_fits(run, info, "data.max_len", self.model.config.max_len, at_most=True)
            self.tokenizer = load_tokenizer(run / "tokenizer.json", self.model.config.vocab_size)
        self.classes = runs.read_classes(run, len(self.linear.classes) if self.model is None
                                         else self.model.config.n_classes)

    def probability_matrix(self, texts: list[str]) -> np.ndarray:
        """(N, classes), columns in ``self.classes`` order."""
        if self.linear is not None:
            return self.linear.predict_proba(texts)
        return probabilities(self.model, encode(self.tokenizer, texts, self.config.data.max_len, training=False))

    def probabilities(self, texts: list[str]) -> list[dict[str, float]]:
        return [dict(zip(self.classes, map(float, row))) for row in self.probability_matrix(texts)]

    def predict(self, texts: list[str]) -> list[str]:
        """Each text's most probable class name."""
        return [self.classes[i] for i in self.probability_matrix(texts).argmax(axis=1)]

    def attention(self, text: str) -> list[torch.Tensor]:
        """The Transformer's per-layer (H, T, T) self-attention over ``text`` ([CLS] first when it pools
        with one); other models have none."""
        if not hasattr(self.model, "layers"):
            raise UserError(f"a {self.config.model.arch} classifier has no attention weights")
        ids = encode(self.tokenizer, [text], self.config.data.max_len, training=False)
        with torch.no_grad():
            _, maps = self.model(torch.tensor(ids, device=next(self.model.parameters()).device), need_weights=True)
        return [w[0].float().cpu() for w in maps]

    def attention_png(self, text: str, path: Path) -> None:
        """The Transformer's last-layer self-attention over one text, a panel per head."""
        from ..viz.attention import plot_self_attention  # matplotlib: only when drawing

        ids = encode(self.tokenizer, [text], self.config.data.max_len, training=False)[0]
        with torch.no_grad():
            _, maps = self.model(torch.tensor([ids], device=next(self.model.parameters()).device), need_weights=True)
        weights = maps[-1][0].float().cpu()  # (H, T, T)
        tokens = (["[CLS]"] if self.model.pool == "cls" else []) + [self.tokenizer.id_to_token(i) for i in ids]
        plot_self_attention(weights, tokens, path, f"self-attention, last layer: {text!r}")

    def evaluate(self, texts: list[str], label_names: list[str], source: str | Path) -> dict[str, Any]:
        """Accuracy, macro-F1 and each class's figures on new labelled texts; a label the run never
        learned is a DataError."""
        truth = np.asarray(class_indices(label_names, self.classes, source))
        predicted = self.probability_matrix(texts).argmax(-1)
        return {**scores_by_class(truth, predicted, self.classes), "examples": len(texts)}


# --- the registry entry --------------------------------------------------------------------------

class ClassifyTask(Task):
    name = "classify"
    models = ("TransformerClassifier", "LSTMClassifier", "ConvClassifier")
    description = "text classification: labelled texts -> a Transformer, BiLSTM, CNN or linear n-gram model"
    example = "seqlab train classify --csv reviews.csv --text-col text --label-col label --model conv1d --cv 10"
    config_class = ClassifyConfig
    eval_flags = (Flag("csv", "classify: labelled texts", required=True),
                  Flag("text_col", "classify: the text column (default: the run's)"),
                  Flag("label_col", "classify: the label column (default: the run's)"),
                  Flag("encoding", "classify: the file's encoding (default: the run's)"))
    validation_metric = "val_accuracy"
    no_resume = "classification runs are short; start a new one instead of --resume"

    def read_data(self, config: ClassifyConfig) -> tuple[list[str], list[str]]:
        d = config.data
        if not d.csv:
            raise UserError("no data: give --csv FILE with a text and a label column")
        texts, labels = read_labelled(d.csv, d.text_col, d.label_col, d.encoding)
        check_splits(labels, config)
        return texts, labels

    def check_new_run(self, config: ClassifyConfig) -> None:
        if config.model.init:  # a bad --init fails before the run directory is made
            classify_init.with_init(config, classify_init.load_pretrained(config.model.init))

    def compare_data(self, config: ClassifyConfig, options) -> tuple[list[str], list[str]]:
        d = config.data
        if not d.csv:
            raise UserError("no data: give --csv FILE with a text and a label column")
        texts, labels = read_labelled(d.csv, d.text_col, d.label_col, d.encoding)
        check_class_counts(labels, config.data.cv)  # data errors before the directory is made
        return texts, labels

    def train(self, config, run, data, *, resume=False, parallel=None, log=print) -> dict[str, Any]:
        if resume:
            raise UserError(self.no_resume)
        return train(config, run, *data, log=log, parallel=parallel)

    def summary(self, config, m) -> str:
        if "cv_accuracy" in m:
            return f"{config.data.cv}-fold cross-validation accuracy {m['cv_accuracy']:.4f} (± {m['cv_accuracy_std']:.4f})"
        return f"test: accuracy {m['test_accuracy']:.4f}, macro-F1 {m['test_macro_f1']:.4f}"

    def load(self, run, device="cpu") -> TextClassifierRun:
        return TextClassifierRun(run, device)

    def evaluate(self, classifier: TextClassifierRun, options) -> dict[str, Any]:
        d = classifier.config.data
        texts, labels = read_labelled(options["csv"], options["text_col"] or d.text_col,
                                      options["label_col"] or d.label_col, options["encoding"] or d.encoding,
                                      min_classes=1)
        return classifier.evaluate(texts, labels, options["csv"])

    def predict(self, classifier: TextClassifierRun, inputs, options):
        if not inputs:
            raise UserError("give the input: text to classify as arguments or lines on standard input")
        return [ranked_line(text, probs) for text, probs in zip(inputs, classifier.probabilities(inputs))]

    def explorable(self, classifier: TextClassifierRun, run):
        if classifier.model is None:
            raise UserError(f"{run} is a linear {classifier.linear.arch} baseline, with no attention to show; "
                            f"score texts with seqlab predict {run} TEXT")
        return classifier.model

    def input_limit(self, classifier: TextClassifierRun) -> int:
        return classifier.config.data.max_len

    def explore(self, classifier: TextClassifierRun, request) -> dict[str, Any]:
        if not request.text.strip():
            raise UserError("type an input first")
        return views.classification(classifier, request.text)

    def compare_columns(self, config) -> list[str]:
        if config.data.cv:
            return ["model", "parameters", "seconds", "cv_accuracy", "cv_accuracy_std", "cv_macro_f1"]
        return ["model", "parameters", "seconds", "test_accuracy", "test_macro_f1"]

    def has_curves(self, config) -> bool:
        return not config.data.cv and config.model.arch in NEURAL


register(ClassifyTask())
