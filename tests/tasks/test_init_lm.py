"""``seqlab train classify --init LM_RUN``: a Transformer classifier started from a causal LM run (GPT's
fine-tuning, Radford et al., 2018 §3.2). The body equals the LM's weights (read from the LM run's own
safetensors file) and computes what the LM computes: the pooled state is the LM's own final state at
each text's last token; the run trains, predicts without the LM run, and bad input is one line, exit 2."""

import shutil

import pytest
import torch
from safetensors.torch import load_file

from seqlab.cli.main import main
from seqlab.config import load_config
from seqlab.data.batching import pad
from seqlab.data.tokenizer import encode_all
from seqlab.tasks import classify, classify_init
from seqlab.tasks.classify_config import ClassifyConfig
from seqlab.tasks.language_model import LanguageModel

QUIET = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.curves=false",
         "--set", "train.precision='fp32'"]
TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=2", "--set", "model.d_ff=32",
        "--set", "data.block_size=32", "--set", "train.batch_size=8", "--set", "train.eval_every=5", *QUIET]


@pytest.fixture(scope="module")
def texts(tmp_path_factory, write_texts):
    return write_texts(tmp_path_factory.mktemp("init-lm-data"), 300)


def train_lm(texts, out, *extra):
    assert main(["train", "lm", "--text", str(texts / "corpus.txt"), "--out", str(out), "--max-steps", "10",
                 *TINY, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def lm_run(texts, tmp_path_factory):
    return train_lm(texts, tmp_path_factory.mktemp("init-lm") / "lm")


def classify_args(texts, out, *extra):
    return ["train", "classify", "--csv", str(texts / "labelled.csv"), "--out", str(out), "--max-steps", "4",
            "--set", "train.eval_every=2", "--set", "train.batch_size=8", *QUIET, *map(str, extra)]


def started(run, *overrides):
    """The classifier as ``train classify --init`` builds it, before its first step, and its config."""
    config = load_config(ClassifyConfig, None, [f"model.init='{run}'", *overrides])
    pretrained = classify_init.load_pretrained(run)
    config = classify_init.with_init(config, pretrained)
    return classify.start_model(config, pretrained.tokenizer.get_vocab_size(), 2, pretrained), config, pretrained


@pytest.fixture(scope="module")
def rotary_post_ln_run(texts, tmp_path_factory):
    """GPT-1's post-LN (no LayerNorm on the embeddings, none at the end) with rotary positions."""
    return train_lm(texts, tmp_path_factory.mktemp("init-lm-rotary") / "lm", "--set", "model.positional='rotary'",
                    "--set", "model.norm_first=false")


@pytest.mark.parametrize("run", ["lm_run", "rotary_post_ln_run"])
def test_the_body_starts_as_the_pretrained_lm_and_computes_what_it_computes(run, request):
    lm_run = request.getfixturevalue(run)
    model, config, pretrained = started(lm_run)
    assert (config.model.d_model, config.model.d_ff, config.data.max_len) == (16, 32, 32)  # the LM's, not 128/256/256
    assert (model.config.causal, model.config.pool) == (True, "last")
    saved = load_file(str(lm_run / "checkpoints" / "best" / "model.safetensors"))
    body = {name: tensor for name, tensor in model.state_dict().items() if name.startswith(model.BODY)}
    assert set(body) == {name for name in saved if not name.startswith("lm_head.")}  # embedding to final norm
    for name, tensor in body.items():
        assert torch.equal(tensor, saved[name]), name
    # No special token: the ids are the LM's own tokens of the text.
    assert pretrained.tokenizer.encode("a dog").ids == LanguageModel.load(lm_run).tokenizer.encode("a dog").ids
    # The body's final (normalised) states are the LM's at every real token, padding or not (read
    # causally: a state that had read a later token would differ), and the pooled one is each text's last.
    lm = LanguageModel.load(lm_run).model
    rows = encode_all(pretrained.tokenizer, ["the cat sees a tree", "a dog"])
    ids = pad(rows)
    states, body_states, pooled = [], [], []
    lm.norm.register_forward_hook(lambda module, args, out: states.append(out))
    model.norm.register_forward_hook(lambda module, args, out: body_states.append(out))
    model.head.register_forward_hook(lambda module, args, out: pooled.append(args[0]))
    lm(ids)
    model.eval()(ids)
    real = ids != 0
    torch.testing.assert_close(body_states[0][real], states[0][real])
    last = torch.stack([states[0][i, len(row) - 1] for i, row in enumerate(rows)])
    torch.testing.assert_close(pooled[0], last)


def test_fine_tuning_trains_the_unfrozen_layers_and_the_run_stands_alone(lm_run, texts, tmp_path, capsys):
    pretrained = tmp_path / "lm"
    shutil.copytree(lm_run, pretrained)
    out = tmp_path / "cls"
    assert main(classify_args(texts, out, "--init", pretrained, "--set", "train.freeze_layers=1")) == 0
    assert "causally, no special tokens" in capsys.readouterr().out
    saved, trained = (load_file(str(run / "checkpoints" / name / "model.safetensors"))
                      for run, name in ((lm_run, "best"), (out, "last")))
    frozen = [n for n in trained if n.startswith(("embedding.", "position.", "layers.0."))]
    assert frozen and all(torch.equal(trained[n], saved[n]) for n in frozen)
    second = [n for n in trained if n.startswith("layers.1.")]
    assert second and all(not torch.equal(trained[n], saved[n]) for n in second)
    shutil.rmtree(pretrained)
    assert main(["predict", str(out), "the cat sees a tree"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("the cat sees a tree\t") and "animal" in line and "person" in line


@pytest.fixture(scope="module")
def gru_run(texts, tmp_path_factory):
    out = tmp_path_factory.mktemp("init-gru") / "gru"
    assert main(["train", "lm", "--text", str(texts / "corpus.txt"), "--out", str(out), "--max-steps", "2",
                 "--set", "model.arch='gru'", "--set", "model.d_model=16", "--set", "model.n_layers=1",
                 "--set", "data.block_size=16", *QUIET]) == 0
    return out


@pytest.mark.parametrize("case", ["gru", "width", "positions", "too long"])
def test_bad_lm_init_is_one_line_exit_2(case, lm_run, texts, tmp_path, capsys, request):
    init, extra = lm_run, []
    if case == "gru":
        init = request.getfixturevalue("gru_run")
    elif case == "width":
        extra = ["--set", "model.d_model=64"]
    elif case == "positions":
        extra = ["--set", "model.positional='relative'"]
    else:
        extra = ["--set", "data.max_len=100"]
    capsys.readouterr()
    out = tmp_path / "cls"
    assert main(classify_args(texts, out, "--init", init, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert {"gru": "is a gru language model", "width": "decoder has d_model=16",
            "positions": "positional=relative", "too long": "data.max_len=100"}[case] in err
    assert not out.exists()
