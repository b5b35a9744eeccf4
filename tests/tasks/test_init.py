"""``seqlab train classify --init RUN``: a Transformer classifier started from a masked-LM run's encoder
and tokenizer. The body equals the pre-trained weights (read from the MLM run's own safetensors file),
frozen layers stay put, the body's rate is scaled, the run stands alone afterwards, and bad input is
one line, exit 2."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from seqlab.cli.main import main
from seqlab.config import load_config
from seqlab.tasks import classify, classify_init, run_dir
from seqlab.tasks.classify_config import ClassifyConfig
from seqlab.tasks.masked_lm import MaskedLanguageModel
from seqlab.train.optim import build_optimizer

QUIET = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.curves=false",
         "--set", "train.precision='fp32'"]
MLM = ["--set", "model.d_model=32", "--set", "model.n_heads=4", "--set", "model.n_layers=2", "--set", "model.d_ff=64",
       "--set", "data.block_size=14", "--set", "data.vocab_size=100", "--set", "train.batch_size=16",
       "--set", "train.eval_every=10", "--max-steps", "10", *QUIET]


@pytest.fixture(scope="module")
def texts(init_texts):
    return init_texts


@pytest.fixture(scope="module")
def mlm_run(texts, tmp_path_factory):
    run = tmp_path_factory.mktemp("init-mlm") / "mlm"
    assert main(["train", "mlm", "--text", str(texts / "corpus.txt"), "--out", str(run), *MLM]) == 0
    return run


def classify_args(texts, out, *extra):
    return ["train", "classify", "--csv", str(texts / "labelled.csv"), "--out", str(out), "--max-steps", "4",
            "--set", "train.eval_every=2", "--set", "train.batch_size=8", *QUIET, *map(str, extra)]


def started(mlm_run, texts, *overrides):
    """The classifier as ``train classify --init`` builds it, before its first step, and its config."""
    config = load_config(ClassifyConfig, None, [f"model.init='{mlm_run}'", *overrides])
    pretrained = classify_init.load_pretrained(mlm_run)
    config = classify_init.with_init(config, pretrained)
    return classify.start_model(config, pretrained.tokenizer.get_vocab_size(), 2, pretrained), config


def mlm_weights(mlm_run):
    return load_file(str(mlm_run / "checkpoints" / "best" / "model.safetensors"))


def test_the_body_starts_as_the_pretrained_encoder(mlm_run, texts):
    model, config = started(mlm_run, texts)
    assert (config.model.d_model, config.model.d_ff, config.data.max_len) == (32, 64, 16)  # the MLM's, not 128/256/256
    saved = mlm_weights(mlm_run)
    body = {name: tensor for name, tensor in model.state_dict().items() if name.startswith(model.BODY)}
    encoder = {name for name in saved if not name.startswith(("lm_head.", "head_transform."))}
    assert set(body) == encoder  # every encoder tensor, embedding to final norm, and nothing else
    for name, tensor in body.items():
        assert torch.equal(tensor, saved[name]), name
    # The classifier reads the ids as the MLM does: the pooled state is the MLM encoder's [CLS] state.
    mlm = MaskedLanguageModel.load(mlm_run)
    ids = torch.tensor([[2, 10, 11, 12, 3, 0], [2, 13, 3, 0, 0, 0]])
    pooled = []
    model.head.register_forward_hook(lambda module, args, out: pooled.append(args[0]))
    model.eval()(ids)
    torch.testing.assert_close(pooled[0], mlm.model.encode(ids)[:, 0])


def test_the_body_learns_at_the_scaled_rate(mlm_run, texts):
    model, config = started(mlm_run, texts, "train.body_lr_scale=0.25")
    optimizer = build_optimizer(model, config.train)
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    body = {id(p) for p in model.body_parameters()}
    assert body and all(rate[i] == pytest.approx(0.25 * config.train.lr) for i in body)
    rest = [p for p in model.parameters() if id(p) not in body]
    assert rest and all(rate[id(p)] == config.train.lr for p in rest)  # the head and the [CLS] vector


def test_frozen_layers_stay_and_the_run_stands_alone(mlm_run, texts, tmp_path, capsys):
    pretrained = tmp_path / "mlm"
    shutil.copytree(mlm_run, pretrained)
    out = tmp_path / "cls"
    assert main(classify_args(texts, out, "--init", pretrained, "--set", "train.freeze_layers=1")) == 0
    assert "replace the classify model settings" in capsys.readouterr().out
    saved, trained = mlm_weights(mlm_run), load_file(str(out / "checkpoints" / "last" / "model.safetensors"))
    frozen = [n for n in trained if n.startswith(("embedding.", "position.", "layers.0."))]
    assert frozen and all(torch.equal(trained[n], saved[n]) for n in frozen)
    second = [n for n in trained if n.startswith("layers.1.")]
    assert second and all(not torch.equal(trained[n], saved[n]) for n in second)  # trained, gently
    info = run_dir.read_run(out)
    assert info["config"]["model"]["init"] == str(pretrained)
    assert json.loads((out / "metrics.json").read_text())["init"] == str(pretrained)
    # Without the MLM run: the classifier's own tokenizer wraps each text as [CLS] … [SEP].
    shutil.rmtree(pretrained)
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    ids = tokenizer.encode("the cat sees a tree").ids
    assert (ids[0], ids[-1]) == (2, 3) and len(ids) > 2
    assert main(["predict", str(out), "the cat sees a tree"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("the cat sees a tree\t") and "animal" in line and "person" in line
    # A classifier has no --resume: refused as such, not for the pre-trained run that is gone.
    assert main(["train", "classify", "--resume", str(out)]) == 2
    assert capsys.readouterr().err.endswith("error: classification runs are short; start a new one instead of --resume\n")
    with pytest.raises(SystemExit):
        main(["train", "classify", "--help"])
    assert "refused: classification runs are short" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("case", ["missing", "translate", "width", "lstm", "too many frozen", "fsdp"])
def test_bad_init_is_one_line_exit_2(case, mlm_run, texts, tmp_path, capsys):
    init, extra = mlm_run, []
    if case == "missing":
        init = tmp_path / "nowhere"
    elif case == "translate":
        init = tmp_path / "translate-run"
        init.mkdir()
        run_dir.write_run(init, "translate", {})
    elif case == "width":
        extra = ["--set", "model.d_model=64"]
    elif case == "lstm":
        extra = ["--model", "lstm"]
    elif case == "fsdp":
        extra = ["--set", "parallel.dp_mode='fsdp'"]
    else:
        extra = ["--set", "train.freeze_layers=3"]
    out = tmp_path / "cls"
    assert main(classify_args(texts, out, "--init", init, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert {"missing": "no such run", "translate": "is a translate run", "width": "d_model=64",
            "lstm": "lstm", "too many frozen": "freeze_layers=3", "fsdp": "dp_mode='ddp'"}[case] in err
    assert not out.exists()


@pytest.mark.parametrize("reads", ["init", "csv"])
def test_overwrite_never_deletes_what_the_run_reads(reads, mlm_run, texts, tmp_path, capsys):
    """--out naming the --init run, or a run holding the training CSV, with --overwrite: refused before
    anything is deleted (replacing the directory would delete the run's own input)."""
    pretrained = tmp_path / "mlm"
    shutil.copytree(mlm_run, pretrained)
    if reads == "init":
        args, deleted = classify_args(texts, pretrained, "--overwrite", "--init", pretrained), pretrained
    else:
        deleted = shutil.copy(texts / "labelled.csv", pretrained / "labelled.csv")
        args = classify_args(pretrained, pretrained, "--overwrite")
    before = sorted(p.relative_to(pretrained) for p in pretrained.rglob("*"))
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"--overwrite would delete {deleted}, which this command reads" in err, err
    assert sorted(p.relative_to(pretrained) for p in pretrained.rglob("*")) == before


@pytest.mark.parametrize("max_len", [None, 8])
def test_a_text_longer_than_the_pretrained_blocks_is_one_line_naming_the_init(max_len, mlm_run, tmp_path, capsys):
    """The body reads 16 positions ([CLS] 14 [SEP]): raising data.max_len cannot help, so the line says
    what can (the usual hint, "raise it with --set data.max_len", would lead to another refusal) — unless
    data.max_len was set below the body's, where raising it is the answer."""
    rows = ["the cat sees a tree,animal", "the man sees a tree,person"] * 10 + [
        f"{'the cat sees a tree and ' * 4}a bird,animal"]
    data = tmp_path / "long.csv"
    data.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "cls"
    lowered = ["--set", f"data.max_len={max_len}"] if max_len else []
    assert main(["train", "classify", "--csv", str(data), "--out", str(out), "--max-steps", "2", *QUIET,
                 "--init", str(mlm_run), *lowered]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and not out.exists(), err
    if max_len:
        assert "data.max_len is 8 (raise it with --set data.max_len=N)" in err, err
    else:
        assert "data.max_len is 16" in err and f"--init {mlm_run} was pre-trained on no more" in err, err
        assert "raise it" not in err
