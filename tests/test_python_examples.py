"""The Python examples of README.md and docs/python.md run as written, on tiny runs of every task made
here under the names the examples use (runs/demo, runs/shakespeare, ...)."""

import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import standin_data

import seqlab
from seqlab.cli.main import main
from seqlab.errors import UserError

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "python.md"]
QUIET = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--max-steps", "4"]
SMALL = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--set", "model.d_ff=32"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.M | re.S)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder holding runs/demo (translate), runs/shakespeare (lm), runs/reviews (classify),
    runs/etth1 (forecast), runs/digits (vision), ETTh1.csv and digit.png."""
    from PIL import Image

    home = tmp_path_factory.mktemp("first-day")
    standin_data.reversed_pairs(home, "src.txt", "tgt.txt")
    standin_data.play(home / "play.txt")
    standin_data.reviews(home / "reviews.csv")
    standin_data.hourly_series(home / "ETTh1.csv", 400)
    Image.fromarray((np.eye(8) * 255).astype(np.uint8)).save(home / "digit.png")
    runs = home / "runs"
    commands = [
        ["translate", "--src", home / "src.txt", "--tgt", home / "tgt.txt", "--out", runs / "demo", *SMALL,
         "--set", "data.tokenizer='char'", "--set", "decode.max_output_len=8"],
        ["lm", "--text", home / "play.txt", "--out", runs / "shakespeare", *SMALL, "--set", "data.block_size=64"],
        ["classify", "--csv", home / "reviews.csv", "--out", runs / "reviews", *SMALL],
        ["forecast", "--csv", home / "ETTh1.csv", "--target", "OT", "--input-len", "48", "--horizon", "12",
         "--model", "patch", "--split", "0.7,0.1,0.2", "--out", runs / "etth1", *SMALL,
         "--set", "model.patch_len=8", "--set", "model.stride=4"],
        ["vision", "--out", runs / "digits", *SMALL],
    ]
    for command in commands:
        assert main(["train", *map(str, command), *QUIET]) == 0, command
    return home


def test_the_docs_hold_python_examples():
    assert python_blocks(ROOT / "README.md") and len(python_blocks(ROOT / "docs" / "python.md")) >= 8


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_python_example_runs_as_written(doc, workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    for number, block in enumerate(python_blocks(doc), 1):
        try:
            exec(compile(block, f"{doc.name}, python block {number}", "exec"), {"__name__": "__example__"})
        except Exception as error:
            raise AssertionError(f"{doc.name}, python block {number} fails:\n{block}") from error


def test_load_returns_each_tasks_predictor_and_its_attention(workdir):
    runs = workdir / "runs"
    translator = seqlab.load(runs / "demo")
    attention = translator.attention("17 dic 1974")
    source_tokens = len(translator.src_tokenizer.encode("17 dic 1974").ids)
    assert set(attention) == {"encoder", "decoder", "cross"}
    assert tuple(attention["encoder"][0].shape) == (2, source_tokens, source_tokens)
    assert attention["cross"][0].shape[-1] == source_tokens
    assert attention["cross"][0].sum(-1).allclose(attention["cross"][0].new_ones(()))

    lm = seqlab.load(runs / "shakespeare")
    layers = lm.attention("ROMEO")
    assert len(layers) == 1 and tuple(layers[0].shape) == (2, 5, 5) and layers[0][:, 0, 1:].abs().sum() == 0
    assert lm.generate("ROMEO", 12, temperature=0) == "".join(lm.stream("ROMEO", 12, temperature=0))
    assert lm.generate("ROMEO", 12, seed=3) == lm.generate("ROMEO", 12, seed=3)

    classifier = seqlab.load(runs / "reviews")
    texts = ["a gripping film", "a dull film", "lifeless"]
    probabilities = classifier.probabilities(texts)
    assert classifier.predict(texts) == [max(p, key=p.get) for p in probabilities]
    tokens = 3 + (classifier.model.pool == "cls")  # three words, after [CLS] when it pools with one
    assert tuple(classifier.attention("a dull film")[0].shape) == (2, tokens, tokens)

    forecast = seqlab.load(runs / "etth1")
    frame = forecast.forecast(workdir / "ETTh1.csv")
    assert frame.equals(forecast.predict_csv(workdir / "ETTh1.csv")) and len(frame) == 12
    patches = (48 - 8) // 4 + 2  # and one more: the series is padded by a stride
    assert tuple(forecast.attention(workdir / "ETTh1.csv")[0].shape) == (2, 2, patches, patches)  # load, OT

    vit = seqlab.load(runs / "digits")
    probabilities = vit.probabilities(workdir / "digit.png")
    assert vit.predict([workdir / "digit.png"]) == [max(probabilities, key=probabilities.get)]
    assert tuple(vit.attention(workdir / "digit.png")[0].shape) == (2, 17, 17)  # [CLS] + (8 / 2)² patches


def test_load_refuses_what_is_not_a_trained_run(tmp_path):
    with pytest.raises(UserError, match="run.json"):
        seqlab.load(tmp_path)


def test_from_pretrained_takes_a_run_directory(workdir):
    from seqlab.models import TransformerLM, from_pretrained

    model = from_pretrained(workdir / "runs" / "shakespeare")
    assert isinstance(model, TransformerLM)
    predictor = seqlab.load(workdir / "runs" / "shakespeare")
    for name, tensor in predictor.model.state_dict().items():
        assert tensor.equal(model.state_dict()[name]), name


def test_every_name_the_readme_lists_is_importable():
    """The "What is inside" table: each backticked name of a package's row is in that package (or is
    one of its modules)."""
    not_names = {"state_dict", "torchrun", "seqlab"}  # words in the table, not things to import
    rows = re.findall(r"^\| `(seqlab\.\w+)` \| (.*) \|$", (ROOT / "README.md").read_text(), flags=re.M)
    assert len(rows) >= 9
    for package, text in rows:
        module = importlib.import_module(package)
        for name in set(re.findall(r"`([A-Za-z_]\w*)`", text)) - not_names:
            assert hasattr(module, name) or importlib.util.find_spec(f"{package}.{name}"), f"{package}.{name}"
    from seqlab.models import LinearTextClassifier, PatchTransformer, TransformerClassifier, VisionTransformer

    assert all(isinstance(c, type) for c in (LinearTextClassifier, PatchTransformer, TransformerClassifier,
                                             VisionTransformer))
