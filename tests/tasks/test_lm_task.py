"""The language-model task end to end on generated text: it learns, its figures are consistent,
resume equals an uninterrupted run, and generation streams from the command line."""

import json
import math
import random

import pytest
import torch

from seqlab.config import load_config
from seqlab.tasks import language_model as lm
from cli_run import run_cli

TINY = ["--set", "model.d_model=32", "--set", "model.n_heads=4", "--set", "model.n_layers=2",
        "--set", "data.block_size=32", "--set", "train.batch_size=16", "--set", "train.eval_every=20",
        "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.lr=3e-3",
        "--set", "train.warmup_steps=10"]


@pytest.fixture()
def corpus(tmp_path):
    """Sentences from a tiny grammar: far more predictable than its 20-odd characters' uniform entropy."""
    rng = random.Random(0)
    subjects, verbs, objects = ["the cat", "a dog", "my friend"], ["sees", "likes", "finds"], ["the sun", "a tree"]
    lines = [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.\n" for _ in range(1500)]
    path = tmp_path / "corpus.txt"
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.mark.compiles
def test_train_lm_learns_and_generates(tmp_path, corpus, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli("train", "lm", "--text", corpus, "--out", run, "--max-steps", 120, *TINY, capsys=capsys)
    assert code == 0, err
    m = json.loads((run / "metrics.json").read_text())
    uniform = math.log(m["vocab_size"])
    assert m["val_loss"] < 0.5 * uniform  # learned the grammar's regularities
    assert m["val_bits_per_char"] == pytest.approx(m["val_loss"] / math.log(2))  # char: a token is a char
    assert m["val_perplexity"] == pytest.approx(math.exp(m["val_loss"]))
    assert (run / "train.bin").is_file() and (run / "tokenizer.json").is_file() and (run / "curves.png").is_file()
    assert (run / "attention.png").is_file()

    # eval on the validation text alone (the last 10 % of the characters) gives the run's val_loss.
    text = corpus.read_text(encoding="utf-8")
    tail = tmp_path / "tail.txt"
    tail.write_text(text[int(len(text) * 0.9):], encoding="utf-8")
    code, out, err = run_cli("eval", run, "--text", tail, capsys=capsys)
    assert code == 0, err
    scores = json.loads(out)
    assert scores["loss"] == pytest.approx(m["val_loss"], rel=1e-5) and scores["unknown_tokens"] == 0
    assert scores["bits_per_char"] == pytest.approx(m["val_bits_per_char"], rel=1e-5) and "note" not in err
    tail.write_text("日本語" * 20, encoding="utf-8")  # no character the run has seen: all one <unk>, said on stderr
    code, out, err = run_cli("eval", run, "--text", tail, capsys=capsys)
    assert code == 0 and json.loads(out)["unknown_tokens"] == 60, err
    assert "note: 60 of the 60 tokens" in err and "lower than the text deserves" in err, err
    tail.write_text("the cat sees the sun.\n")
    code, _, err = run_cli("eval", run, "--text", tail, capsys=capsys)
    assert code == 2 and "has 22 tokens; the model reads blocks of 32" in err

    code, out, err = run_cli("generate", run, "--prompt", "the cat", "--max-new-tokens", 40, "--seed", 1,
                             "--top-k", 5, capsys=capsys)
    assert code == 0, err
    assert out.startswith("the cat") and len(out) > 20
    code, again, _ = run_cli("generate", run, "--prompt", "the cat", "--max-new-tokens", 40, "--seed", 1,
                             "--top-k", 5, capsys=capsys)
    assert again == out  # --seed makes sampling repeatable
    code, compiled, err = run_cli("generate", run, "--prompt", "the cat", "--max-new-tokens", 40, "--seed", 1,
                                  "--top-k", 5, "--compile", capsys=capsys)
    assert code == 0 and compiled == out, err  # the compiled step draws the same tokens


# The masked language model streams its text the same way; its batches are masked as a function of
# (seed, n), and its dropout (on by default) draws from the random state the checkpoint restores.
@pytest.mark.parametrize("task, extra", [("lm", []), ("mlm", ["--set", "data.vocab_size=120"])])
def test_resume_equals_an_uninterrupted_run(tmp_path, corpus, capsys, task, extra):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    pinned = ["--set", "train.precision='fp32'", *extra]  # "auto" could choose differently in the two runs
    assert run_cli("train", task, "--text", corpus, "--out", whole, "--max-steps", 40, *TINY, *pinned,
                   capsys=capsys)[0] == 0
    # Same config (the schedule spans 40 steps), stopped after 20, then resumed.
    assert run_cli("train", task, "--text", corpus, "--out", parts, "--max-steps", 40, *TINY, *pinned,
                   "--set", "train.max_time=1e-9", capsys=capsys)[0] == 0
    assert json.loads((parts / "metrics.json").read_text())["steps"] < 40
    corpus.rename(tmp_path / "moved.txt")  # the run holds its ids: resuming reads no text
    code, _, err = run_cli("train", task, "--resume", parts, "--set", "train.max_time=0", capsys=capsys)
    assert code == 0, err
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (whole, parts))
    assert a["steps"] == b["steps"] == 40
    assert a["val_loss"] == b["val_loss"]


def test_bpe_tokenizer_and_recurrent_arch(tmp_path, corpus, capsys):
    run = tmp_path / "bpe"
    code, _, err = run_cli("train", "lm", "--text", corpus, "--out", run, "--max-steps", 20, *TINY,
                           "--set", "data.tokenizer='bpe'", "--set", "data.vocab_size=300",
                           "--set", "model.arch='gru'", capsys=capsys)
    assert code == 0, err
    m = json.loads((run / "metrics.json").read_text())
    data = json.loads((run / "data.json").read_text())
    assert data["valid_tokens"] < data["valid_characters"]  # BPE pieces span several characters
    # bits per character = nats per token × tokens / characters / ln 2
    expected = m["val_loss"] * data["valid_tokens"] / data["valid_characters"] / math.log(2)
    assert m["val_bits_per_char"] == pytest.approx(expected)
    code, out, _ = run_cli("generate", run, "--prompt", "a dog", "--max-new-tokens", 10, "--seed", 0, capsys=capsys)
    assert code == 0 and out.startswith("a dog")


@pytest.mark.parametrize("args, message", [
    (["train", "lm", "--text", "missing.txt"], "not found"),
    (["train", "lm", "--src", "a.txt"], "not a flag of train lm"),
    (["train", "lm", "--set", "data.tokenizer='wordpiece'"], "data.tokenizer must be one of"),
    (["train", "lm", "--set", "model.arch='lstm2'"], "model.arch must be one of"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*args, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_generate_flags_are_checked(tmp_path, corpus, capsys, monkeypatch):
    run = tmp_path / "run"
    assert run_cli("train", "lm", "--text", corpus, "--out", run, "--max-steps", 2, *TINY, capsys=capsys)[0] == 0
    for flags, message in [(["--top-p", "1.5"], "top_p"), (["--temperature", "-1"], "temperature"),
                           (["--max-new-tokens", "-3"], "max_new_tokens"),
                           (["--seed", "999999999999999999999999"], "--seed must be in")]:
        code, out, err = run_cli("generate", run, "--prompt", "the", *flags, capsys=capsys)
        assert code == 2 and message in err and out == "", (out, err)  # refused before the prompt is echoed
    code, out, err = run_cli("generate", run, "--prompt", "Z€ the", "--max-new-tokens", 3, capsys=capsys)
    assert code == 0 and out.startswith("Z€ the") and "lacks 2 piece(s) of the prompt ('Z', '€')" in err
    code, _, err = run_cli("generate", tmp_path, capsys=capsys)
    assert code == 2 and "not a seqlab run" in err

    def broken_compile(*args, **kwargs):  # torch.compile failing (no C++ compiler, say): one line
        def fail(*args):
            raise RuntimeError("no C++ compiler found\nthe details")
        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    code, _, err = run_cli("generate", run, "--prompt", "the", "--compile", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "could not build the decoding step" in err, err


def test_shipped_recipes_load():
    for name in ("shakespeare-char-77s", "shakespeare-char-quick", "shakespeare-char-60min", "lm-python-stdlib"):
        config = load_config(lm.LMConfig, name)
        assert config.model.arch == "transformer" and config.train.label_smoothing == 0.0


def test_setting_one_train_key_keeps_the_tasks_other_defaults():
    config = load_config(lm.LMConfig, None, ["train.max_steps=7"])
    assert config.train.max_steps == 7
    assert config.train.label_smoothing == 0.0 and config.train.betas == (0.9, 0.99)  # the LM's, not TrainConfig's
