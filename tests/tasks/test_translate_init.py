"""``seqlab train translate --init MLM_RUN``: the Transformer's encoder starts from a masked-LM run's
(Rothe et al., 2020's BERT2RND). The encoder's weights are the MLM's (read from its own safetensors file)
and its memory is the MLM encoder's hidden states, pre-LN and post-LN; the source reads the MLM's
WordPiece tokenizer; the run trains, translates and resumes without the MLM run; bad input is one line,
exit 2."""

import json
import random
import shutil

import pytest
import torch
from safetensors.torch import load_file

from seqlab.cli.main import main
from seqlab.config import load_config
from seqlab.data.batching import pad
from seqlab.data.tokenizer import encode_all
from seqlab.tasks import translate_init
from seqlab.tasks.masked_lm import MaskedLanguageModel
from seqlab.tasks.translate import TranslateConfig
from seqlab.tasks.translation_models import build_model

QUIET = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.curves=false",
         "--set", "train.precision='fp32'"]
MLM = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=2", "--set", "model.d_ff=32",
       "--set", "data.block_size=14", "--set", "data.vocab_size=80", "--set", "train.batch_size=16",
       "--set", "train.eval_every=5", "--max-steps", "5", *QUIET]
WORDS = {"the": "le", "a": "un", "cat": "chat", "dog": "chien", "sees": "voit", "sun": "soleil", "tree": "arbre",
         "river": "fleuve"}


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """A source-language corpus and a parallel text (word by word) over the same words."""
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("translate-init-data")
    sentences = [f"{rng.choice(['the cat', 'a dog'])} sees {rng.choice(['the sun', 'a tree', 'the river'])}"
                 for _ in range(200)]
    (folder / "corpus.txt").write_text("".join(s + ".\n" for s in sentences), encoding="utf-8")
    (folder / "train.src").write_text("\n".join(sentences[:60]) + "\n", encoding="utf-8")
    (folder / "train.tgt").write_text("\n".join(" ".join(WORDS[w] for w in s.split()) for s in sentences[:60]) + "\n",
                                      encoding="utf-8")
    return folder


def train_mlm(texts, out, *extra):
    assert main(["train", "mlm", "--text", str(texts / "corpus.txt"), "--out", str(out), *MLM, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def mlm_run(texts, tmp_path_factory):
    return train_mlm(texts, tmp_path_factory.mktemp("translate-init-mlm") / "mlm")


@pytest.fixture(scope="module")
def post_ln_run(texts, tmp_path_factory):
    return train_mlm(texts, tmp_path_factory.mktemp("translate-init-post-ln") / "mlm", "--set", "model.norm_first=false")


def translate_args(texts, out, *extra):
    return ["train", "translate", "--src", str(texts / "train.src"), "--tgt", str(texts / "train.tgt"),
            "--out", str(out), "--max-steps", "4", "--set", "train.eval_every=2", "--set", "train.batch_size=8",
            "--set", "data.tokenizer='word'", "--set", "decode.beam_size=1", *QUIET, *map(str, extra)]


@pytest.mark.parametrize("run", ["mlm_run", "post_ln_run"])
def test_the_encoder_starts_as_the_masked_lms_and_computes_what_it_computes(run, request):
    run = request.getfixturevalue(run)
    encoder = translate_init.load_encoder(run)
    config = translate_init.with_init(load_config(TranslateConfig, None, [f"model.init='{run}'"]), encoder)
    assert (config.model.d_model, config.model.d_ff, config.model.activation, config.data.max_len) == (16, 32, "gelu", 16)
    torch.manual_seed(0)
    model = build_model(config, encoder.tokenizer.get_vocab_size(), 30)
    translate_init.load_encoder_into(model, encoder)
    saved = load_file(str(run / "checkpoints" / "best" / "model.safetensors"))
    parts = {name for name in model.state_dict() if name.startswith(("src_embed.", "encoder."))}
    assert len(parts) == len([n for n in saved if not n.startswith(("lm_head.", "head_transform."))])
    for name, tensor in translate_init.encoder_state(saved).items():
        assert torch.equal(model.state_dict()[name], tensor), name
    # The memory is the masked LM's hidden states over [CLS] sentence [SEP]: unscaled embeddings, and
    # post-LN's embedding LayerNorm, as the MLM read them.
    rows = encode_all(encoder.tokenizer, ["the cat sees a tree", "a dog sees the sun ."])
    assert all(row[0] == 2 and row[-1] == 3 for row in rows)  # [CLS] … [SEP]
    ids = pad(rows)
    memory, _ = model.eval().encode(ids)
    hidden = MaskedLanguageModel.load(run).model.encode(ids)
    real = ids != 0
    torch.testing.assert_close(memory[real], hidden[real])


def test_a_run_from_an_mlm_encoder_trains_translates_and_resumes_on_its_own(mlm_run, texts, tmp_path, capsys):
    pretrained = tmp_path / "mlm"
    shutil.copytree(mlm_run, pretrained)
    out = tmp_path / "mt"
    assert main(translate_args(texts, out, "--init", pretrained)) == 0
    assert "the decoder and the target tokenizer start fresh" in capsys.readouterr().out
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["model"]["init"] == str(pretrained) and config["model"]["d_model"] == 16
    source = json.loads((out / "src_tokenizer.json").read_text())
    assert source["model"]["type"] == "WordPiece" and source["post_processor"]["type"] == "TemplateProcessing"
    assert json.loads((out / "tgt_tokenizer.json").read_text())["model"]["type"] == "WordLevel"  # its own
    shutil.rmtree(pretrained)
    assert main(["train", "translate", "--resume", str(out), "--max-steps", "6"]) == 0
    capsys.readouterr()
    assert main(["translate", str(out), "the cat sees a zebra"]) == 0
    out_text, err = capsys.readouterr()
    assert out_text.endswith("\n") and "'zebra'" in err  # WordPiece's [UNK], named (not [CLS] or [SEP])


@pytest.mark.parametrize("case", ["rnn", "width", "lm run", "too long"])
def test_bad_translate_init_is_one_line_exit_2(case, mlm_run, texts, tmp_path, capsys):
    init, extra = mlm_run, []
    if case == "rnn":
        extra = ["--set", "model.arch='attention'"]
    elif case == "width":
        extra = ["--set", "model.d_model=64"]
    elif case == "lm run":
        init = tmp_path / "lm-run"
        init.mkdir()
        (init / "run.json").write_text(json.dumps({"task": "lm", "config": {}}))
    else:
        extra = ["--set", "data.max_len=100"]
    capsys.readouterr()
    out = tmp_path / "mt"
    assert main(translate_args(texts, out, "--init", init, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert {"rnn": "model.arch=attention cannot take one", "width": "encoder has d_model=16",
            "lm run": "is a lm run", "too long": "data.max_len=100"}[case] in err
    assert not out.exists()


@pytest.mark.parametrize("side", ["src", "tgt"])
def test_a_sentence_longer_than_the_pretrained_blocks_is_one_line_naming_the_init(side, mlm_run, texts, tmp_path,
                                                                                 capsys):
    """data.max_len is the encoder's 16 positions, which the decoder shares: raising it would be refused, so
    the line says what helps (as train classify --init does)."""
    data = tmp_path / "data"
    shutil.copytree(texts, data)
    long = {"src": "the cat sees the sun " * 4, "tgt": "le chat voit le soleil " * 4}
    short = {"src": "the cat sees the sun", "tgt": "le chat voit le soleil"}
    for name in ("src", "tgt"):
        with open(data / f"train.{name}", "a", encoding="utf-8") as f:
            f.write((long if name == side else short)[name].strip() + "\n")
    out = tmp_path / "mt"
    assert main(translate_args(data, out, "--init", mlm_run)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and not out.exists(), err
    assert "data.max_len is 16" in err and f"--init {mlm_run} was pre-trained on no more" in err, err
    assert "raise it" not in err


def test_a_bad_init_with_overwrite_keeps_the_existing_run(mlm_run, texts, tmp_path, capsys):
    """--init is checked before the run directory is replaced: a typo costs nothing."""
    out = tmp_path / "mt"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"task": "translate", "config": {}}))
    (out / "keep.txt").write_text("an earlier run's file")
    assert main(translate_args(texts, out, "--init", tmp_path / "no-such-mlm", "--overwrite")) == 2
    assert "no-such-mlm" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "an earlier run's file"
