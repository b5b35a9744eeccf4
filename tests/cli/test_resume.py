"""``seqlab train --resume`` from the command line: from another working directory, past a pause,
and what it refuses."""

import json

from cli_run import run_cli

TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
        "--set", "model.d_ff=32", "--set", "data.tokenizer='char'", "--set", "train.batch_size=8",
        "--set", "train.eval_every=5", "--set", "train.progress=false", "--set", "train.tensorboard=false",
        "--set", "train.curves=false", "--set", "decode.beam_size=1", "--set", "decode.max_output_len=8",
        "--max-steps", "10"]


def corpus(directory):
    directory.mkdir()
    words = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "zebra"] * 5
    (directory / "train.src").write_text("\n".join(words) + "\n")
    (directory / "train.tgt").write_text("\n".join(w[::-1] for w in words) + "\n")


def test_a_paused_run_with_relative_paths_resumes_from_another_directory(tmp_path, monkeypatch, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    corpus(a)
    b.mkdir()
    monkeypatch.chdir(a)
    code, _, err = run_cli("train", "translate", "--src", "train.src", "--tgt", "train.tgt", "--out", "run", *TINY,
                           "--set", "train.stop_at_step=5", capsys=capsys)
    assert code == 0, err
    data = json.loads((a / "run" / "run.json").read_text())["config"]["data"]
    assert data["src"] == str(a / "train.src") and data["tgt"] == str(a / "train.tgt")
    assert data["valid_src"] == ""  # an unset path stays unset
    assert json.loads((a / "run" / "metrics.json").read_text())["steps"] == 5

    monkeypatch.chdir(b)  # the data's relative paths mean nothing here
    code, _, err = run_cli("train", "translate", "--resume", a / "run", capsys=capsys)
    assert code == 0, err
    assert json.loads((a / "run" / "metrics.json").read_text())["steps"] == 10  # not paused at 5 again
    steps = [json.loads(line)["step"] for line in (a / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10]  # the evaluations, each once


def test_out_and_overwrite_are_refused_with_resume(tmp_path, capsys):
    for flags in (["--out", tmp_path / "elsewhere"], ["--overwrite"]):
        code, _, err = run_cli("train", "translate", "--resume", tmp_path / "run", *flags, capsys=capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert f"{flags[0]} does not go with --resume" in err, err
    assert not (tmp_path / "elsewhere").exists()


def test_sigterm_before_the_first_evaluation_leaves_a_run_that_resumes_from_that_step(tmp_path, monkeypatch, capsys):
    import os
    import signal

    from seqlab.train import checkpoint
    from seqlab.train.loop import Trainer

    corpus(tmp_path / "data")
    run = tmp_path / "run"
    real_step = Trainer._step

    def step_then_sigterm(self):
        if self.progress.step == 2:  # during step 3; the first evaluation is at step 5
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(self)

    monkeypatch.setattr(Trainer, "_step", step_then_sigterm)
    code, _, err = run_cli("train", "translate", "--src", tmp_path / "data" / "train.src", "--tgt",
                           tmp_path / "data" / "train.tgt", "--out", run, *TINY, capsys=capsys)
    assert code == 130 and f"seqlab train translate --resume {run}" in err, err
    assert checkpoint.load_state(run / "checkpoints" / "last")["progress"]["step"] == 3
    monkeypatch.setattr(Trainer, "_step", real_step)

    starts = []  # the step each resume continued from
    real_resume = Trainer.resume

    def resume(self):
        resumed = real_resume(self)
        starts.append(self.progress.step if resumed else None)
        return resumed

    monkeypatch.setattr(Trainer, "resume", resume)
    code, _, err = run_cli("train", "translate", "--resume", run, capsys=capsys)
    assert code == 0 and starts == [3], err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 10
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10]


def test_a_resume_refuses_other_data_and_keeps_the_run(tmp_path, monkeypatch, capsys):
    """--src, --tgt or a --set data.… that differs from the run's would train the saved model and
    tokenizers on other data (or be quietly ignored): refused in one line, the run untouched. The same
    data, named by a relative path, resumes."""
    corpus(tmp_path / "a")
    (tmp_path / "a" / "other.src").write_text("other\nlines\n")
    monkeypatch.chdir(tmp_path / "a")
    assert run_cli("train", "translate", "--src", "train.src", "--tgt", "train.tgt", "--out", "run", *TINY,
                   "--set", "train.stop_at_step=5", capsys=capsys)[0] == 0
    run = tmp_path / "a" / "run"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for flags, named in [(["--src", "other.src"], "--src"), (["--set", "data.tokenizer='word'"], "--set data.tokenizer"),
                         (["--set", "data.valid_fraction=0.2"], "--set data.valid_fraction")]:
        code, _, err = run_cli("train", "translate", "--resume", run, *flags, capsys=capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"{named} does not go with --resume" in err and "the data it started with" in err, err
    code, _, err = run_cli("train", "translate", "--resume", run, "--set", "model.arch='conv'", capsys=capsys)
    assert code == 2 and "--set model.arch does not go with --resume" in err and err.strip().endswith("goes on training its transformer model; train a new run (--out) "
                                              "for another") and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    code, _, err = run_cli("train", "translate", "--resume", run, "--src", "train.src", "--set", "data.tokenizer='char'",
                           capsys=capsys)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 10
