"""seqlab export --format onnx: every task's graphs run in ONNX Runtime and give PyTorch's outputs (to 1e-4)
on inputs of another batch size and length than the export traced; the language model's cached decoding
and the translation model's greedy decoding, run step by step in ONNX Runtime, give seqlab's tokens."""

import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from seqlab.cli.main import main
from seqlab.tasks import run_dir as runs

ort = pytest.importorskip("onnxruntime")

QUICK = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.eval_every=10",
         "--max-steps", "2"]
SMALL = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=2", *QUICK]
TOL = 1e-4


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    (root / "text.txt").write_text("the cat sat on the mat. the dog sat on the log.\n" * 100)
    words = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"] * 6
    (root / "a.txt").write_text("\n".join(words) + "\n")
    (root / "b.txt").write_text("\n".join(w[::-1] for w in words) + "\n")
    rows = [f"a {w} film,{'pos' if w == 'good' else 'neg'}" for w in ["good", "bad", "fine", "dull"] * 15]
    (root / "reviews.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    hours = np.arange(300)
    dates = np.datetime64("2024-01-01T00") + hours.astype("timedelta64[h]")
    (root / "series.csv").write_text("date,OT\n" + "".join(f"{d},{np.sin(h * 2 * np.pi / 24):.5f}\n"
                                                         for d, h in zip(dates, hours)))
    return root


def train_and_export(root, task, name, *args):
    run, out = root / name, root / f"{name}-onnx"
    assert main(["train", task, *map(str, args), "--out", str(run)]) == 0
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    return run, out


@pytest.fixture(scope="module", params=["learned", "sinusoidal", "rotary"])
def lm(root, request):
    return train_and_export(root, "lm", f"lm-{request.param}", "--text", root / "text.txt", *SMALL,
                            "--set", "data.block_size=24", "--set", f"model.positional='{request.param}'")


def test_lm_cached_generation_in_onnxruntime_equals_seqlabs(lm):
    run, out = lm
    meta = json.loads((out / "onnx.json").read_text())
    assert meta["task"] == "lm" and (out / "tokenizer.json").is_file()
    _, model = runs.load_trained(run, "lm", "")
    prefill, decode = session(out / "prefill.onnx"), session(out / "decode.onnx")
    n = meta["n_layers"]
    prompt = torch.tensor([[5, 6, 7], [8, 6, 5]])  # 2 × 3: neither the batch nor the length traced
    new = meta["max_len"] - prompt.size(1)  # up to the context's end: the cache holds max_len positions

    logits, *state = prefill.run(None, {"ids": prompt.numpy()})
    with torch.no_grad():
        assert np.abs(logits - model(prompt).numpy()).max() <= TOL
        expected = model.generate(prompt, new, temperature=0)
    tokens = []
    context = prompt
    for _ in range(new):
        token = logits[:, -1].argmax(-1)[:, None]
        tokens.append(token)
        context = torch.cat([context, torch.from_numpy(token)], dim=1)
        if len(tokens) == new:
            break
        feed = {"ids": token, **{name: value for name, value in
                                 zip([f"past_key_{i}" for i in range(n)] + [f"past_value_{i}" for i in range(n)],
                                     state)}}
        logits, *state = decode.run(None, feed)
        with torch.no_grad():  # the step's logits are those of the whole sequence's last position
            assert np.abs(logits[:, -1] - model(context)[:, -1].numpy()).max() <= TOL
    assert state[0].shape[2] == meta["max_len"] - 1
    assert np.concatenate(tokens, 1).tolist() == expected[:, prompt.size(1):].tolist()


@pytest.fixture(scope="module")
def translation(root):
    return train_and_export(root, "translate", "translate", "--src", root / "a.txt", "--tgt", root / "b.txt",
                            *SMALL, "--set", "model.d_ff=32", "--set", "data.tokenizer='char'",
                            "--set", "data.max_len=24", "--set", "train.batch_size=8",
                            "--set", "decode.max_output_len=12")


def test_translation_greedy_decoding_in_onnxruntime_equals_seqlabs(translation):
    from seqlab.models.search import greedy_decode

    run, out = translation
    meta = json.loads((out / "onnx.json").read_text())
    bos, eos, pad = (meta["special_ids"][k] for k in ("bos", "eos", "pad"))
    _, model = runs.load_trained(run, "translate", "")
    encoder, decoder = session(out / "encoder.onnx"), session(out / "decoder.onnx")
    src = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12, 13], [7, 8, 9, pad, pad, pad, pad, pad, pad],
                        [13, 12, 11, 10, pad, pad, pad, pad, pad]])
    memory, memory_mask = encoder.run(None, {"src": src.numpy()})
    with torch.no_grad():
        expected_memory, expected_mask = model.encode(src)
        expected = greedy_decode(model, src, 12)
    assert np.abs(memory - expected_memory.numpy()).max() <= TOL
    assert (memory_mask == expected_mask.numpy()).all()

    tgt = np.full((3, 1), bos)
    finished = np.zeros(3, dtype=bool)
    outputs = []
    for _ in range(12):
        logits = decoder.run(None, {"memory": memory, "memory_mask": memory_mask, "tgt": tgt})[0]
        with torch.no_grad():
            reference = model.decode(torch.from_numpy(tgt), expected_memory, expected_mask)
        assert np.abs(logits - reference.numpy()).max() <= TOL
        token = np.where(finished, pad, logits[:, -1].argmax(-1))
        outputs.append(token)
        finished |= token == eos
        if finished.all():
            break
        tgt = np.concatenate([tgt, token[:, None]], axis=1)
    assert np.stack(outputs, 1).tolist() == expected.tolist()


def plain_runs():
    return {
        "classify": lambda root: ["--csv", root / "reviews.csv", *SMALL, "--set", "model.pool='cls'"],
        "classify-conv1d": lambda root: ["--csv", root / "reviews.csv", "--model", "conv1d", *QUICK],
        "mlm": lambda root: ["--text", root / "text.txt", *SMALL, "--set", "data.block_size=20",
                             "--set", "data.vocab_size=40"],
        "vision": lambda root: [*SMALL, "--set", "data.image_size=8"],
        **{f"forecast-{arch}": (lambda root, arch=arch: [
            "--csv", root / "series.csv", "--model", arch, "--input-len", "24", "--horizon", "6",
            "--split", "0.7,0.1,0.2", "--set", "model.d_model=16", "--set", "model.n_heads=2",
            "--set", "model.n_layers=1", "--set", "model.d_ff=32", "--set", "model.patch_len=8",
            "--set", "model.stride=4", "--set", "model.period=12", *QUICK])
           for arch in ("transformer", "patch", "lstm", "conv1d", "linear", "periodic")},
        "forecast-quantiles": lambda root: [  # (B, H, C, Q), the levels sorted in the graph too
            "--csv", root / "series.csv", "--model", "patch", "--quantiles", "0.1,0.9", "--input-len", "24",
            "--horizon", "6", "--split", "0.7,0.1,0.2", "--set", "model.d_model=16", "--set", "model.n_heads=2",
            "--set", "model.n_layers=1", "--set", "model.d_ff=32", "--set", "model.patch_len=8",
            "--set", "model.stride=4", *QUICK],
    }


@pytest.mark.parametrize("name", list(plain_runs()))
def test_onnx_outputs_equal_pytorchs(root, name):
    task = name.split("-")[0]
    run, out = train_and_export(root, task, name, *plain_runs()[name](root))
    meta = json.loads((out / "onnx.json").read_text())
    assert meta["task"] == task and set(meta["graphs"]) == {"model"}
    _, model = runs.load_trained(run, task, "")
    graph = session(out / "model.onnx")
    generator = torch.Generator().manual_seed(1)
    if task == "vision":
        x = torch.rand(5, *meta["image_shape"], generator=generator)
    elif task == "forecast":
        x = torch.randn(5, meta["input_len"], len(meta["columns"]), generator=generator)
    else:  # ids of another batch size and length than the export traced, one row padded
        vocab = Tokenizer.from_file(str(out / meta["tokenizer"])).get_vocab_size()
        x = torch.randint(4, vocab, (5, 9), generator=generator)
        x[1, 4:] = meta["special_ids"]["pad"]
        tokenizer = Tokenizer.from_file(str(out / meta["tokenizer"]))
        names = {"pad": "[PAD]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "unk": "[UNK]"} if task == "mlm" \
            else {"pad": "<pad>", "unk": "<unk>"}
        for role, token in names.items():  # each role at its token's id in the exported tokenizer
            assert meta["special_ids"][role] == tokenizer.token_to_id(token), (role, meta["special_ids"])
    (name_in,), (name_out,) = meta["graphs"]["model"]["inputs"], meta["graphs"]["model"]["outputs"]
    (got,) = graph.run(None, {name_in: x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert got.shape == tuple(expected.shape)
    assert np.abs(got - expected.numpy()).max() <= TOL
    if name == "forecast-quantiles":  # calibrated on validation: the graph adds the offsets too
        assert meta["quantiles"] == [0.1, 0.5, 0.9] and got.shape[-1] == 3 and model.config.calibration


def test_detection_outputs_equal_pytorchs(root):
    # DETR on a few generated digit images: class logits and boxes of every query, for a batch of
    # another size than the export traced.
    run, out = train_and_export(root, "detect", "detect", "--max-steps", "2", "--set", "train.eval_every=10",
                                "--set", "train.batch_size=4", "--set", "train.progress=false",
                                "--set", "train.tensorboard=false", "--set", "model.d_model=16",
                                "--set", "model.n_heads=2", "--set", "model.n_encoder_layers=1",
                                "--set", "model.n_decoder_layers=2", "--set", "model.d_ff=32",
                                "--set", "model.n_queries=5", "--set", "model.backbone_width=4",
                                "--set", "data.digits_train=8", "--set", "data.digits_valid=4",
                                "--set", "data.digits_test=4", "--set", "data.image_size=32")
    meta = json.loads((out / "onnx.json").read_text())
    assert meta["task"] == "detect" and meta["graphs"]["model"]["outputs"] == ["logits", "boxes"]
    assert meta["image_shape"] == [1, 32, 32] and (out / "categories.json").is_file()
    _, model = runs.load_trained(run, "detect", "")
    images = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    logits, boxes = session(out / "model.onnx").run(None, {"images": images.numpy()})
    with torch.no_grad():
        expected = model(images)
    assert logits.shape == (3, 5, 11) and boxes.shape == (3, 5, 4)
    assert np.abs(logits - expected["logits"].numpy()).max() <= TOL
    assert np.abs(boxes - expected["boxes"].numpy()).max() <= TOL


@pytest.mark.parametrize("task, args, message", [
    ("lm", ["--set", "model.positional='relative'"], "model.positional='relative'"),
    ("lm", ["--set", "model.arch='gru'"], "exports Transformer language models"),
    ("classify", ["--model", "nbsvm"], "linear baseline"),
    ("classify", ["--model", "lstm"], "model.arch='lstm'"),
])
def test_unsupported_settings_are_one_line_and_exit_2(root, capsys, task, args, message):
    data = ["--text", root / "text.txt"] if task == "lm" else ["--csv", root / "reviews.csv"]
    run = root / f"refused-{task}-{len(list(root.iterdir()))}"
    assert main(["train", task, *map(str, data), *SMALL, "--set", "model.n_layers=1", *args, "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--format", "onnx", "--out", str(root / "refused")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (root / "refused").exists()


def test_a_broken_run_directory_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "untrained").mkdir()
    (tmp_path / "untrained" / "run.json").write_text('{"task": "lm", "config": {}}')
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "run.json").write_text('{"task": ')
    for run, message in [("untrained", "no trained checkpoint"), ("garbled", "run.json")]:
        assert main(["export", str(tmp_path / run), "--format", "onnx", "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()
