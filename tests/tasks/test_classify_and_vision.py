"""Classification tasks end to end: text (every model, cross-validation, word vectors, predict) and
images (ViT on an image folder and on the digits), and their bad-input paths."""

import io
import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from cli_run import run_cli

NEURAL_FAST = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
               "--set", "model.d_ff=32", "--set", "model.hidden_size=16", "--set", "model.n_filters=8",
               "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.eval_every=20",
               "--set", "train.batch_size=32", "--set", "train.lr=3e-3", "--set", "train.warmup_steps=10",
               "--set", "model.dropout=0.1", "--max-steps", "120"]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """Short reviews whose label is carried by a sentiment word among neutral ones."""
    rng = random.Random(0)
    neutral = "the a film story actor plot scene was is and with this".split()
    good, bad = "great wonderful superb moving".split(), "awful boring dull terrible".split()
    rows = []
    for i in range(400):
        label = "pos" if i % 2 else "neg"
        words = rng.sample(neutral, 5) + [rng.choice(good if label == "pos" else bad)]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    path = tmp_path_factory.mktemp("reviews") / "reviews.csv"
    path.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in rows), encoding="latin-1")
    return path


@pytest.mark.parametrize("model", ["transformer", "lstm", "conv1d", "tfidf", "bow", "nbsvm"])
def test_each_text_model_learns_and_writes_its_figures(tmp_path, reviews, capsys, monkeypatch, model):
    run = tmp_path / model
    code, out, err = run_cli("train", "classify", "--csv", reviews, "--model", model, "--encoding", "latin-1",
                             "--out", run, *NEURAL_FAST, capsys=capsys)
    assert code == 0, err
    m = json.loads((run / "metrics.json").read_text())
    assert m["test_accuracy"] >= 0.9 and 0 < m["test_macro_f1"] <= 1
    assert (run / "confusion.png").is_file()
    assert (run / "attention.png").is_file() == (model == "transformer")  # the only one with attention
    code, out, err = run_cli("predict", run, "a superb film", "an awful film", capsys=capsys)
    assert code == 0, err
    first, second = out.splitlines()
    assert first.split("\t")[1].startswith("pos") and second.split("\t")[1].startswith("neg")  # most probable first
    monkeypatch.setattr("sys.stdin", io.StringIO("a superb film\n\nan awful film\n"))  # or one text a line
    assert run_cli("predict", run, capsys=capsys)[1] == out
    if model == "transformer":  # longer than the trained model reads: a hint that predict can follow
        code, out, err = run_cli("predict", run, "film " * 5000, capsys=capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "shorten the text" in err and "--set" not in err
    # eval: the run's column names and encoding by default; the third row is labelled wrongly on purpose.
    new = tmp_path / "new.csv"
    new.write_text("text,label\na superb film,pos\nan awful film,neg\na wonderful film,neg\n", encoding="latin-1")
    code, out, err = run_cli("eval", run, "--csv", new, capsys=capsys)
    assert code == 0, err
    assert json.loads(out) == {"accuracy": pytest.approx(2 / 3), "macro_f1": pytest.approx(2 / 3), "examples": 3,
                               "per_class": {"neg": {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                                                     "support": 2},
                                             "pos": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                                                     "support": 1}}}
    new.write_text("text,label\na superb film,pos\na dull film,meh\n")
    code, _, err = run_cli("eval", run, "--csv", new, capsys=capsys)
    assert code == 2 and "labels the run was not trained on: 'meh'" in err and len(err.splitlines()) == 1
    if model == "transformer":  # data.max_len past the checkpoint's positions: one line, not a traceback
        settings = json.loads((run / "run.json").read_text())
        settings["config"]["data"]["max_len"] = 10 ** 4
        (run / "run.json").write_text(json.dumps(settings))
        code, _, err = run_cli("predict", run, "film " * 5000, capsys=capsys)
        assert code == 2 and "run.json is damaged (data.max_len is 10000; the checkpoint's model takes at most" in err
        settings["config"]["data"]["max_len"] = 8  # fewer than its positions is allowed (a run fine-tuned from a longer model)
        (run / "run.json").write_text(json.dumps(settings))
        assert run_cli("predict", run, "a superb film", capsys=capsys)[0] == 0
    (run / "classes.json").write_text('["neg"]')  # one name for the model's two classes: every label wrong
    code, _, err = run_cli("predict", run, "a superb film", capsys=capsys)
    assert code == 2 and "classes.json is damaged (not a list of 2 distinct class names" in err


def test_cross_validation_with_word2vec(tmp_path, reviews, capsys):
    run = tmp_path / "cv"
    code, out, err = run_cli("train", "classify", "--csv", reviews, "--model", "conv1d", "--encoding", "latin-1",
                             "--cv", 3, "--set", "model.embeddings='skipgram'", "--out", run, *NEURAL_FAST,
                             capsys=capsys)
    assert code == 0, err
    m = json.loads((run / "metrics.json").read_text())
    assert len(m["cv_folds"]) == 3 and m["cv_accuracy"] == pytest.approx(np.mean(m["cv_folds"]))
    # Each text's held-out probabilities, in the file's order: the same folds give the same accuracies.
    from sklearn.model_selection import StratifiedKFold

    probs = np.load(run / "cv_probabilities.npy")
    labels = np.array([line.endswith(",pos") for line in reviews.read_text("latin-1").splitlines()[1:]])
    correct = probs.argmax(-1) == labels
    folds = StratifiedKFold(3, shuffle=True, random_state=0).split(labels, labels)
    assert [correct[rows].mean() for _, rows in folds] == pytest.approx(m["cv_folds"], abs=1e-12)
    code, _, err = run_cli("predict", run, "a film", capsys=capsys)
    assert code == 2 and "cross-validation run" in err


@pytest.mark.parametrize("content, flags, message", [
    ("text,label\nok,a\nfine,a\n", [], "single class"),
    ("text,label\nok,a\n ,b\n", [], "row 3: the text is empty"),
    ("words,label\nok,a\n", [], "no column 'text'"),
    ("text,label\ncaf\xe9,a\nok,b\n", [], "--encoding"),
    ("text,label\nok,a\nfine,b\n", ["--cv", "1"], "data.cv"),
    ('text,label\nok,a\nfine,"b\nc"\n', [], "row 3: the label 'b\\nc' holds a line break or a tab"),
    ("text,label\nok,a\nfine,b\n", ["--model", "tfidf", "--set", "model.teacher='nbsvm'"], "model.teacher"),
    ("text,label\n" + "good,a\n" * 20 + "bad,b\n" * 4, ["--set", "model.teacher='nbsvm'"], "model.teacher_folds=5"),
    ("text,label\nok,a\nfine,b\n", ["--set", "model.augment_copies=2"], "model.augment_copies"),
    ("text,label\nok,a\nfine,b\n", ["--set", "model.teacher='nbsvm'", "--set", "model.augment_copies=1000000000"],
     "model.augment_copies must be in 0..100"),  # was: an allocation of a billion copies
    ("text,label\nok,a\nfine,b\n", ["--model", "nbsvm", "--set", "model.char_ngrams=1"], "model.char_ngrams"),
    ("text,label\nok,a\nfine,b\n", ["--model", "nbsvm", "--set", "model.nb_beta=1.5"], "model.nb_beta"),
    ("text,label\nok,a\nfine,b\n", ["--set", "model.n_heads=5"], "divisible by model.n_heads (5)"),
    ("text,label\nok,a\nfine,b\n", ["--set", "data.max_len=0"], "data.max_len"),
    ("text,label\nok,a\nfine,b\n", ["--set", "data.vocab_size=3"], "data.vocab_size at least 8; got 256 and 3"),
    ("text,label\nok,a\nfine,b\n", ["--set", "model.positional='rotary'", "--set", "model.d_model=20"],
     "head width d_model / n_heads must be even; got 5"),
])
def test_bad_text_input_is_one_line_and_exit_2(tmp_path, capsys, content, flags, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content.encode("latin-1"))
    code, _, err = run_cli("train", "classify", "--csv", path, "--out", tmp_path / "run", *flags, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_distillation_from_a_linear_teacher(tmp_path, reviews, capsys):
    run = tmp_path / "kd"
    code, out, err = run_cli("train", "classify", "--csv", reviews, "--model", "transformer", "--encoding",
                             "latin-1", "--set", "model.teacher='nbsvm'", "--out", run, *NEURAL_FAST, capsys=capsys)
    assert code == 0, err
    assert "teacher (nbsvm, 5-fold cross-fitted): accuracy" in out
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] >= 0.9


def test_distillation_with_word_dropped_copies(tmp_path, reviews, capsys):
    run = tmp_path / "kd-augmented"
    code, out, err = run_cli("train", "classify", "--csv", reviews, "--model", "lstm", "--encoding", "latin-1",
                             "--set", "model.teacher='nbsvm'", "--set", "model.augment_copies=2", "--out", run,
                             *NEURAL_FAST, capsys=capsys)
    assert code == 0, err
    assert "972 training texts with 2 word-dropped copies of each" in out  # 400 - 40 test - 36 validation, × 3
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] >= 0.9


def test_drop_words_keeps_order_and_at_least_one_word():
    from seqlab.tasks.distill import drop_words

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(1000)]
    kept = drop_words(" ".join(words), 0.2, rng).split()
    assert kept == sorted(kept, key=words.index) and 0.75 < len(kept) / len(words) < 0.85
    assert all(drop_words("only", 0.99, rng) == "only" for _ in range(20))


def test_teacher_probabilities_are_cross_fitted():
    """A text's soft label comes from a teacher that never saw it: a word only that text has cannot
    change it, while a teacher fitted on every text (the leak cross-fitting prevents) does change."""
    from seqlab.tasks.classify import ClassifyConfig, ClassifyModelConfig, fit_linear
    from seqlab.tasks.distill import teacher_probabilities

    rng = random.Random(1)
    words = "great dull fine plot cast odd slow warm".split()
    texts = [" ".join(rng.sample(words, 4)) for _ in range(60)]
    labels = np.array([int("great" in t or "warm" in t) for t in texts])
    marked = ["zebra " + texts[0], *texts[1:]]  # "zebra": in text 0 only
    config = ClassifyConfig(model=ClassifyModelConfig(arch="conv1d", teacher="nbsvm"))
    (before, _), (after, _) = (teacher_probabilities(config, t, labels, 2) for t in (texts, marked))
    assert before[0].tolist() == after[0].tolist()
    assert not np.allclose(before[1:], after[1:])  # the other folds' teachers did see the word
    # Altered copies of a text are scored by the teacher that did not see the text either.
    variants = [[t.split(" ", 1)[1], t.rsplit(" ", 1)[0]] for t in texts]
    (_, copies_before), (_, copies_after) = (
        teacher_probabilities(config, t, labels, 2, v) for t, v in
        ((texts, variants), (marked, [[f"zebra {c}" for c in variants[0]], *variants[1:]])))
    assert copies_before.shape == (60, 2, 2) and copies_before[0].tolist() == copies_after[0].tolist()
    assert not np.allclose(copies_before[1:], copies_after[1:])
    seen_all = ClassifyConfig(model=ClassifyModelConfig(arch="nbsvm"))
    leaked = [fit_linear(seen_all, t, labels).predict_proba(t[:1])[0, 1] for t in (texts, marked)]
    assert leaked[0] != leaked[1]
    np.testing.assert_allclose(before.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("arch", ["nbsvm", "tfidf", "bow"])
def test_character_ngrams_reach_words_never_seen(arch):
    """Words alone know nothing of "grippingly" and "tediousness"; their character n-grams share stems
    with "gripping" and "tedious", so the prediction follows them — for the model and for a teacher."""
    from seqlab.tasks.classify import ClassifyConfig, ClassifyModelConfig, fit_linear
    from seqlab.tasks.distill import teacher_probabilities

    texts = [f"{word} {filler}" for word in ("gripping", "tedious") for filler in ("film", "story", "plot") * 4]
    labels = np.array([int(t.startswith("gripping")) for t in texts])
    unseen = ["grippingly", "tediousness"]
    words_only = fit_linear(ClassifyConfig(model=ClassifyModelConfig(arch=arch)), texts, labels).predict_proba(unseen)
    np.testing.assert_allclose(words_only[0], words_only[1])  # no feature at all: the same guess for both
    with_chars = fit_linear(ClassifyConfig(model=ClassifyModelConfig(arch=arch, char_ngrams=4)), texts, labels)
    assert list(with_chars.predict_proba(unseen).argmax(axis=1)) == [1, 0]
    teacher = ClassifyConfig(model=ClassifyModelConfig(arch="conv1d", teacher=arch, char_ngrams=4))
    _, copies = teacher_probabilities(teacher, texts, labels, 2, [unseen] * len(texts))
    assert (copies[:, 0].argmax(-1) == 1).all() and (copies[:, 1].argmax(-1) == 0).all()


def make_image_folder(root, per_class=12):
    """Two classes of 8×8 pictures: a bright left half or a bright right half, with noise."""
    rng = np.random.default_rng(0)
    for name, side in (("left", slice(0, 4)), ("right", slice(4, 8))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (8, 8))
            pixels[:, side] += 180
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_vision_on_an_image_folder_and_predict(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "images")
    run = tmp_path / "run"
    code, out, err = run_cli("train", "vision", "--images", folder, "--out", run, "--set", "data.image_size=8",
                             "--set", "data.test_fraction=0.25", "--set", "data.valid_fraction=0.2",
                             "--set", "model.d_model=16", "--set", "model.n_layers=1", "--set", "model.d_ff=32",
                             "--set", "train.progress=false", "--set", "train.tensorboard=false",
                             "--set", "train.eval_every=50", "--max-steps", "150", "--set", "train.batch_size=8",
                             "--set", "train.warmup_steps=10", "--set", "data.augment_shift=0",
                             capsys=capsys)
    assert code == 0, err
    m = json.loads((run / "metrics.json").read_text())
    assert m["test_accuracy"] >= 0.8
    assert (run / "confusion.png").is_file() and (run / "attention.png").is_file()
    code, out, err = run_cli("predict", run, folder / "right" / "0.png", capsys=capsys)
    assert code == 0, err
    assert out.split("\t")[1].startswith("right")
    code, out, err = run_cli("eval", run, "--images", folder, capsys=capsys)
    assert code == 0, err
    scores = json.loads(out)
    assert scores["images"] == 24 and scores["accuracy"] >= 0.8
    # One class is enough to score, and it keeps its index: eval agrees with predict image by image.
    (tmp_path / "only" / "right").mkdir(parents=True)
    for image in (folder / "right").iterdir():
        (tmp_path / "only" / "right" / image.name).write_bytes(image.read_bytes())
    code, out, err = run_cli("eval", run, "--images", tmp_path / "only", capsys=capsys)
    assert code == 0, err
    code, predicted, _ = run_cli("predict", run, *sorted((folder / "right").iterdir()), capsys=capsys)
    said_right = [line.split("\t")[1].startswith("right") for line in predicted.splitlines()]
    assert json.loads(out)["accuracy"] == pytest.approx(np.mean(said_right)) and len(said_right) == 12
    (tmp_path / "only" / "up").mkdir()
    (tmp_path / "only" / "up" / "0.png").write_bytes((folder / "left" / "0.png").read_bytes())
    code, _, err = run_cli("eval", run, "--images", tmp_path / "only", capsys=capsys)
    assert code == 2 and "not trained on: 'up'" in err
    # A classes.json that does not name the model's classes would label every prediction wrongly.
    written = (run / "classes.json").read_text()
    for damaged in ('["right"]', '["right", "right"]', '["left", "right", "up"]', '{"left": 0}', '["left", true]'):
        (run / "classes.json").write_text(damaged)
        code, _, err = run_cli("predict", run, folder / "right" / "0.png", capsys=capsys)
        assert code == 2 and "classes.json is damaged (not a list of 2 distinct class names" in err, damaged
    (run / "classes.json").write_text(written)
    # a run.json whose image size is not the checkpoint's, or that lost its settings: one line, not a
    # traceback or predictions from images resized otherwise than in training
    settings = (run / "run.json").read_text()
    for config in ({"data": {"images": str(folder), "image_size": 16}}, {"data": {"images": str(folder)}}):
        (run / "run.json").write_text(json.dumps({**json.loads(settings), "config": config}))
        code, _, err = run_cli("predict", run, folder / "right" / "0.png", capsys=capsys)
        assert code == 2 and "run.json is damaged (" in err and len(err.strip().splitlines()) == 1, err
    (run / "run.json").write_text(settings)
    code, _, err = run_cli("predict", run, folder, capsys=capsys)  # a folder where an image goes
    assert code == 2 and f"{folder} is a folder; predict takes image files (seqlab eval RUN --images" in err


def test_vision_digits_learns_quickly(tmp_path, capsys):
    run = tmp_path / "digits"
    code, out, err = run_cli("train", "vision", "--out", run, "--max-steps", "600", "--set", "model.n_layers=2",
                             "--set", "train.warmup_steps=20", "--set", "data.augment_shift=0",
                             "--set", "train.progress=false", "--set", "train.tensorboard=false",
                             "--set", "train.eval_every=200", capsys=capsys)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] > 0.7  # chance: 0.1


def test_bad_images_are_one_line_and_exit_2(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "images", per_class=3)
    (folder / "left" / "broken.png").write_bytes(b"not a png")
    code, _, err = run_cli("train", "vision", "--images", folder, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and "cannot read image" in err and "broken.png" in err
    single = tmp_path / "single"
    (single / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(single / "only" / "a.png")
    code, _, err = run_cli("train", "vision", "--images", single, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and "at least two sub-folders" in err
    few = make_image_folder(tmp_path / "few", per_class=3)
    for image in sorted((few / "right").iterdir())[1:]:
        image.unlink()  # one image of "right": the class is named by its folder, not by its index
    code, _, err = run_cli("train", "vision", "--images", few, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and "class 'right' has 1 image(s); each class needs at least 3" in err, err
    code, _, err = run_cli("train", "vision", "--set", "model.n_heads=5", "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and "divisible by model.n_heads (5)" in err and not (tmp_path / "run").exists()


def test_test_time_shifts_average_the_nine_translations():
    from seqlab.tasks.vision import predict

    class WhereIsThePixel(torch.nn.Module):  # one class per pixel position: the brightest one
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, images):
            return torch.nn.functional.one_hot(images.flatten(1).argmax(-1), 64).float() * 50.0

    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 3, 5] = 1.0
    one_view = predict(WhereIsThePixel(), image)[0]
    assert one_view.argmax() == 3 * 8 + 5 and one_view.max() > 0.99
    averaged = predict(WhereIsThePixel(), image, shifts=1)[0]
    expected = torch.zeros(64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            expected[(3 + dy) * 8 + 5 + dx] = 1 / 9
    torch.testing.assert_close(averaged, expected, atol=1e-6, rtol=0)
