"""The command line: the translate task end to end on a tiny corpus, and every bad input
answered with one line on stderr and exit status 2."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seqlab.cli.main import main
from cli_run import run_cli

TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
        "--set", "model.d_ff=32", "--set", "data.tokenizer='char'", "--set", "train.batch_size=8",
        "--set", "train.eval_every=10", "--set", "train.progress=false", "--set", "train.tensorboard=false",
        "--set", "decode.beam_size=2", "--set", "decode.max_output_len=12", "--max-steps", "20"]


def write(path: Path, lines, encoding="utf-8") -> Path:
    path.write_bytes("\n".join(lines).encode(encoding) + b"\n")
    return path


@pytest.fixture()
def corpus(tmp_path):
    words = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"] * 6
    src = write(tmp_path / "train.src", words)
    tgt = write(tmp_path / "train.tgt", [w[::-1] for w in words])
    return src, tgt


def test_train_translate_eval_and_resume(tmp_path, corpus, capsys):
    src, tgt = corpus
    run = tmp_path / "run"
    code, out, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", run, *TINY, capsys=capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("bleu", "bleu_lowercase", "exact_match", "val_perplexity", "val_token_accuracy", "train_seconds",
                "perplexity", "word_perplexity"):
        assert key in metrics
    assert (run / "src_tokenizer.json").is_file() and (run / "checkpoints" / "best" / "model.safetensors").is_file()
    assert (run / "curves.png").is_file()  # every trained run draws its curves
    assert (run / "cross_attention.png").is_file()
    assert json.loads((run / "run.json").read_text())["task"] == "translate"

    code, out, err = run_cli("translate", run, "hello", "--beam", "1", capsys=capsys)
    assert code == 0 and len(out.splitlines()) == 1
    # Flags between the run and the texts, or among the texts: every text is still translated.
    code, between, err = run_cli("translate", run, "--beam", "1", "hello", "world", capsys=capsys)
    assert code == 0 and between.splitlines()[0] == out.strip() and len(between.splitlines()) == 2, err
    code, _, err = run_cli("translate", run, "hello", "--beam", "1", "world", capsys=capsys)
    assert code == 0 and len(_.splitlines()) == 2, err
    code, _, err = run_cli("translate", run, "hel☃lo", "Z☃", capsys=capsys)  # characters never seen
    assert code == 0 and "lacks 3 piece(s) of the input ('☃', 'Z')" in err, err
    for command in (["translate", run, "hello"], ["eval", run, "--src", src, "--ref", tgt]):  # a beam too wide
        code, _, err = run_cli(*command, "--beam", str(10**23), capsys=capsys)  # for torch's int64 too
        assert code == 2 and err.endswith(f"error: --beam must be between 1 and 256; got {10**23}\n"), err
    code, _, err = run_cli("translate", run, "--bogus", "hello", capsys=capsys)  # argparse's own exit, status 2
    assert code == 2 and "unrecognized arguments: --bogus" in err
    code, out, _ = run_cli("eval", run, "--src", src, "--ref", tgt, capsys=capsys)
    scores = json.loads(out)
    assert code == 0 and scores["word_perplexity"] > 1 and "bleu" in scores
    # A reference longer than the trained model's max_len: one line, and no --set hint (eval has none).
    long_ref = write(tmp_path / "long.tgt", ["y" * 300] + [w[::-1] for w in src.read_text().split()][1:])
    code, _, err = run_cli("eval", run, "--src", src, "--ref", long_ref, capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "reference sentence 1" in err
    assert "trained model's limit" in err and "--set" not in err

    # Resume a finished run with a longer budget: continues from step 20.
    code, _, err = run_cli("train", "translate", "--resume", run, "--max-steps", "30", capsys=capsys)
    assert code == 0, err
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 30
    assert json.loads((run / "run.json").read_text())["config"]["train"]["max_steps"] == 30  # the config it ended with

    # Resuming with another model shape is refused before anything is touched.
    before = (run / "checkpoints" / "last" / "model.safetensors").read_bytes()
    code, _, err = run_cli("train", "translate", "--resume", run, "--set", "model.d_model=32", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "another model config" in err
    assert (run / "checkpoints" / "last" / "model.safetensors").read_bytes() == before
    assert json.loads((run / "run.json").read_text())["config"]["model"]["d_model"] == 16


@pytest.mark.parametrize("arch", ["simple", "context", "attention", "conv"])
def test_every_architecture_trains_and_translates(arch, tmp_path, corpus, capsys):
    src, tgt = corpus
    run = tmp_path / arch
    sizes = ["--set", "model.rnn.hidden_size=16", "--set", "model.rnn.embed_dim=8", "--set", "model.conv.hidden_size=16",
             "--set", "model.conv.embed_dim=8", "--set", "model.conv.n_layers=2",
             "--set", "model.rnn.teacher_forcing_end=0.5", "--set", "model.rnn.teacher_forcing_schedule='linear'"]
    code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", run, *TINY,
                           "--set", f"model.arch='{arch}'", *sizes, capsys=capsys)
    assert code == 0, err
    assert json.loads((run / "checkpoints" / "best" / "config.json").read_text())["model_class"] in (
        "Seq2Seq", "ConvSeq2Seq")
    code, out, err = run_cli("translate", run, "hello", capsys=capsys)
    assert code == 0 and len(out.splitlines()) == 1, err


BAD_INPUTS = {
    "missing file": (["--src", "nope.txt", "--tgt", "{tgt}"], "file not found"),
    "empty file": (["--src", "{empty}", "--tgt", "{tgt}"], "is empty"),
    "not utf-8": (["--src", "{latin1}", "--tgt", "{tgt}"], "not valid utf-8"),
    "line counts": (["--src", "{short}", "--tgt", "{tgt}"], "lines but"),
    "unknown key": (["--src", "{src}", "--tgt", "{tgt}", "--set", "model.d_modle=3"], "unknown config key 'model.d_modle'"),
    "bad value": (["--src", "{src}", "--tgt", "{tgt}", "--set", "train.precision='fp8'"], "train.precision must be one of"),
    "bad type": (["--src", "{src}", "--tgt", "{tgt}", "--set", "model.d_model='big'"], "model.d_model must be an int"),
    "heads": (["--src", "{src}", "--tgt", "{tgt}", "--set", "model.n_heads=3"], "divisible"),
    "too long": (["--src", "{src}", "--tgt", "{tgt}", "--set", "data.max_len=3", "--set", "data.tokenizer='char'"],
                 "data.max_len is 3"),
    "no data": ([], "no training data"),
    "local needs attention": (["--src", "{src}", "--tgt", "{tgt}", "--set", "model.arch='simple'",
                               "--set", "model.rnn.window=2"], "needs model.arch='attention'"),
    "unknown arch": (["--src", "{src}", "--tgt", "{tgt}", "--set", "model.arch='lstm'"], "model.arch must be one of"),
    "missing config": (["--config", "nope.toml"], "config file not found"),
    "unknown recipe": (["--config", "no-such-recipe"], "recipes: "),
    "bad flag value": (["--src", "{src}", "--tgt", "{tgt}", "--max-steps", "0"], "max_steps must be at least 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_training_input_is_one_line_and_exit_2(case, tmp_path, corpus, capsys):
    src, tgt = corpus
    files = {"src": src, "tgt": tgt, "empty": write(tmp_path / "empty.txt", []),
             "latin1": write(tmp_path / "latin1.txt", ["café"] * 60, "latin-1"),
             "short": write(tmp_path / "short.txt", ["a"] * 5)}
    args, expected = BAD_INPUTS[case]
    args = [a.format(**files) for a in args]
    code, out, err = run_cli("train", "translate", *TINY[-2:], *args, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert expected.lower() in err.lower(), err
    assert not (tmp_path / "run").exists()


def test_the_current_directory_is_never_a_new_run(tmp_path, corpus, capsys, monkeypatch):
    """--out "" (a Path of "."), ".", or a folder above: refused, with --overwrite too, even where the
    current directory is a seqlab run (--overwrite removed the directory the command stood in)."""
    src, tgt = corpus
    here = tmp_path / "here"
    here.mkdir()
    (here / "run.json").write_text("{}")
    (here / "notes.txt").write_text("precious")
    monkeypatch.chdir(here)
    for out in ("", ".", str(tmp_path)):
        for extra in ([], ["--overwrite"]):
            code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", out, *extra, *TINY,
                                   capsys=capsys)
            assert code == 2 and "is the current directory or holds it" in err, err
    assert (here / "notes.txt").read_text() == "precious"


def test_existing_run_directory_is_not_overwritten(tmp_path, corpus, capsys):
    src, tgt = corpus
    run = tmp_path / "run"
    run.mkdir()  # an empty folder is used as it is
    code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", run, *TINY, capsys=capsys)
    assert code == 0 and (run / "run.json").is_file(), err
    code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", run, *TINY, capsys=capsys)
    assert code == 2 and f"--resume {run} to continue it" in err, err  # train can go on with it
    code, _, err = run_cli("train", "translate", "--resume", run, "--config", "multi30k-de-en", capsys=capsys)
    assert code == 2 and "--config does not go with --resume" in err and len(err.strip().splitlines()) == 1, err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    for extra in ([], ["--overwrite"]):
        code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", mine, *extra,
                               *TINY, capsys=capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1
    assert (mine / "notes.txt").read_text() == "precious"
    # --out naming a file: one clear line (it was the system's "[Errno 20] Not a directory" with
    # --overwrite, and advice to pass --overwrite without it), the file kept
    for extra in ([], ["--overwrite"]):
        code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", mine / "notes.txt",
                               *extra, *TINY, capsys=capsys)
        assert code == 2 and err.strip().endswith("notes.txt is a file, not a directory seqlab wrote; give --out "
                                                  "a new directory"), err
    assert (mine / "notes.txt").read_text() == "precious"


def test_run_commands_refuse_what_is_not_a_run(tmp_path, capsys):
    code, _, err = run_cli("translate", tmp_path, "x", capsys=capsys)
    assert code == 2 and "not a seqlab run directory" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "translate", "--bogus"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and "--bogus" in err
    for command in (["train", "lm", "--text", "corpus.txt"], ["eval", "run", "--text", "corpus.txt"]):
        with pytest.raises(SystemExit) as exit_info:  # a stray word after a --text FILE: one line, no traceback
            main([*command, "stray"])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "unrecognized arguments: stray" in err


def test_paths_that_cannot_be_written_are_one_line(tmp_path, corpus, capsys):
    src, tgt = corpus
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", blocker / "run", *TINY,
                           capsys=capsys)
    assert code == 2 and "cannot create the run directory" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("data", "download", "mr", "--out", blocker / "mr", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_interrupted_run_says_how_to_resume_it(tmp_path, corpus, capsys, monkeypatch):
    src, tgt = corpus

    def interrupted(self, config, run, data, **options):
        if saved:
            (run / saved).mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr("seqlab.tasks.translate.TranslateTask.train", interrupted)
    for name, saved, expected in (("a", "checkpoints", f"seqlab train translate --resume {tmp_path / 'a'}"),
                                  ("b", "logs", "before the first checkpoint"),
                                  ("c", None, "before anything was saved")):
        code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out",
                               tmp_path / name, *TINY, capsys=capsys)
        assert code == 130 and expected in err, err
        assert (tmp_path / name).exists() == bool(saved)  # a directory left empty is removed


def test_overwrite_replaces_the_old_run_only_when_the_new_one_stands(tmp_path, corpus, capsys, monkeypatch):
    """--overwrite sets the old run aside: a new run that fails, or is interrupted, before its first
    checkpoint gives it back; one that finishes, or keeps a checkpoint, deletes it."""
    from seqlab.errors import DataError
    from seqlab.tasks.translate import TranslateTask

    src, tgt = corpus
    run, aside = tmp_path / "run", tmp_path / ".run.replaced"
    train = TranslateTask.train
    code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", run, *TINY, capsys=capsys)
    assert code == 0, err
    old = (run / "run.json").read_text()

    def fails(self, config, run, data, **options):
        (run / "run.json").write_text('{"task": "translate", "config": {}}')
        if saved:
            (run / "checkpoints").mkdir()
        raise failure

    monkeypatch.setattr(TranslateTask, "train", fails)
    for failure, saved, code_expected, old_back in ((DataError("a sentence is too long"), False, 2, True),
                                                    (KeyboardInterrupt(), False, 130, True),
                                                    (KeyboardInterrupt(), True, 130, False)):
        code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", run, "--overwrite",
                               "--set", "train.seed=7", *TINY, capsys=capsys)
        assert code == code_expected, err
        assert ((run / "run.json").is_file() and (run / "run.json").read_text() == old) == old_back, err
        assert not aside.exists()
        if old_back and code == 130:
            assert f"{run} holds the run it held before" in err, err
        if not old_back:
            assert (run / "checkpoints").is_dir() and "--resume" in err  # the new run stays, resumable
    monkeypatch.setattr(TranslateTask, "train", train)
    code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", run, "--overwrite",
                           "--set", "train.seed=7", *TINY, capsys=capsys)
    assert code == 0 and '"seed": 7' in (run / "run.json").read_text() and not aside.exists(), err


def test_every_recipe_an_example_names_is_shipped():
    from seqlab.cli.parser import EXAMPLES

    named = {word for text in EXAMPLES.values() for word in re.findall(r"--config ([\w-]+)", text)}
    assert named  # the examples do name recipes
    for recipe in named:
        assert (Path(__file__).parents[2] / "src/seqlab/recipes" / f"{recipe}.toml").is_file(), recipe


def commands(parser, prefix=()):
    """Every command line the parser knows, down to ``train TASK`` and ``compare TASK``."""
    import argparse

    found = [list(prefix)] if prefix else []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += commands(sub, (*prefix, name))
    return found


def test_help_shows_an_example_for_every_command(capsys):
    """In this process (a process a command costs seconds of imports); ``python -m seqlab`` itself is
    run by the other tests here that start one."""
    from seqlab.cli.parser import build_parser

    every = commands(build_parser())
    assert ["compare", "lm"] in every and ["train", "detect"] in every and ["explore"] in every
    for command in every:
        with pytest.raises(SystemExit) as stop:
            main([*command, "--help"])
        out = capsys.readouterr().out
        example = out.split("example:\n", 1)[-1].split("\n")[0].strip()
        assert stop.value.code == 0 and example.startswith("seqlab " + command[0]), command
        if command[0] in ("train", "compare") and len(command) == 2:
            assert example.startswith(f"seqlab {command[0]} {command[1]}"), command
        if command[0] != "data" and command not in (["train"], ["compare"]):  # every command that computes
            assert "--threads N" in out, command


def test_sigterm_ends_training_like_ctrl_c_with_the_resume_line(tmp_path, corpus):
    """Schedulers stop jobs with SIGTERM: the run keeps its checkpoint and says how to resume, exit 130."""
    import signal
    import time

    src, tgt = corpus
    run = tmp_path / "run"
    command = [sys.executable, "-m", "seqlab", "train", "translate", "--src", str(src), "--tgt", str(tgt),
               "--out", str(run), *TINY[:-2], "--max-steps", "100000", "--set", "train.eval_every=5"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "last").is_dir() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"seqlab train translate --resume {run}" in err and "Traceback" not in err
    assert (run / "checkpoints" / "last").is_dir()


def test_threads_flag_sets_the_thread_count_and_refuses_zero(tmp_path, corpus, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        src, tgt = corpus
        code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", tmp_path / "run", *TINY,
                               "--threads", "1", capsys=capsys)
        assert code == 0, err
        assert torch.get_num_threads() == 1
        code, _, err = run_cli("train", "translate", "--src", src, "--tgt", tgt, "--out", tmp_path / "zero",
                               "--threads", "0", capsys=capsys)
        assert code == 2 and "--threads must be between 1 and 1024; got 0" in err and not (tmp_path / "zero").exists()
        code, _, err = run_cli("predict", tmp_path / "run", "hello", "--threads", "100000", capsys=capsys)
        assert code == 2 and "--threads must be between 1 and 1024; got 100000 (this machine has" in err
    finally:
        torch.set_num_threads(before)


def test_a_value_with_a_leading_minus_reaches_the_check_that_names_it(tmp_path, capsys):
    # argparse alone reads "-0.1,0.5" as a flag and answers "expected one argument" for --quantiles.
    series = tmp_path / "s.csv"
    series.write_text("date,OT\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n")
    for flag, value, named in (("--quantiles", "-0.1,0.5", "quantiles must lie strictly between 0 and 1; got -0.1"),
                               ("--split", "-7e-1,0.1,0.2", "--split must be 'ett' or three positive fractions"),
                               ("--horizon", "-5", "data.horizon at least 1")):
        code, _, err = run_cli("train", "forecast", "--csv", series, flag, value, "--out", tmp_path / "run",
                               capsys=capsys)
        assert code == 2 and named in err and err.count("\n") == 1, err
    code, _, err = run_cli("train", "forecast", "--csv", series, "--quantiles", "-x", capsys=capsys)
    assert code == 2 and "--quantiles: expected one argument" in err  # not a number: still taken for a flag
    assert not (tmp_path / "run").exists()


def test_an_interrupted_command_that_trains_nothing_says_only_that(tmp_path, capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM (handled as Ctrl-C), while generating

    monkeypatch.setitem(main.__globals__["COMMANDS"], "generate", interrupted)
    code, _, err = run_cli("generate", tmp_path / "lm", capsys=capsys)
    assert code == 130 and err == "\ninterrupted\n"
