"""The masked-language-model task end to end on generated text: train, the figures agree with each
other and with ``eval`` on the same text, ``predict`` fills [MASK], and bad input is one line, exit 2.
(Resume equals an uninterrupted run: tests/tasks/test_lm_task.py, parametrised over both tasks.)"""

import json
import math
import random

import pytest

from seqlab.cli.main import main
from seqlab.config import load_config
from seqlab.tasks import masked_lm
from cli_run import run_cli

TINY = ["--set", "model.d_model=32", "--set", "model.n_heads=4", "--set", "model.n_layers=2",
        "--set", "model.dropout=0.0", "--set", "data.block_size=30", "--set", "data.vocab_size=150",
        "--set", "train.batch_size=16", "--set", "train.eval_every=20", "--set", "train.progress=false",
        "--set", "train.tensorboard=false", "--set", "train.curves=false", "--set", "train.lr=3e-3",
        "--set", "train.warmup_steps=10", "--set", "train.precision='fp32'"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    subjects, verbs = ["the cat", "a dog", "my friend", "the teacher"], ["sees", "likes", "finds", "watches"]
    objects = ["the sun", "a tree", "the river", "an old house"]
    lines = [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} every morning.\n" for _ in range(1500)]
    path = tmp_path_factory.mktemp("mlm") / "corpus.txt"
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("mlm-run") / "run"
    assert main(["train", "mlm", "--text", str(corpus), "--out", str(run), "--max-steps", "60", *TINY]) == 0
    return run


def test_training_writes_consistent_figures(trained):
    m = json.loads((trained / "metrics.json").read_text())
    data = json.loads((trained / "data.json").read_text())
    assert m["steps"] == 60 and m["vocab_size"] == data["vocab_size"] <= 150
    assert m["val_perplexity"] == pytest.approx(math.exp(m["val_loss"]))
    assert m["val_loss"] < 0.85 * math.log(m["vocab_size"])  # well under a uniform guess already
    # Every whole block of the validation text ([CLS] and [SEP] never chosen): about 15 % of its tokens.
    scored = (data["valid_tokens"] - 1) // 30 * 30
    assert m["val_masked_tokens"] == pytest.approx(0.15 * scored, rel=0.25)
    tokenizer = json.loads((trained / "tokenizer.json").read_text())
    assert [t["content"] for t in tokenizer["added_tokens"]] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert json.loads((trained / "checkpoints/best/config.json").read_text())["model_class"] == "MaskedLM"


def test_eval_on_the_validation_text_gives_the_runs_figures(trained, corpus, tmp_path, capsys):
    text = corpus.read_text(encoding="utf-8")
    tail = tmp_path / "tail.txt"
    tail.write_text(text[int(len(text) * 0.9):], encoding="utf-8")  # the validation split's characters
    code, out, err = run_cli("eval", trained, "--text", tail, capsys=capsys)
    assert code == 0, err
    scores, m = json.loads(out), json.loads((trained / "metrics.json").read_text())
    assert scores["loss"] == pytest.approx(m["val_loss"], rel=1e-5)  # the same fixed masking
    assert scores["accuracy"] == m["val_accuracy"] and scores["masked_tokens"] == m["val_masked_tokens"]
    assert scores["unknown_tokens"] == 0
    tail.write_text("the cat sees the sun.\n")
    code, out, err = run_cli("eval", trained, "--text", tail, capsys=capsys)
    assert code == 2 and "the model reads blocks of 30" in err and len(err.strip().splitlines()) == 1


def test_predict_lists_the_likeliest_fillers_of_each_mask(trained, capsys):
    code, out, err = run_cli("predict", trained, "the cat [MASK] a tree every [MASK].", "--top-k", 3, capsys=capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "the cat [MASK] a tree every [MASK]." and len(lines) == 3
    for n, line in enumerate(lines[1:], 1):
        assert line.startswith(f"  [MASK] {n}: ")
        fillers = [piece.rsplit(" ", 1) for piece in line.split(": ", 1)[1].split(", ")]
        probabilities = [float(p) for _, p in fillers]
        assert len(fillers) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1.0005 and not any(t.startswith("[") for t, _ in fillers)
    code, out, _ = run_cli("predict", trained, "[MASK] dog", capsys=capsys)
    assert code == 0 and out.count(",") == 4  # five by default


@pytest.mark.parametrize("text, message", [
    ("the cat sees the sun", "no [MASK] in 'the cat sees the sun'"),
    ("[MASK] " + "cat " * 40, "'[MASK] cat cat cat cat cat cat cat cat c…' has 41 tokens; this model reads at most 30"),
    ("   ", "nothing to predict: give the texts as arguments"),  # not a silent success
])
def test_predict_refuses_bad_input_in_one_line(trained, capsys, text, message):
    code, out, err = run_cli("predict", trained, text, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and out == ""


@pytest.mark.parametrize("positional", ["sinusoidal", "relative"])
def test_whole_word_masking_and_other_positions_train(corpus, tmp_path, capsys, positional):
    run = tmp_path / "wwm"
    code, _, err = run_cli("train", "mlm", "--text", corpus, "--out", run, "--max-steps", 3, *TINY,
                           "--set", "data.whole_word_masking=true", "--set", "data.vocab_size=40",
                           "--set", f"model.positional='{positional}'", "--set", "model.max_relative_position=4",
                           capsys=capsys)
    assert code == 0, err
    config = json.loads((run / "checkpoints/best/config.json").read_text())
    assert config["positional"] == positional and config["max_len"] == 32 and config["max_relative_position"] == 4
    code, out, err = run_cli("predict", run, "the [MASK] sees a tree", capsys=capsys)
    assert code == 0 and out.count("[MASK] 1: ") == 1, err


@pytest.mark.parametrize("args, message", [
    (["train", "mlm"], "train mlm needs a text to pre-train on: --text FILE"),
    (["train", "mlm", "--text", "missing.txt"], "not found"),
    (["train", "mlm", "--text", "short.txt"], "a block of 62 needs at least 63"),
    (["train", "mlm", "--text", "short.txt", "--set", "data.mask_probability=1.5"], "data.mask_probability must be in"),
    (["train", "mlm", "--set", "model.positional='rotary'"], "model.positional must be one of"),
    (["train", "mlm", "--set", "parallel.tp=2"], "train mlm runs data parallel only"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "short.txt").write_text("the cat sees the sun every morning.\n")
    code, out, err = run_cli(*args, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_shipped_recipe_loads():
    config = load_config(masked_lm.MLMConfig, "mlm-tiny")
    assert config.model.positional == "learned" and config.data.mask_probability == 0.15


def test_the_predictor_from_python(trained):
    import seqlab
    import torch

    mlm = seqlab.load(trained)
    fills = mlm.fill("the cat [MASK] a tree", top_k=2)
    assert len(fills) == 1 and len(fills[0]) == 2
    # a top_k past the vocabulary lists every ordinary token, never a special one ([CLS], [PAD], ...)
    everything = mlm.fill("the cat [MASK] a tree", top_k=10**6)[0]
    specials = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"}
    assert len(everything) == mlm.tokenizer.get_vocab_size() - len(specials)
    assert not specials & {token for token, _ in everything}
    maps = mlm.attention("the cat sees")  # [CLS] the cat sees [SEP]
    assert len(maps) == 2 and maps[0].shape == (4, 5, 5)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(4, 5))


def test_the_explorer_shows_the_fillers_and_the_self_attention(trained):
    from seqlab.tasks.task import Request, get

    task = get("mlm")
    mlm = task.load(trained)
    shown = task.explore(mlm, Request(text="the cat [MASK] a tree"))
    assert shown["output"].startswith("[MASK] 1: ") and len(shown["output"].split("  ")) == 5
    attention = shown["views"]["self-attention"]
    assert attention["queries"] == ["[CLS]", "the", "cat", "[MASK]", "a", "tree", "[SEP]"]
    assert len(attention["weights"]) == 2 and len(attention["weights"][0][0]) == 7
    assert task.explore(mlm, Request(text="the cat"))["output"].startswith("write [MASK]")
    assert task.input_limit(mlm) == 30


def test_the_explorer_opens_on_the_validation_text_with_a_word_masked(trained, corpus):
    """It opened on "hello", saying the run keeps no example, though every run keeps valid.bin."""
    import re

    from seqlab.tasks.task import Request, get

    task = get("mlm")
    mlm = task.load(trained)
    example = task.explore_example(mlm, trained)
    assert example["source"] == "the opening of the validation text, one word masked"
    words = re.findall(r"\[MASK\]|\w+|[^\w\s]", example["text"])
    assert words.count("[MASK]") == 1 and 8 <= len(words) <= 16, example
    text = corpus.read_text(encoding="utf-8")
    opening = re.findall(r"\w+|[^\w\s]", text[int(len(text) * 0.9):][:200].lower())  # the validation split's
    pattern = words[1:]  # the first word may be the end of one the split cut
    assert any(all(w in ("[MASK]", o) for w, o in zip(pattern, opening[i:i + len(pattern)]))
               for i in range(len(opening) - len(pattern))), (example, opening)
    assert task.explore(mlm, Request(text=example["text"]))["output"].startswith("[MASK] 1: ")


def test_the_loss_is_the_mean_over_the_chosen_positions_only():
    import torch

    logits = torch.randn(2, 5, 7)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[1, 4], labels[1, 0] = 3, 6, 0
    def model(x, chosen):  # the head's output at the chosen positions only, as MaskedLM gives it
        return logits[chosen]

    loss, n = masked_lm.mlm_loss(model, {"x": torch.zeros(2, 5, dtype=torch.long), "labels": labels})
    picked = [logits[0, 1].log_softmax(-1)[3], logits[1, 4].log_softmax(-1)[6], logits[1, 0].log_softmax(-1)[0]]
    assert n == 3 and loss.item() == pytest.approx(-sum(p.item() for p in picked) / 3, rel=1e-5)
    loss, n = masked_lm.mlm_loss(model, {"x": labels, "labels": torch.full((2, 5), -100)})
    assert n == 0 and loss.item() == 0.0  # a batch with nothing chosen: no NaN, weight 0
