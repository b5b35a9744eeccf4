"""What a newcomer meets on a first day at the command line: every mistake is one line and exit 2."""

import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from seqlab.cli.main import main

SRC = Path(__file__).parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC)}
TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
        "--set", "model.d_ff=32", "--set", "data.tokenizer='char'", "--set", "train.batch_size=8",
        "--set", "train.eval_every=10", "--set", "train.progress=false", "--set", "train.tensorboard=false",
        "--set", "decode.beam_size=1", "--set", "decode.max_output_len=8", "--max-steps", "10"]


def seqlab(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqlab", *map(str, args)], capture_output=True, text=True,
                          env=ENV, **kwargs)


@pytest.fixture()
def corpus(tmp_path):
    words = ["abc", "hello", "cat", "dog", "sun", "moon", "tree"] * 4
    (tmp_path / "train.src").write_text("\n".join(words) + "\n")
    (tmp_path / "train.tgt").write_text("\n".join(w[::-1] for w in words) + "\n")
    return tmp_path / "train.src", tmp_path / "train.tgt"


def test_version_comes_from_the_package_metadata():
    done = seqlab("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"seqlab {metadata.version('seqlab')}"


def test_per_task_help_shows_that_tasks_flags_only():
    out = seqlab("train", "forecast", "--help", check=True).stdout
    for own in ("--csv", "--input-len", "--horizon", "--target", "--features"):
        assert own in out
    for translates in ("--src", "--tgt", "--tsv"):
        assert translates not in out


# Every command starts by building the parser, which reads every task's flags; scikit-learn and SciPy
# (most of a second to import on these machines) and matplotlib are for the commands that use them.
STARTUP = """
import sys
from seqlab.cli.parser import build_parser
build_parser().parse_args(["train", "lm", "--text", "input.txt"])
print(",".join(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def test_the_command_lines_start_imports_no_library_it_does_not_need():
    done = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, env=ENV, check=True)
    loaded = set(done.stdout.strip().split(","))
    assert {"torch", "seqlab"} <= loaded  # the probe sees what was imported
    assert not loaded & {"sklearn", "scipy", "matplotlib", "gensim", "pycocotools", "transformers"}, loaded


def test_a_busy_port_is_one_line_before_any_address(tmp_path, capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(["explore", str(tmp_path / "run"), "--host", "127.0.0.1", "--port", str(port)])
    captured = capsys.readouterr()
    assert code == 2 and "http://" not in captured.out
    assert captured.err.count("\n") == 1 and f"127.0.0.1:{port}" in captured.err
    assert "another program holds it: choose another --port" in captured.err


def test_a_reader_that_goes_away_ends_quietly(tmp_path, corpus, capsys):
    """``seqlab eval RUN ... | head``: no "Broken pipe" message, no traceback, as cat."""
    src, tgt = corpus
    run = tmp_path / "run"
    assert main(["train", "translate", "--src", str(src), "--tgt", str(tgt), "--out", str(run), *TINY]) == 0
    process = subprocess.Popen([sys.executable, "-m", "seqlab", "eval", str(run), "--src", str(src), "--ref",
                                str(tgt)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    process.stdout.close()  # before eval has printed anything
    err = process.stderr.read().decode()
    process.wait(timeout=120)
    assert err == "" and process.returncode == 141


def test_nproc_on_cuda_without_cuda_is_one_line_before_torchrun(tmp_path, corpus, capsys, monkeypatch):
    import torch

    import seqlab.cli.launch as launch

    def no_torchrun(*args, **kwargs):
        raise AssertionError("torchrun started")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(launch.subprocess, "run", no_torchrun)
    src, tgt = corpus
    code = main(["train", "translate", "--src", str(src), "--tgt", str(tgt), "--out", str(tmp_path / "run"),
                 "--nproc", "2", "--device", "cuda", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no CUDA device" in err and "--device cpu" in err
    assert not (tmp_path / "run").exists()


def test_a_recipe_whose_data_is_not_downloaded_names_the_download(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "translate", "--config", "multi30k-de-en"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "data/multi30k/train.de.gz" in err and "seqlab data download multi30k" in err


def test_only_a_known_download_folder_is_suggested():
    from seqlab.data.download import file_not_found

    assert "download etth1" in str(file_not_found("some/where/data/etth1/ETTh1.csv"))
    for path in ("data/mine/a.txt", "mydata/multi30k/train.de", "data/multi30k"):
        assert "download" not in str(file_not_found(path))


@pytest.mark.parametrize("task, recipe", [("translate", "multi30k-de-en"), ("lm", "shakespeare-char-60min"),
                                          ("forecast", "etth1-patch")])
def test_train_help_names_the_bigger_recipe_and_the_recipe_is_bigger(task, recipe, capsys):
    from seqlab.config import load_config
    from seqlab.tasks import task as registry

    with pytest.raises(SystemExit):
        main(["train", task, "--help"])
    out = capsys.readouterr().out
    assert f"a bigger or longer one: --config {recipe}" in out and "--device auto" in out
    config_class = registry.get(task).config_class
    default, bigger = config_class(), load_config(config_class, recipe, [])
    assert bigger.model.n_layers > default.model.n_layers or bigger.model.d_model > default.model.d_model
    assert bigger.train.max_steps * bigger.train.batch_size > default.train.max_steps * default.train.batch_size


def test_an_argument_that_is_not_utf8_is_one_line_before_anything_is_made(tmp_path, capsys):
    # A name with a Latin-1 byte reaches Python as a surrogate; the tokenizers, safetensors and
    # matplotlib take UTF-8 names only, so it is refused at once, whatever the command.
    run = tmp_path / "r\udcffun"
    assert main(["train", "lm", "--text", str(tmp_path / "input.txt"), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "r�un" in err and "is not valid UTF-8" in err, err
    assert "give text as UTF-8, and rename a file or folder with such a name" in err  # a prompt is no file
    assert not run.exists() and not list(tmp_path.iterdir())
