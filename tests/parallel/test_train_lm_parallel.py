"""`seqlab train lm` on several processes (torchrun, 2 CPU ranks over gloo): each parallel mode
follows the one-process run step for step (same losses, same final weights; fp32, AdamW, clipping
on), and a run saved on N ranks resumes on M — here FSDP on 2 → pipeline on 2 → one process — and
still ends where the uninterrupted one-process run does. Every launch has a deadline."""

import json
import random
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from seqlab.cli.main import main

TINY = ["--set", "model.d_model=32", "--set", "model.n_heads=4", "--set", "model.n_layers=2",
        "--set", "model.tie_weights=false", "--set", "data.block_size=32", "--set", "train.batch_size=16",
        "--set", "train.eval_every=6", "--set", "train.progress=false", "--set", "train.tensorboard=false",
        "--set", "train.lr=3e-3", "--set", "train.warmup_steps=2", "--max-steps", "12",
        "--set", "train.precision='fp32'"]  # pinned: "auto" could choose differently in the runs compared
DEADLINE_S = 120
GLOO_ABORT = "terminate called without an active exception"  # a rank's C++ runtime, as gloo shuts down


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    subjects, verbs, objects = ["the cat", "a dog", "my friend"], ["sees", "likes", "finds"], ["the sun", "a tree"]
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.\n"
                            for _ in range(1500)))
    return path


@pytest.fixture(scope="module")
def one_process(corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("single") / "run"
    assert main(["train", "lm", "--text", str(corpus), "--out", str(run), *TINY]) == 0
    return run


def seqlab(*args, nproc=None):
    """The CLI in a fresh process (with --nproc it starts torchrun itself); -> (exit code, stderr)."""
    command = [sys.executable, "-m", "seqlab", *map(str, args)]
    if nproc:
        command += ["--nproc", str(nproc)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    return done.returncode, done.stderr


def curves(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r.get("train_loss"), r.get("val_loss")) for r in rows]


def assert_same_training(run, reference, rtol=1e-5):
    for got, want in zip(curves(run), curves(reference), strict=True):
        assert got[0] == want[0]
        for a, b in zip(got[1:], want[1:]):
            assert (a is None) == (b is None) and (a is None or a == pytest.approx(b, rel=rtol)), (got, want)
    assert_same_weights(run / "checkpoints" / "best", reference / "checkpoints" / "best")


def assert_same_weights(directory, reference):
    weights, expected = (load_file(d / "model.safetensors") for d in (directory, reference))
    assert weights.keys() == expected.keys()
    for name, value in expected.items():
        if name.endswith("w_k.bias"):
            # Softmax ignores a bias added to every key, so its true gradient is 0 and what backward
            # returns is rounding noise, which Adam scales up to full-size steps: it differs between
            # any two summation orders, and changes no output.
            continue
        torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("nproc, layout", [
    (2, ["--set", "parallel.dp=2"]),  # DDP
    (2, ["--set", "parallel.dp_mode='fsdp'"]),  # FSDP2, data parallel over every rank by default
    (2, ["--set", "parallel.tp=2"]),
    (2, ["--set", "parallel.pp=2", "--set", "parallel.schedule='gpipe'"]),
    (2, ["--set", "parallel.pp=2", "--set", "parallel.schedule='1f1b'", "--set", "parallel.microbatches=4"]),
    (4, ["--set", "parallel.dp=2", "--set", "parallel.tp=2", "--set", "parallel.dp_mode='fsdp'"]),  # 2-D mesh
], ids=["ddp", "fsdp", "tp", "pp-gpipe", "pp-1f1b", "fsdp2x-tp2"])
def test_each_layout_trains_like_one_process(nproc, layout, corpus, one_process, tmp_path):
    run = tmp_path / "run"
    code, err = seqlab("train", "lm", "--text", corpus, "--out", run, *TINY, *layout, nproc=nproc)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["processes"] == nproc
    assert metrics["val_loss"] == pytest.approx(json.loads((one_process / "metrics.json").read_text())["val_loss"],
                                                rel=1e-5)
    assert_same_training(run, one_process)


@pytest.mark.timeout(300)
def test_a_run_saved_on_n_ranks_resumes_on_m(corpus, one_process, tmp_path):
    run = tmp_path / "run"
    code, err = seqlab("train", "lm", "--text", corpus, "--out", run, *TINY, "--set", "parallel.dp_mode='fsdp'",
                       "--set", "train.stop_at_step=5", nproc=2)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 5
    code, err = seqlab("train", "lm", "--resume", run, "--set", "parallel.pp=2", "--set", "train.stop_at_step=9",
                       nproc=2)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 9
    # ... and the last part on one process, in this one.
    assert main(["train", "lm", "--resume", str(run), "--set", "train.stop_at_step=0"]) == 0
    assert json.loads((run / "metrics.json").read_text())["steps"] == 12
    evaluations = {step: val for step, _, val in curves(run) if val is not None}
    reference = {step: val for step, _, val in curves(one_process) if val is not None}
    # The pauses add evaluations at steps 5 and 9; those at 6 and 12 match the uninterrupted run.
    assert {step: evaluations[step] for step in reference} == pytest.approx(reference, rel=1e-5)
    assert_same_weights(run / "checkpoints" / "last", one_process / "checkpoints" / "last")


@pytest.mark.parametrize("args, message", [
    (["--set", "parallel.dp=3", "--nproc", "2"], "but 2 processes were started"),
    (["--set", "parallel.tp=3"], "parallel.tp=3 must divide model.n_heads=4"),
    (["--set", "parallel.tp=2"], "add --nproc 2"),
    (["--set", "parallel.pp=2", "--set", "model.tie_weights=true", "--nproc", "2"], "model.tie_weights=false"),
    (["--set", "parallel.pp=2", "--set", "parallel.dp=2", "--nproc", "4"], "does not combine"),
    (["--set", "parallel.tp=2", "--set", "parallel.dp=2", "--nproc", "4"], "dp_mode='fsdp'"),
    (["--set", "model.arch='lstm'", "--set", "parallel.tp=2", "--nproc", "2"], "split a Transformer"),
    (["--set", "model.positional='relative'", "--set", "parallel.tp=2", "--nproc", "2"], "relative-position tables"),
    (["--nproc", "0"], "--nproc must be at least 1"),
    (["--set", "train.batch_size=15", "--nproc", "2"], "must split evenly over 2 data-parallel"),
    (["--set", "parallel.pp=2", "--set", "parallel.microbatches=3", "--nproc", "2"], "and 3 micro-batches"),
])
def test_bad_layouts_are_one_line_before_any_process_starts(args, message, corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "lm", "--text", str(corpus), "--out", str(run), *TINY, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not run.exists()


def test_a_linear_classifier_refuses_several_processes_before_starting_any(tmp_path, capsys):
    csv = tmp_path / "texts.csv"
    csv.write_text("text,label\n" + "".join(f"word{i} film,{'pos' if i % 2 else 'neg'}\n" for i in range(40)))
    out = tmp_path / "run"
    assert main(["train", "classify", "--csv", str(csv), "--model", "nbsvm", "--out", str(out), "--nproc", "2"]) == 2
    err = capsys.readouterr().err
    assert "drop --nproc" in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_precision_auto_on_two_ranks_agrees_and_finishes(corpus, tmp_path):
    # Each rank times the precisions; the main rank's decisions (what to skip, when to give up) are
    # every rank's, or one rank would wait in a collective the other never enters.
    run = tmp_path / "auto"
    code, err = seqlab("train", "lm", "--text", corpus, "--out", run, *TINY, "--set", "train.precision='auto'",
                       nproc=2)
    assert code == 0, err[-2000:]
    chosen = json.loads((run / "precision.json").read_text())
    assert chosen["precision"] in ("fp32", "bf16")
    # both timed, or (a CPU without bf16 instructions) bf16 skipped for its matrix product, fp32 untimed
    assert "fp32" in chosen["median_step_ms"] or list(chosen["skipped"]) == ["bf16"]
    assert curves(run)[-1][0] == 12


FAIL_ON_RANK = '''
import os
if os.environ.get("RANK") == "{rank}":  # this rank fails at its first step; the other is then inside the gradients' all-reduce
    from seqlab.errors import DataError
    from seqlab.train import loop

    def fail(self, *args, **kwargs):
        raise DataError("rank {rank} found its batch unusable")

    loop.Trainer._step = fail
'''


@pytest.mark.parametrize("rank", [0, 1])
def test_a_rank_that_fails_mid_step_ends_the_job_with_its_line_and_status(corpus, tmp_path, rank):
    """The failing rank leaves at once (no closing barrier the other rank, inside a collective, never
    reaches: that hung the job until the 10-minute timeout), and the job ends as one process does:
    the rank's one line, once, exit status 2, no torchrun traceback, no run directory; with --overwrite,
    the run it was to replace back in its place (put back by rank 0, or by the launcher when rank 0 was
    stopped first). Rank 1's line was lost: only rank 0 printed bad input."""
    import contextlib
    import os
    import signal
    from pathlib import Path

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAIL_ON_RANK.format(rank=rank))  # imported at start-up by every rank
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])])}
    def launch(*extra):
        process = subprocess.Popen([sys.executable, "-m", "seqlab", "train", "lm", "--text", str(corpus), "--out",
                                    str(run), *TINY, "--nproc", "2", *extra], stderr=subprocess.PIPE, text=True,
                                   env=env, start_new_session=True)
        try:
            _, err = process.communicate(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:  # stop the launcher and the ranks (each rank leads a session of its own)
            os.killpg(process.pid, signal.SIGKILL)
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                with contextlib.suppress(OSError):
                    if str(run).encode() in cmdline.read_bytes():
                        os.kill(int(cmdline.parent.name), signal.SIGKILL)
            pytest.fail(f"the job still ran after {DEADLINE_S} s")
        assert process.returncode == 2, err
        assert err.count(f"rank {rank} found its batch unusable") == 1, err
        assert "ChildFailedError" not in err and "Traceback" not in err, err

    launch()
    assert not run.exists()
    run.mkdir()  # an old run without a checkpoint: what a restored run and a half-made one have alike
    (run / "run.json").write_text('{"task": "lm", "config": {}}')
    launch("--overwrite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hook", "run"]  # nothing set aside is left
    assert [p.name for p in run.iterdir()] == ["run.json"] and "config" in (run / "run.json").read_text()


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_an_interrupt_sent_to_the_launcher_alone_stops_every_rank_cleanly(corpus, tmp_path, how):
    """`timeout -s INT`, or a SIGTERM, reaches the launcher only (a terminal's Ctrl-C reaches its process
    group, which torchrun is no longer in: the same path). subprocess.run killed torchrun a quarter second
    later: its ranks ran on as orphans, its folder stayed, and the launcher added a second line."""
    import contextlib
    import os
    import signal
    import tempfile
    import time
    from pathlib import Path

    def leftovers():
        return {p.name for p in Path(tempfile.gettempdir()).iterdir()
                if p.name.startswith(("seqlab-ranks-", "torchelastic_"))}

    before, run = leftovers(), tmp_path / "run"
    # checkpoints 200 steps apart, so that the signal comes between them: one that comes while the ranks
    # write one is a traceback from torch.distributed.checkpoint (known, not fixed yet)
    command = [sys.executable, "-m", "seqlab", "train", "lm", "--text", str(corpus), "--out", str(run), *TINY,
               "--set", "train.eval_every=200", "--max-steps", "100000", "--nproc", "2"]
    # SIGINT as a terminal's command has it: a test run in the background (`make test &`) ignores it, and
    # so would the launcher and the ranks, which inherit that
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + DEADLINE_S
    while not (run / "checkpoints" / "last").is_dir() and time.monotonic() < deadline:  # saved at evaluations
        time.sleep(0.5)
    process.send_signal(getattr(signal, how))
    try:
        _, err = process.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        err = "the job did not stop"
    time.sleep(2)  # a rank torchrun no longer waited for would still be running now
    ranks = [p for p in Path("/proc").glob("[0-9]*/cmdline") if str(run).encode() in read(p)]
    for rank in ranks:  # none should be left; any that is must not outlive the test
        with contextlib.suppress(OSError):
            os.kill(int(rank.parent.name), signal.SIGKILL)
    assert process.returncode == 130 and not ranks, err
    # At most rank 0's line. Not always even that, and not always alone: a rank interrupted inside a
    # collective may end by its peer's leaving (no line), and gloo may abort a rank as it leaves
    # ("terminate called without an active exception", from C++): both known, neither fixed yet.
    said = [line for line in err.splitlines() if line.strip() and line != GLOO_ABORT]
    assert said in ([], [f"interrupted; a training run continues from its last checkpoint with: seqlab train lm "
                         f"--resume {run}"]), err
    assert leftovers() == before
    assert (run / "checkpoints" / "last" / "model.safetensors").is_file()  # resumable


def read(path) -> bytes:
    """A file under /proc, or nothing for a process that ended meanwhile."""
    try:
        return path.read_bytes()
    except OSError:
        return b""
