"""Nothing breaks, nothing is lost: every kind of bad input below — a damaged run directory, a setting
that is not finite or not in range, data a reader cannot use — is answered by the real command line
with exit status 2 and exactly one line on stderr, no traceback, and every file that was there before
is byte for byte the same afterwards (and nothing half-made is left beside them)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from seqlab.cli.main import main

COMMON = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.curves=false"]
TRANSLATE_TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
                  "--set", "model.d_ff=32", "--set", "data.tokenizer='char'", "--set", "train.batch_size=8",
                  "--set", "train.eval_every=3", "--set", "decode.max_output_len=8", *COMMON, "--max-steps", "6"]
LM_TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
           "--set", "data.block_size=32", "--set", "data.tokenizer='char'", "--set", "train.batch_size=4",
           "--set", "train.eval_every=3", *COMMON, "--max-steps", "3"]
WORDS = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"] * 6


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) -> the SHA-256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def run_cli(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_refusal(code: int, err: str, expected: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].strip(), err
    assert "Traceback" not in err
    assert expected.lower() in err.lower(), err


def bomb_png(width: int, height: int) -> bytes:
    """A 70-byte PNG that declares width × height grey pixels (and holds almost none of them)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny translation run and one tiny language-model run, trained once; each test damages a copy."""
    root = tmp_path_factory.mktemp("trained")
    (root / "a.txt").write_text("\n".join(WORDS) + "\n")
    (root / "b.txt").write_text("\n".join(w[::-1] for w in WORDS) + "\n")
    (root / "text.txt").write_text("the cat sat on the mat. the dog sat on the log.\n" * 40)
    assert main(["train", "translate", "--src", str(root / "a.txt"), "--tgt", str(root / "b.txt"),
                 "--out", str(root / "translate"), *TRANSLATE_TINY]) == 0
    assert main(["train", "lm", "--text", str(root / "text.txt"), "--out", str(root / "lm"), *LM_TINY]) == 0
    assert main(["train", "forecast", "--csv", str(series_csv(root / "series.csv")), "--model", "linear",
                 "--out", str(root / "forecast"), *FORECAST]) == 0
    return root


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def replace_with(text: str):
    return lambda path: path.write_text(text)


def nan_in_weights(path: Path) -> None:
    """A NaN in the last tensor, the file's header intact (as bytes flipped inside it can leave it)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    last = sorted(tensors)[-1]
    tensors[last].view(-1)[0] = float("nan")
    save_file(tensors, str(path))


def ids_past_the_vocabulary(path: Path) -> None:
    """The same number of bytes, every id 65,535."""
    path.write_bytes(b"\xff" * path.stat().st_size)


def json_edited(change):
    """The JSON file with ``change`` applied to its parsed value (which it edits in place)."""
    import json

    def edit(path: Path) -> None:
        value = json.loads(path.read_text())
        change(value)
        path.write_text(json.dumps(value))
    return edit


def token_past_the_model(path: Path) -> None:
    """One more token, with an id far past any tokenizer seqlab trains (another model's tokenizer)."""
    import json

    tokenizer = json.loads(path.read_text())
    tokenizer["model"]["vocab"]["Z-from-elsewhere"] = 100_000
    path.write_text(json.dumps(tokenizer))


LAST, BEST = "checkpoints/last", "checkpoints/best"
TRANSLATE_ARGS = {"translate": ["translate", "{run}", "hello"],
                  "eval": ["eval", "{run}", "--src", "{data}/a.txt", "--ref", "{data}/b.txt"],
                  "predict": ["predict", "{run}", "hello"],
                  "explore": ["explore", "{run}"],
                  "resume": ["train", "translate", "--resume", "{run}", "--max-steps", "9"]}
FORECAST_ARGS = {"predict": ["predict", "{run}", "--csv", "{data}/series.csv"],
                 "eval": ["eval", "{run}", "--csv", "{data}/series.csv"],
                 "explore": ["explore", "{run}"]}
LM_ARGS = {"generate": ["generate", "{run}", "--prompt", "the", "--max-new-tokens", "3"],
           "eval": ["eval", "{run}", "--text", "{data}/text.txt"],
           "resume": ["train", "lm", "--resume", "{run}", "--max-steps", "6"]}

# case -> (run, damaged files and how, command, what the line must say)
DAMAGED_RUNS = {
    "run.json not JSON / translate": ("translate", {"run.json": replace_with("{not json")}, "translate", "run.json is damaged"),
    "run.json not JSON / resume": ("translate", {"run.json": replace_with('{"task": "transl')}, "resume", "run.json is damaged"),
    "run.json not an object / eval": ("translate", {"run.json": replace_with("[1, 2]")}, "eval", "run.json is damaged"),
    "run.json without task / predict": ("translate", {"run.json": replace_with('{"config": {}}')}, "predict", "run.json is damaged"),
    "run.json without task / explore": ("translate", {"run.json": replace_with('{"config": {}}')}, "explore", "run.json is damaged"),
    "run.json not JSON / generate": ("lm", {"run.json": replace_with("")}, "generate", "run.json is damaged"),
    # run.json's block size past the checkpoint's context, or its settings lost: a traceback before
    "run.json block size past the model / lm eval": ("lm", {"run.json": json_edited(
        lambda r: r["config"]["data"].update(block_size=10 ** 4))}, "eval",
        "run.json is damaged (data.block_size is 10000; the checkpoint's model takes at most"),
    "run.json without its config / lm eval": ("lm", {"run.json": json_edited(lambda r: r.update(config={}))}, "eval",
                                              "run.json is damaged (it lacks data.block_size"),
    "model.safetensors truncated / translate": ("translate", {f"{BEST}/model.safetensors": truncate}, "translate", "model.safetensors is damaged"),
    "model.safetensors truncated / eval": ("translate", {f"{BEST}/model.safetensors": truncate}, "eval", "model.safetensors is damaged"),
    "model.safetensors truncated / predict": ("translate", {f"{BEST}/model.safetensors": truncate}, "predict", "model.safetensors is damaged"),
    "model.safetensors truncated / explore": ("translate", {f"{BEST}/model.safetensors": truncate}, "explore", "model.safetensors is damaged"),
    "model.safetensors truncated / generate": ("lm", {f"{BEST}/model.safetensors": truncate}, "generate", "model.safetensors is damaged"),
    "model.safetensors NaN / generate": ("lm", {f"{BEST}/model.safetensors": nan_in_weights}, "generate",
                                         "holds NaN or infinite values); restore it from a copy"),
    "model.safetensors deleted / generate": ("lm", {f"{BEST}/model.safetensors": os.remove}, "generate",
                                             "checkpoints/best is damaged (model.safetensors missing)"),
    "model.safetensors a few bytes / translate": ("translate", {f"{BEST}/model.safetensors": replace_with("abc")}, "translate", "model.safetensors is damaged"),
    "config.json truncated / translate": ("translate", {f"{BEST}/config.json": truncate}, "translate", "config.json is damaged"),
    "config.json unknown model class / eval": ("translate", {f"{BEST}/config.json": replace_with('{"model_class": "Nope"}')}, "eval", "config.json is damaged"),
    "src tokenizer truncated / translate": ("translate", {"src_tokenizer.json": truncate}, "translate", "src_tokenizer.json is damaged"),
    "tgt tokenizer truncated / eval": ("translate", {"tgt_tokenizer.json": truncate}, "eval", "tgt_tokenizer.json is damaged"),
    "tgt tokenizer truncated / explore": ("translate", {"tgt_tokenizer.json": truncate}, "explore", "tgt_tokenizer.json is damaged"),
    "tokenizer truncated / generate": ("lm", {"tokenizer.json": truncate}, "generate", "tokenizer.json is damaged"),
    "tokenizer past the model / generate": ("lm", {"tokenizer.json": token_past_the_model}, "generate",
                                            "tokenizer.json is damaged (its ids go up to 100,000, past the model's vocabulary"),
    "src tokenizer past the model / translate": ("translate", {"src_tokenizer.json": token_past_the_model}, "translate",
                                                 "src_tokenizer.json is damaged (its ids go up to 100,000"),
    "series.json truncated / forecast predict": ("forecast", {"series.json": truncate}, "predict", "series.json is damaged"),
    "series.json missing / forecast eval": ("forecast", {"series.json": os.remove}, "eval", "series.json is missing"),
    "series.json scale 0 / forecast predict": ("forecast", {"series.json": json_edited(
        lambda s: s["scaler"].update(scale=[0.0] * len(s["columns"])))}, "predict",
        "series.json is damaged (not the columns, targets and scaler"),
    "series.json target out of range / forecast eval": ("forecast", {"series.json": json_edited(
        lambda s: s.update(targets=[len(s["columns"])]))}, "eval", "series.json is damaged (not the columns"),
    "series.json not an object / forecast explore": ("forecast", {"series.json": replace_with("[]")}, "explore",
                                                     "series.json is damaged (not the columns"),
    "run.json input_len not the model's / forecast predict": ("forecast", {"run.json": json_edited(
        lambda r: r["config"]["data"].update(input_len=r["config"]["data"]["input_len"] + 1))}, "predict",
        "run.json is damaged (data.input_len is"),
    "config.json negative size / forecast predict": ("forecast", {f"{BEST}/config.json": json_edited(
        lambda c: c.update(input_len=-4))}, "predict", "config.json is damaged (describes sizes no model has"),
    "model.safetensors truncated / forecast explore": ("forecast", {f"{BEST}/model.safetensors": truncate}, "explore", "model.safetensors is damaged"),
    # --resume: damaged in last *and* best, so there is nothing intact to fall back to.
    "model.safetensors truncated / resume": ("translate", {f"{LAST}/model.safetensors": truncate,
                                                           f"{BEST}/model.safetensors": truncate}, "resume", "last/model.safetensors is damaged"),
    "state.safetensors truncated / resume": ("translate", {f"{LAST}/state.safetensors": truncate,
                                                           f"{BEST}/state.safetensors": truncate}, "resume", "last/state.safetensors is damaged"),
    "state.json corrupt / resume": ("translate", {f"{LAST}/state.json": replace_with('{"schedule": '),
                                                  f"{BEST}/state.json": replace_with("")}, "resume", "last/state.json is damaged"),
    "optimizer state truncated / resume": ("translate", {f"{LAST}/training_state.safetensors": truncate,
                                                         f"{BEST}/state.json": truncate}, "resume",
                                           "training_state.safetensors is damaged"),
    "train.bin ids past the vocabulary / lm resume": ("lm", {"train.bin": ids_past_the_vocabulary}, "resume",
                                                      "train.bin is damaged (it holds ids past the vocabulary of"),
    "valid.bin truncated / lm resume": ("lm", {"valid.bin": truncate}, "resume",
                                        "ids of 2 bytes that data.json records"),
    "optimizer state truncated / lm resume": ("lm", {f"{LAST}/training_state.safetensors": truncate,
                                                     f"{BEST}/model.safetensors": truncate}, "resume",
                                              "training_state.safetensors is damaged"),
    "optimizer state index truncated / resume": ("translate", {f"{LAST}/training_state.json": truncate,
                                                               f"{BEST}/config.json": truncate}, "resume",
                                                 "training_state.json is damaged"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_RUNS))
def test_a_damaged_run_is_one_line_naming_the_file(case, trained, tmp_path, capsys, monkeypatch):
    kind, damage, command, expected = DAMAGED_RUNS[case]
    run = tmp_path / kind
    shutil.copytree(trained / kind, run)
    for name, how in damage.items():
        how(run / name)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("the explorer started on a damaged run"))
    before = snapshot(tmp_path)
    args = {"translate": TRANSLATE_ARGS, "lm": LM_ARGS, "forecast": FORECAST_ARGS}[kind][command]
    code, _, err = run_cli([a.format(run=run, data=trained) for a in args], capsys)
    assert_one_line_refusal(code, err, expected)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["predict", "export"])
@pytest.mark.parametrize("task", ["vision", "detect"])
def test_a_run_json_naming_another_task_is_one_line(task, command, trained, tmp_path, capsys):
    """run.json's task edited by hand: the checkpoint (a language model) is not what a vision or detect
    run holds; this was an AttributeError traceback."""
    run = tmp_path / "lm"
    shutil.copytree(trained / "lm", run)
    json_edited(lambda r: r.update(task=task))(run / "run.json")
    before = snapshot(tmp_path)
    args = {"predict": ["predict", run, tmp_path / "a.png"], "export": ["export", run, "--format", "onnx",
                                                                        "--out", tmp_path / "onnx"]}[command]
    code, _, err = run_cli(args, capsys)
    assert_one_line_refusal(code, err, f"run.json is damaged (it says task '{task}', but the checkpoint holds "
                                       f"a TransformerLM")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("damaged", ["model.safetensors", "state.safetensors", "state.json",
                                     "training_state.safetensors"])
def test_resume_falls_back_to_an_intact_checkpoint_and_says_so(damaged, trained, tmp_path, capsys):
    run = tmp_path / "translate"
    shutil.copytree(trained / "translate", run)
    truncate(run / LAST / damaged)
    code, _, err = run_cli(["train", "translate", "--resume", run, "--max-steps", "9"], capsys)
    assert code == 0, err
    warning = [line for line in err.splitlines() if "is damaged" in line]
    assert len(warning) == 1 and f"resuming from {run / BEST}" in warning[0], err
    assert damaged in warning[0]
    assert "Traceback" not in err
    # It trained on from best's weights: a fresh, readable last, and the run reached the new budget.
    from seqlab.train.checkpoint import check_checkpoint, load_state

    check_checkpoint(run / LAST)
    assert load_state(run / LAST)["progress"]["step"] == 9


# --- settings: refused before a run directory exists ------------------------------------------

def huge_memory_model() -> list[str]:
    return ["--set", "model.d_model=1048576", "--set", "model.n_heads=1"]


BAD_SETTINGS = {
    "lr nan": (["--set", "train.lr=nan"], "train.lr must be a finite number"),
    "lr inf": (["--set", "train.lr=inf"], "train.lr must be a finite number"),
    "lr negative": (["--set", "train.lr=-0.1"], "train.lr must be a number in [0, 10]"),
    "lr absurd": (["--set", "train.lr=1e6"], "train.lr must be a number in [0, 10]"),
    "eps inf": (["--set", "train.eps=inf"], "train.eps must be a finite number"),
    "eps negative": (["--set", "train.eps=-1e-8"], "train.eps must be a number in [0, 1]"),
    "max_time inf": (["--set", "train.max_time=inf"], "train.max_time must be a finite number"),
    "max_time nan flag": (["--max-time", "nan"], "train.max_time must be a finite number"),
    "max_time negative": (["--set", "train.max_time=-5"], "train.max_time must be a number in"),
    "warmup_steps absurd": (["--set", "train.warmup_steps=9000000000000000"], "train.warmup_steps must be at most"),
    "warmup_steps negative": (["--set", "train.warmup_steps=-1"], "must not be negative"),
    "clip_norm nan": (["--set", "train.clip_norm=nan"], "train.clip_norm must be a finite number"),
    "clip_norm absurd": (["--set", "train.clip_norm=1e300"], "train.clip_norm must be a number in"),
    "weight_decay -inf": (["--set", "train.weight_decay=-inf"], "train.weight_decay must be a finite number"),
    "weight_decay absurd": (["--set", "train.weight_decay=1e9"], "train.weight_decay must be a number in"),
    "label_smoothing nan": (["--set", "train.label_smoothing=nan"], "train.label_smoothing must be a finite number"),
    "label_smoothing over 1": (["--set", "train.label_smoothing=1.5"], "train.label_smoothing must be in [0, 1)"),
    "dropout nan": (["--set", "model.dropout=nan"], "model.dropout must be a finite number"),
    "length penalty inf": (["--set", "decode.alpha=inf"], "decode.alpha must be a finite number"),
    "d_model beyond memory": (huge_memory_model(), "model.d_model=1048576 needs ~"),
    "rnn beyond memory": (["--set", "model.arch='attention'", "--set", "model.rnn.hidden_size=4000000"],
                          "model.rnn.hidden_size=4000000 needs ~"),
    "empty --init": (["--init", ""], "--init is empty (an unset shell variable?)"),
    # each architecture's own sizes (a traceback, or a run directory left behind, before)
    "n_layers 0": (["--set", "model.n_layers=0"], "model.n_layers must be at least 1; got 0"),
    "decoder layers -1": (["--set", "model.n_decoder_layers=-1"], "model.n_decoder_layers must be at least 1"),
    "d_ff 0": (["--set", "model.d_ff=0"], "model.d_ff must be at least 1; got 0"),
    "rnn hidden 0": (["--set", "model.arch='attention'", "--set", "model.rnn.hidden_size=0"],
                     "model.rnn.hidden_size must be at least 1"),
    "rnn layers 0": (["--set", "model.arch='simple'", "--set", "model.rnn.num_layers=0"],
                     "model.rnn.num_layers must be at least 1"),
    "window negative": (["--set", "model.arch='attention'", "--set", "model.rnn.window=-2"],
                        "model.rnn.window (local attention's half-width) must be at least 0"),
    "conv layers 0": (["--set", "model.arch='conv'", "--set", "model.conv.n_layers=0"],
                      "model.conv.n_layers must be at least 1"),
    "tsv with src": (["--tsv", "pairs.tsv"], "data.tsv holds the pairs, so --src does not go with it"),  # was ignored
    "valid tsv with tgt": (["--set", "data.valid_tsv='v.tsv'", "--set", "data.valid_tgt='v.tgt'"],
                           "data.valid_tsv holds the pairs, so --valid-tgt does not go with it"),
    "conv kernel 1": (["--set", "model.arch='conv'", "--set", "model.conv.kernel_size=1"],
                      "model.conv.kernel_size must be at least 2; got 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_a_bad_setting_is_refused_before_the_run_exists(case, trained, tmp_path, capsys):
    flags, expected = BAD_SETTINGS[case]
    before = snapshot(tmp_path)
    code, _, err = run_cli(["train", "translate", "--src", trained / "a.txt", "--tgt", trained / "b.txt",
                            "--out", tmp_path / "run", *TRANSLATE_TINY, *flags], capsys)
    assert_one_line_refusal(code, err, expected)
    assert snapshot(tmp_path) == before and not (tmp_path / "run").exists()


def test_a_pause_is_refused_where_nothing_can_resume(trained, tmp_path, capsys):
    # demo and compare have no --resume: a run paused by train.stop_at_step was told to use one
    before = snapshot(tmp_path)
    for args in (["demo"], ["compare", "translate", "--src", trained / "a.txt", "--tgt", trained / "b.txt",
                             *TRANSLATE_TINY]):
        code, _, err = run_cli([*args, "--out", tmp_path / "run", "--set", "train.stop_at_step=2"], capsys)
        assert_one_line_refusal(code, err, f"seqlab {args[0]} cannot resume its runs")
    assert snapshot(tmp_path) == before and not (tmp_path / "run").exists()


def test_a_model_beyond_memory_names_the_estimate(trained, tmp_path, capsys):
    code, _, err = run_cli(["train", "lm", "--text", trained / "text.txt", "--out", tmp_path / "run",
                            *LM_TINY, *huge_memory_model()], capsys)
    assert_one_line_refusal(code, err, "more than this machine's")
    # 1 layer of 4·d² attention + 2·d·4d feed-forward weights = 12·d² ≈ 1.3e13 parameters, ~53 TB in fp32
    assert "1.3e+13 parameters" in err and "TB in fp32" in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_one_line(trained, tmp_path, capsys):
    before = snapshot(tmp_path)
    code, _, err = run_cli(["train", "translate", "--src", trained / "a.txt", "--tgt", trained / "b.txt",
                            "--out", tmp_path / "run", *TRANSLATE_TINY, "--device", "cuda"], capsys)
    assert_one_line_refusal(code, err, "CUDA is not available")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("temperature", ["nan", "inf", "-1", "1e30"])
def test_a_sampling_temperature_out_of_range_is_one_line(temperature, trained, tmp_path, capsys):
    run = tmp_path / "lm"
    shutil.copytree(trained / "lm", run)
    before = snapshot(tmp_path)
    code, out, err = run_cli(["generate", run, "--prompt", "the", f"--temperature={temperature}"], capsys)
    assert_one_line_refusal(code, err, "temperature must be a number in [0, 1e6]")
    assert out == "" and snapshot(tmp_path) == before


def nan_after(calls: int, monkeypatch) -> None:
    """The training loss turns NaN from the ``calls``-th forward pass on (as an overflow would make it)."""
    from seqlab.parallel.runtime import SingleProcess

    original, seen = SingleProcess.forward_backward, []

    def forward_backward(self, *args, **kwargs):
        loss, n = original(self, *args, **kwargs)
        seen.append(1)
        return (loss * float("nan") if len(seen) >= calls else loss), n

    monkeypatch.setattr(SingleProcess, "forward_backward", forward_backward)


def test_a_loss_that_turns_nan_on_resume_stops_and_keeps_the_checkpoints(trained, tmp_path, capsys, monkeypatch):
    run = tmp_path / "translate"
    shutil.copytree(trained / "translate", run)
    checkpoints = snapshot(run / "checkpoints")
    nan_after(2, monkeypatch)
    code, _, err = run_cli(["train", "translate", "--resume", run, "--max-steps", "12"], capsys)
    assert_one_line_refusal(code, err, "the training loss became nan at step 8")
    assert "learning rate is likely too high" in err and "last good checkpoint (step 6) is kept" in err
    assert snapshot(run / "checkpoints") == checkpoints


def test_a_loss_that_turns_nan_before_any_checkpoint_leaves_nothing(trained, tmp_path, capsys, monkeypatch):
    nan_after(1, monkeypatch)
    code, _, err = run_cli(["train", "translate", "--src", trained / "a.txt", "--tgt", trained / "b.txt",
                            "--out", tmp_path / "run", *TRANSLATE_TINY, "--set", "train.precision='bf16'"], capsys)
    assert_one_line_refusal(code, err, "the training loss became nan at step 1")
    assert "bf16 overflowed" in err and "train.precision=fp32" in err
    assert not (tmp_path / "run").exists()


# --- data ----------------------------------------------------------------------------------------

def series_csv(path: Path, edit=None) -> Path:
    rows = [f"2024-01-{1 + i // 24:02d} {i % 24:02d}:00,{(i % 24) / 10:.1f},{i % 7}" for i in range(240)]
    if edit:
        edit(rows)
    path.write_text("date,load,OT\n" + "\n".join(rows) + "\n")
    return path


def set_row(index: int, text: str):
    def edit(rows):
        rows[index] = text
    return edit


FORECAST = ["--input-len", "24", "--horizon", "4", "--split", "0.7,0.1,0.2", *COMMON, "--max-steps", "2"]

BAD_DATA = {
    "csv inf": ("forecast", set_row(5, "2024-01-01 05:00,inf,1"), "column 'load' row 7 is not a finite number: inf"),
    "csv -inf": ("forecast", set_row(9, "2024-01-01 09:00,1,-inf"), "column 'OT' row 11 is not a finite number: -inf"),
    "csv overflow": ("forecast", set_row(3, "2024-01-01 03:00,1e999,1"), "column 'load' row 5 is not a finite number"),
    "csv unparseable date": ("forecast", set_row(4, "2024-13-45 99:00,1,1"), "column 'date' row 6 is not a date"),
    "csv word for a date": ("forecast", set_row(0, "yesterday,1,1"), "column 'date' row 2 is not a date: 'yesterday'"),
    "csv empty date": ("forecast", set_row(7, ",1,1"), "column 'date' row 9 has no date"),
    # a step index: pandas read it as nanoseconds since 1970, and the forecasts were stamped so
    "csv numbers for dates": ("forecast", lambda rows: rows.__setitem__(slice(None), [f"{i},{r.split(',', 1)[1]}"
                                                                                     for i, r in enumerate(rows)]),
                              "column 'date' holds numbers (0 first), not dates"),
    "tsv line without tab": ("tsv", None, "line 4 has no tab"),
    "image bomb": ("vision", None, "declares 400,000,000 pixels"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_is_one_line_and_leaves_nothing(case, tmp_path, capsys):
    kind, edit, expected = BAD_DATA[case]
    if kind == "forecast":
        args = ["train", "forecast", "--csv", series_csv(tmp_path / "series.csv", edit), *FORECAST]
    elif kind == "tsv":
        lines = [f"{w}\t{w[::-1]}" for w in WORDS]
        lines[3] = "a line without its target"
        (tmp_path / "pairs.tsv").write_text("\n".join(lines) + "\n")
        args = ["train", "translate", "--tsv", tmp_path / "pairs.tsv", *TRANSLATE_TINY]
    else:
        for name, shade in (("dark", 30), ("light", 220)):
            (tmp_path / "images" / name).mkdir(parents=True)
            for i in range(4):
                Image.new("L", (8, 8), color=shade).save(tmp_path / "images" / name / f"{i}.png")
        (tmp_path / "images" / "light" / "huge.png").write_bytes(bomb_png(20_000, 20_000))
        args = ["train", "vision", "--images", tmp_path / "images", "--set", "data.image_size=8", *COMMON]
    before = snapshot(tmp_path)
    code, _, err = run_cli([*args, "--out", tmp_path / "run"], capsys)
    assert_one_line_refusal(code, err, expected)
    assert snapshot(tmp_path) == before and not (tmp_path / "run").exists()


def test_non_utf8_standard_input_gets_a_files_message():
    from seqlab.data.text import read_stdin_lines
    from seqlab.errors import DataError

    class Stdin:
        buffer = io.BytesIO("ok\ncaf".encode() + b"\xe9\n")

    with pytest.raises(DataError, match=r"^standard input is not valid utf-8 \(line 2, byte 6\)"):
        read_stdin_lines(Stdin)
    assert read_stdin_lines(io.StringIO("a\r\nb\n")) == ["a", "b"]


def test_non_utf8_standard_input_is_one_line_from_the_command(trained, tmp_path):
    run = tmp_path / "translate"
    shutil.copytree(trained / "translate", run)
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    result = subprocess.run([sys.executable, "-m", "seqlab", "translate", str(run)], input=b"hello\ncaf\xe9\n",
                            capture_output=True, env=env, timeout=300)
    err = result.stderr.decode("utf-8", "replace")
    assert_one_line_refusal(result.returncode, err, "standard input is not valid utf-8 (line 2")
    assert snapshot(tmp_path) == before


def test_a_loss_that_turns_nan_after_a_checkpoint_keeps_the_fresh_run(trained, tmp_path, capsys, monkeypatch):
    nan_after(5, monkeypatch)  # evaluations (and checkpoints) at step 3; NaN at step 5
    code, _, err = run_cli(["train", "translate", "--src", trained / "a.txt", "--tgt", trained / "b.txt",
                            "--out", tmp_path / "run", *TRANSLATE_TINY, "--precision", "fp32"], capsys)  # no trial steps
    assert_one_line_refusal(code, err, "the training loss became nan at step 5")
    assert "last good checkpoint (step 3) is kept" in err
    from seqlab.train.checkpoint import check_checkpoint

    check_checkpoint(tmp_path / "run" / LAST)
