"""seqlab export --format hf / seqlab import hf for GPT-2: the converted model computes what the original
does, in the other library (transformers is the oracle; nothing is downloaded: the models are tiny and
random, built here)."""

import json
import random
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import (AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel,  # noqa: E402
                          PreTrainedTokenizerFast)

import seqlab  # noqa: E402
from seqlab.cli.main import main  # noqa: E402
from seqlab.tasks import views  # noqa: E402
from seqlab.models import (RecurrentLM, RecurrentLMConfig, TransformerLM, TransformerLMConfig,  # noqa: E402
                           from_pretrained)
from cli_run import run_cli  # noqa: E402

TEXT = "".join(f"{random.Random(i).choice(['the cat', 'a dog', 'my friend'])} sees the sun {i}.\n" for i in range(300))
TINY_LM = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=2",
           "--set", "data.block_size=16", "--set", "train.batch_size=4", "--set", "train.progress=false",
           "--set", "train.tensorboard=false", "--set", "train.eval_every=100", "--set", "train.precision=fp32",
           "--max-steps", "3"]


def assert_close_relative(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Elementwise within 1e-5 of the reference's scale (fp32)."""
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * float(theirs.abs().max()))


def randomize(model: torch.nn.Module, std: float = 0.3) -> None:
    """Every weight, bias and LayerNorm gain random, so that a mapping that mixes any two up shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, std)


def byte_bpe_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([TEXT], trainer)
    return tokenizer


def tiny_hf_gpt2(directory, **config) -> GPT2LMHeadModel:
    """A random GPT-2 and a byte-level BPE tokenizer, saved as transformers saves them."""
    tokenizer = byte_bpe_tokenizer()
    eos = tokenizer.token_to_id("<|endoftext|>")
    settings = dict(n_layer=2, n_head=2, n_embd=16, vocab_size=tokenizer.get_vocab_size(), n_positions=32,
                    bos_token_id=eos, eos_token_id=eos)
    model = GPT2LMHeadModel(GPT2Config(**{**settings, **config})).eval()
    randomize(model)
    model.save_pretrained(directory)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>").save_pretrained(directory)
    return model


def hf_greedy(model, ids: torch.Tensor, n: int) -> torch.Tensor:
    """n tokens by argmax, never stopping early at an end-of-text token."""
    with torch.no_grad():
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                              do_sample=False, pad_token_id=0)


@pytest.mark.parametrize("settings", [{}, {"activation_function": "gelu", "tie_word_embeddings": False,
                                            "n_inner": 24}])
def test_imported_gpt2_computes_what_transformers_does(tmp_path, capsys, settings):
    hf = tiny_hf_gpt2(tmp_path / "hf", **settings)
    capsys.readouterr()
    code, out, err = run_cli("import", "hf", tmp_path / "hf", "--out", tmp_path / "run", capsys=capsys)
    assert code == 0, err
    assert "GPT-2" in out and len(out.strip().splitlines()) == 1 and ".run." not in out  # not the temporary name

    lm = seqlab.load(tmp_path / "run")
    ids = torch.randint(0, hf.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_close_relative(lm.model(ids), hf(ids).logits)
    prompt = ids[:1, :5]
    ours = lm.model.generate(prompt, 10, temperature=0)
    assert torch.equal(ours, hf_greedy(hf, prompt, 10))
    text = "the cat sees 42 dogs.\n"
    assert lm.tokenizer.encode(text).ids == AutoTokenizer.from_pretrained(tmp_path / "hf")(text)["input_ids"]

    # the run is one that seqlab's commands read
    code, out, err = run_cli("generate", tmp_path / "run", "--prompt", "the", "--max-new-tokens", 5,
                             "--temperature", 0, capsys=capsys)
    assert code == 0, err
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    code, out, err = run_cli("eval", tmp_path / "run", "--text", corpus, capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["tokens"] == len(lm.tokenizer.encode(TEXT).ids)
    explored = views.generation(lm, "the cat", 5)  # what seqlab explore shows
    assert explored["views"]["causal self-attention"] and isinstance(explored["output"], str)
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("text,label\n" + "".join(f"{s} sees the sun,{s[-3:]}\n" for s in ["the cat", "a dog"] * 8))
    code, out, err = run_cli("train", "classify", "--csv", labelled, "--init", tmp_path / "run", "--out",
                             tmp_path / "classify", "--max-steps", 2, "--set", "train.batch_size=4",
                             "--set", "train.progress=false", "--set", "train.tensorboard=false",
                             "--set", "train.curves=false", "--set", "train.precision=fp32", capsys=capsys)
    assert code == 0, err


def test_gpt2_imported_then_exported_is_the_original(tmp_path, capsys):
    """Round trip; and GPT-2's original tokenizer files (vocab.json + merges.txt, no tokenizer.json) read
    as the same byte-level BPE."""
    hf = tiny_hf_gpt2(tmp_path / "hf")
    original = AutoTokenizer.from_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "tokenizer.json").unlink()
    Tokenizer.from_str(original.backend_tokenizer.to_str()).model.save(str(tmp_path / "hf"))
    assert {"vocab.json", "merges.txt"} <= {p.name for p in (tmp_path / "hf").iterdir()}
    capsys.readouterr()
    code, _, err = run_cli("import", "hf", tmp_path / "hf", "--out", tmp_path / "run", capsys=capsys)
    assert code == 0, err
    code, _, err = run_cli("train", "lm", "--resume", tmp_path / "run", capsys=capsys)  # weights only
    assert code == 2 and err.count("\n") == 1 and "was imported (Hugging Face GPT-2 " in err
    assert "no training state to resume; use it as it is (predict, eval)\n" in err
    code, _, err = run_cli("export", tmp_path / "run", "--format", "hf", "--out", tmp_path / "again", capsys=capsys)
    assert code == 0, err

    again = AutoModelForCausalLM.from_pretrained(tmp_path / "again").eval()
    ids = torch.randint(0, hf.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_close_relative(again(ids).logits, hf(ids).logits)
    text = "the cat sees 42 dogs.<|endoftext|>a dog"
    assert AutoTokenizer.from_pretrained(tmp_path / "again")(text)["input_ids"] == original(text)["input_ids"]
    assert (again.config.eos_token_id, again.config.bos_token_id) == (hf.config.eos_token_id,) * 2


@pytest.mark.parametrize("layout", ["unprefixed", "sharded"])
def test_gpt2_weights_as_other_checkpoints_store_them(tmp_path, capsys, layout):
    """OpenAI's GPT-2 checkpoints name the weights without ``transformer.`` and keep the attention's
    causal-mask buffers; large checkpoints come in shards with an index."""
    hf = tiny_hf_gpt2(tmp_path / "hf")
    if layout == "unprefixed":
        tensors = load_file(str(tmp_path / "hf" / "model.safetensors"))
        tensors = {name.removeprefix("transformer."): t for name, t in tensors.items()}
        for i in range(hf.config.n_layer):
            tensors[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 32, 32))
        save_file(tensors, str(tmp_path / "hf" / "model.safetensors"), metadata={"format": "pt"})
    else:
        (tmp_path / "hf" / "model.safetensors").unlink()
        hf.save_pretrained(tmp_path / "hf", max_shard_size="20KB")
        assert len(list((tmp_path / "hf").glob("model-*.safetensors"))) > 1
    capsys.readouterr()
    code, _, err = run_cli("import", "hf", tmp_path / "hf", "--out", tmp_path / "run", capsys=capsys)
    assert code == 0, err
    ids = torch.randint(0, hf.config.vocab_size, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_close_relative(seqlab.load(tmp_path / "run").model(ids), hf(ids).logits)


def train_tiny_lm(directory, *settings):
    corpus = directory / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    run = directory / "run"
    assert main([str(a) for a in ["train", "lm", "--text", corpus, "--out", run, *TINY_LM, *settings]]) == 0
    return run


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    """A tiny Transformer LM trained with the defaults (learned positions, pre-LN, GELU, tied, char tokens)."""
    return train_tiny_lm(tmp_path_factory.mktemp("char"))


BPE_TANH_UNTIED = ["--set", "data.tokenizer=bpe", "--set", "data.vocab_size=300", "--set", "model.activation=gelu_tanh",
                   "--set", "model.tie_weights=false"]


@pytest.mark.parametrize("settings", [None, BPE_TANH_UNTIED])
def test_exported_run_computes_the_same_in_transformers(tmp_path, capsys, char_run, settings):
    if settings is None:
        run = tmp_path / "run"
        shutil.copytree(char_run, run)
    else:
        run = train_tiny_lm(tmp_path, *settings)
    capsys.readouterr()
    model = from_pretrained(run)
    randomize(model)  # 3 steps leave the biases and gains near their initial values: make every one count
    model.save_pretrained(run / "checkpoints" / "best")
    code, out, err = run_cli("export", run, "--format", "hf", "--out", tmp_path / "hf", capsys=capsys)
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1 and ".hf." not in out

    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    hf_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    lm = seqlab.load(run)
    ids = torch.randint(0, model.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_close_relative(hf(ids).logits, lm.model(ids))
    prompt = ids[:1, :4]
    assert torch.equal(hf_greedy(hf, prompt, 10), lm.model.generate(prompt, 10, temperature=0))

    text = "my friend sees a tree 7.\nthe dog"
    assert hf_tokenizer(text)["input_ids"] == lm.tokenizer.encode(text).ids
    assert hf_tokenizer.decode(lm.tokenizer.encode(text).ids) == text
    assert hf_tokenizer.eos_token == "<eos>" and hf.config.eos_token_id == lm.tokenizer.token_to_id("<eos>")


@pytest.mark.parametrize("model, message", [
    (TransformerLM(TransformerLMConfig(33, 16, 2, 2, positional="rotary")),
     "model.positional=rotary: GPT-2 adds learned positions"),
    (TransformerLM(TransformerLMConfig(33, 16, 2, 2, positional="sinusoidal")), "model.positional=sinusoidal"),
    (TransformerLM(TransformerLMConfig(33, 16, 2, 2, positional="relative")), "model.positional=relative"),
    (TransformerLM(TransformerLMConfig(33, 16, 2, 2, norm_first=False)), "post-LN"),
    (RecurrentLM(RecurrentLMConfig(33, 16, 1, cell="lstm")), "only a Transformer LM"),
])
def test_export_refuses_what_gpt2_lacks(tmp_path, capsys, char_run, model, message):
    """The run trained with other settings: its best checkpoint replaced by a model of those settings."""
    run = tmp_path / "run"
    shutil.copytree(char_run, run)
    shutil.rmtree(run / "checkpoints" / "last", ignore_errors=True)
    model.save_pretrained(run / "checkpoints" / "best")
    code, _, err = run_cli("export", run, "--format", "hf", "--out", tmp_path / "hf", capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "hf").exists() and not list(tmp_path.glob(".hf.*"))


def test_import_refuses_broken_and_foreign_checkpoints(tmp_path, capsys):
    hf = tmp_path / "hf"
    tiny_hf_gpt2(hf)
    capsys.readouterr()
    config = json.loads((hf / "config.json").read_text())

    def refused(message):
        code, _, err = run_cli("import", "hf", hf, "--out", tmp_path / "run", capsys=capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "run").exists()

    for key, value, message in [("activation_function", "silu", "activation_function='silu'"),
                                ("scale_attn_weights", False, "scale_attn_weights=false"),
                                ("layer_norm_epsilon", 1e-6, "layer_norm_epsilon=1e-06"),
                                ("n_embd", 24, "does not hold the GPT-2 that config.json describes"),
                                ("n_head", 3, "n_head must divide n_embd"), ("n_layer", "2", "positive integers")]:
        (hf / "config.json").write_text(json.dumps({**config, key: value}))
        refused(message)
    (hf / "config.json").write_text(json.dumps(config))

    (hf / "tokenizer.json").rename(hf / "kept.json")
    refused("has no tokenizer")
    (hf / "tokenizer.json").write_text("{not json")
    refused("tokenizer.json is not a tokenizers JSON file")  # not "train the run again": it is no run's
    (hf / "kept.json").rename(hf / "tokenizer.json")
    kept = (hf / "tokenizer.json").read_text()
    gapped = json.loads(kept)  # as many tokens as the model's rows, one id past them: counted by ids
    last = max(gapped["model"]["vocab"], key=gapped["model"]["vocab"].get)
    gapped["model"]["vocab"][last] = config["vocab_size"]
    (hf / "tokenizer.json").write_text(json.dumps(gapped))
    refused(f"the tokenizer's ids go up to {config['vocab_size']}, past the model's vocab_size {config['vocab_size']}")
    (hf / "tokenizer.json").write_text(kept)

    (hf / "model.safetensors").write_bytes(b"\x00" * 5)
    refused("model.safetensors is damaged")
    (hf / "model.safetensors").unlink()
    (hf / "pytorch_model.bin").write_bytes(b"pickle")
    refused("pytorch_model.bin, a pickle")


def test_overwrite_rules(tmp_path, capsys):
    tiny_hf_gpt2(tmp_path / "hf")
    capsys.readouterr()
    run = tmp_path / "run"
    assert run_cli("import", "hf", tmp_path / "hf", "--out", run, capsys=capsys)[0] == 0
    code, _, err = run_cli("import", "hf", tmp_path / "hf", "--out", run, capsys=capsys)
    assert code == 2 and "already exists; pass --overwrite" in err
    assert run_cli("import", "hf", tmp_path / "hf", "--out", run, "--overwrite", capsys=capsys)[0] == 0

    code, _, err = run_cli("export", run, "--format", "hf", "--out", tmp_path / "hf", "--overwrite", capsys=capsys)
    # the user's own checkpoint stays
    assert code == 2 and "is no export of seqlab's (it holds no seqlab-export.json)" in err
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    for _ in range(2):  # an export seqlab wrote is replaced with --overwrite
        code, _, err = run_cli("export", run, "--format", "hf", "--out", tmp_path / "out", "--overwrite",
                               capsys=capsys)
        assert code == 0, err
