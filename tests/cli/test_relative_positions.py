"""``--set model.positional=relative`` (Shaw et al., 2018) through the command line, for every task whose
Transformer has a ``positional`` choice: a few training steps, then the model answers."""

import json
import random

import pytest

from seqlab.cli.main import main

QUIET = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--max-steps", "6"]
SMALL = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--set", "model.d_ff=32",
         "--set", "train.batch_size=8", "--set", "train.eval_every=3"]


def translate_args(data):
    words = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"] * 6
    (data / "a.txt").write_text("\n".join(words) + "\n")
    (data / "b.txt").write_text("\n".join(w[::-1] for w in words) + "\n")
    return (["translate", "--src", data / "a.txt", "--tgt", data / "b.txt", "--set", "data.tokenizer='char'",
             "--set", "data.max_len=24", "--set", "decode.max_output_len=8", "--set", "decode.beam_size=2"],
            ["translate", "{run}", "hello"])


def lm_args(data):
    rng = random.Random(0)
    lines = [f"{rng.choice(['the cat', 'a dog'])} {rng.choice(['sees', 'likes'])} the sun.\n" for _ in range(300)]
    (data / "corpus.txt").write_text("".join(lines))
    return (["lm", "--text", data / "corpus.txt", "--set", "data.block_size=16"],
            ["generate", "{run}", "--prompt", "the ", "--max-new-tokens", "20", "--seed", "1"])


def classify_args(data):
    rng = random.Random(0)
    rows = [(" ".join(rng.sample("the a film story plot was is and".split(), 4) + [("great" if i % 2 else "dull")]),
             "pos" if i % 2 else "neg") for i in range(80)]
    (data / "reviews.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    return (["classify", "--csv", data / "reviews.csv", "--model", "transformer", "--set", "model.pool='cls'"],
            ["predict", "{run}", "a great film"])


TASKS = {"translate": translate_args, "lm": lm_args, "classify": classify_args}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_train_with_relative_positions_then_use_the_model(task, tmp_path, capsys):
    train, use = TASKS[task](tmp_path)
    run = tmp_path / "run"
    code = main([str(a) for a in ["train", *train, *SMALL, *QUIET, "--out", run,
                                  "--set", "model.positional=relative", "--set", "model.max_relative_position=3"]])
    err = capsys.readouterr().err
    assert code == 0, err
    config = json.loads((run / "checkpoints" / "best" / "config.json").read_text())
    assert config["positional"] == "relative" and config["max_relative_position"] == 3
    code = main([str(a).replace("{run}", str(run)) for a in use])
    out, err = capsys.readouterr()
    assert code == 0 and out.endswith("\n"), err  # an answer (six steps in, an empty translation is fine)
    if task == "lm":  # compiled decoding reads positions from a table: refused before anything is written
        code = main([str(a).replace("{run}", str(run)) for a in use] + ["--compile"])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (out, err)
        assert "compiled decoding supports learned and sinusoidal positions" in err and "'relative'" in err


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_bad_clipping_distance_is_one_line_and_exit_2(task, tmp_path, capsys):
    train, _ = TASKS[task](tmp_path)
    code = main([str(a) for a in ["train", *train, *SMALL, *QUIET, "--out", tmp_path / "run",
                                  "--set", "model.positional=relative", "--set", "model.max_relative_position=0"]])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model.max_relative_position" in err, err
