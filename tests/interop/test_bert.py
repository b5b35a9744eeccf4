"""BERT in and out of seqlab, checked against ``transformers`` itself: a tiny random BertForMaskedLM
imported computes the logits transformers computes; seqlab masked-LM and classifier runs exported load
with AutoModel*/AutoTokenizer and compute seqlab's logits from the same token ids; settings BERT has no
equivalent for, and broken checkpoint directories, are one line and exit 2."""

import json
import random

import pytest
import torch

transformers = pytest.importorskip("transformers")
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers  # noqa: E402

from seqlab.cli.main import main  # noqa: E402
from seqlab.tasks.classify import TextClassifierRun  # noqa: E402
from seqlab.tasks.masked_lm import MaskedLanguageModel  # noqa: E402
from cli_run import run_cli as cli

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = "the cat dog sees likes a tree river house my friend teacher".split()
QUIET = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.curves=false",
         "--set", "train.precision='fp32'"]
MLM = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=2", "--set", "model.d_ff=32",
       "--set", "data.block_size=14", "--set", "data.vocab_size=60", "--set", "train.batch_size=8",
       "--set", "train.eval_every=3", "--max-steps", "3", *QUIET]
POST_LN = ["--set", "model.norm_first=false"]
TEXTS = ["the cat sees a tree", "my friend likes the river house", "a dog"]


def relative_error(expected: torch.Tensor, got: torch.Tensor) -> float:
    return float((expected - got).abs().max() / expected.abs().max())


# --- a tiny BERT made here, imported ---------------------------------------------------------------

def tiny_tokenizer() -> Tokenizer:
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    tokens = dict.fromkeys(SPECIALS + WORDS + list("abcdefghijklmnopqrstuvwxyz") + pieces)  # "a" once
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.add_special_tokens(SPECIALS)
    return tokenizer


def tiny_bert(directory, cls=None, **config):
    """A random BertForMaskedLM (or ``cls``) with its tokenizer, saved to ``directory``; every parameter
    moved off its initial value (LayerNorms not 1 and 0, biases not 0), so a misplaced tensor shows."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    settings = dict(vocab_size=tokenizer.get_vocab_size(), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=40)
    model = (cls or transformers.BertForMaskedLM)(transformers.BertConfig(**{**settings, **config})).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    model.save_pretrained(directory)
    transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                         cls_token="[CLS]", sep_token="[SEP]",
                                         mask_token="[MASK]").save_pretrained(directory)
    return model


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf") / "tiny-bert"
    return directory, tiny_bert(directory)


@pytest.fixture(scope="module")
def imported(bert, tmp_path_factory):
    run = tmp_path_factory.mktemp("imported") / "run"
    assert main(["import", "hf", str(bert[0]), "--out", str(run)]) == 0
    return run


def padded_ids(vocab_size: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab_size, (3, 17), generator=generator)
    ids[:, 0], ids[1, 11:], ids[2, 6:] = 2, 0, 0  # [CLS] first; rows 1 and 2 padded
    return ids


def test_imported_bert_computes_transformers_logits(bert, imported):
    _, hf = bert
    ours = MaskedLanguageModel.load(imported).model
    ids = padded_ids(hf.config.vocab_size)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=(ids != 0).long()).logits
        got = ours(ids)
    keep = ids != 0
    assert relative_error(expected[keep], got[keep]) <= 1e-5
    assert ours.config.layer_norm_eps == hf.config.layer_norm_eps == 1e-12


def test_imported_run_predicts_and_starts_a_classifier(imported, tmp_path, capsys):
    code, out, err = cli("predict", imported, "the [MASK] sees a tree", capsys=capsys)
    assert code == 0 and out.count("[MASK] 1: ") == 1, err
    rows = [f"{s} sees a tree,{'animal' if s in ('the cat', 'a dog') else 'person'}"
            for s in ["the cat", "a dog", "my friend", "the teacher"] * 6]
    (tmp_path / "labelled.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    code, _, err = cli("train", "classify", "--csv", tmp_path / "labelled.csv", "--out", tmp_path / "clf",
                       "--init", imported, "--max-steps", 2, "--set", "train.batch_size=8", *QUIET, capsys=capsys)
    assert code == 0, err
    assert TextClassifierRun(tmp_path / "clf").model.embedding_norm.eps == 1e-12  # the body's, as BERT's
    (tmp_path / "text.txt").write_text(" ".join(random.Random(0).choice(WORDS) for _ in range(400)))
    code, out, err = cli("eval", imported, "--text", tmp_path / "text.txt", capsys=capsys)
    assert code == 0 and "accuracy" in out, err
    from fastapi.testclient import TestClient

    from seqlab.explore.app import create_app

    client = TestClient(create_app(imported))
    assert client.get("/api/run").status_code == 200, "explore opens the run"
    assert client.post("/api/infer", json={"text": "the [MASK] sees a tree"}).status_code == 200


def test_a_checkpoint_with_vocab_txt_only_imports_alike(bert, imported, tmp_path):
    """BERT's older layout: the WordPiece vocabulary as vocab.txt, one token a line in id order."""
    directory = tmp_path / "bert"
    directory.mkdir()
    for name in ("config.json", "model.safetensors"):
        (directory / name).write_bytes((bert[0] / name).read_bytes())
    vocab = tiny_tokenizer().get_vocab()
    (directory / "vocab.txt").write_text("".join(f"{token}\n" for token in sorted(vocab, key=vocab.get)))
    assert main(["import", "hf", str(directory), "--out", str(tmp_path / "run")]) == 0
    ours, theirs = MaskedLanguageModel.load(tmp_path / "run"), MaskedLanguageModel.load(imported)
    for text in TEXTS + ["The Cat sees a TREEHOUSE [MASK]"]:
        assert ours.encode(text).tolist() == theirs.encode(text).tolist()
    assert torch.equal(ours.model.lm_head.bias, theirs.model.lm_head.bias)


def test_import_then_export_is_the_same_bert(bert, imported, tmp_path):
    directory, hf = bert
    assert main(["export", str(imported), "--format", "hf", "--out", str(tmp_path / "again")]) == 0
    again = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "again").eval()
    ids = padded_ids(hf.config.vocab_size)
    mask = (ids != 0).long()
    with torch.no_grad():  # token types 0 and 1 now add nothing: compare single segments, type 0
        assert relative_error(hf(input_ids=ids, attention_mask=mask).logits,
                              again(input_ids=ids, attention_mask=mask).logits) <= 1e-5


# --- seqlab runs exported ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    subjects, objects = ["the cat", "a dog", "my friend", "the teacher"], ["a tree", "the river", "the house"]
    folder = tmp_path_factory.mktemp("bert-data")
    lines = [f"{rng.choice(subjects)} {rng.choice(['sees', 'likes'])} {rng.choice(objects)}.\n" for _ in range(400)]
    (folder / "corpus.txt").write_text("".join(lines), encoding="utf-8")
    rows = [f"{s} sees {rng.choice(objects)},{'animal' if s in subjects[:2] else 'person'}" for s in subjects * 6]
    (folder / "labelled.csv").write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def mlm_run(corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("bert-mlm") / "mlm"
    assert main(["train", "mlm", "--text", str(corpus / "corpus.txt"), "--out", str(run), *MLM, *POST_LN]) == 0
    return run


def hf_batch(directory):
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    return tokenizer, tokenizer(TEXTS, padding=True, return_tensors="pt")


def test_exported_mlm_loads_in_transformers_with_seqlab_logits(mlm_run, tmp_path):
    out = tmp_path / "hf"
    assert main(["export", str(mlm_run), "--format", "hf", "--out", str(out)]) == 0
    ours = MaskedLanguageModel.load(mlm_run)
    tokenizer, batch = hf_batch(out)
    for row, text in zip(batch["input_ids"], TEXTS):  # the tokenizer reads as seqlab's masked LM does
        assert row[row != tokenizer.pad_token_id].tolist() == ours.encode(text)[0].tolist()
    hf = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
    assert isinstance(hf, transformers.BertForMaskedLM)
    with torch.no_grad():
        expected = ours.model(batch["input_ids"])
        got = hf(**batch).logits
    keep = batch["attention_mask"].bool()
    assert relative_error(expected[keep], got[keep]) <= 1e-5
    assert json.loads((out / "seqlab-export.json").read_text())["format"] == "hf"


def test_exported_classifier_loads_in_transformers_with_seqlab_logits(mlm_run, corpus, tmp_path):
    run, out = tmp_path / "clf", tmp_path / "hf"
    assert main(["train", "classify", "--csv", str(corpus / "labelled.csv"), "--out", str(run), "--init", str(mlm_run),
                 "--max-steps", "3", "--set", "train.batch_size=8", "--set", "model.pooler=true", *QUIET]) == 0
    assert main(["export", str(run), "--format", "hf", "--out", str(out)]) == 0
    ours = TextClassifierRun(run)
    tokenizer, batch = hf_batch(out)
    for row, text in zip(batch["input_ids"], TEXTS):
        assert row[row != tokenizer.pad_token_id].tolist() == ours.tokenizer.encode(text).ids
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert isinstance(hf, transformers.BertForSequenceClassification)
    assert [hf.config.id2label[i] for i in range(len(ours.classes))] == ours.classes
    with torch.no_grad():
        assert relative_error(ours.model(batch["input_ids"]), hf(**batch).logits) <= 1e-5


# --- refusals: one line, exit 2 ---------------------------------------------------------------------

def test_settings_bert_lacks_are_refused(corpus, mlm_run, tmp_path, capsys):
    pre_ln = tmp_path / "pre-ln"
    assert main(["train", "mlm", "--text", str(corpus / "corpus.txt"), "--out", str(pre_ln), *MLM]) == 0
    no_pooler = tmp_path / "no-pooler"
    assert main(["train", "classify", "--csv", str(corpus / "labelled.csv"), "--out", str(no_pooler),
                 "--init", str(mlm_run), "--max-steps", "2", "--set", "train.batch_size=8", *QUIET]) == 0
    lstm = tmp_path / "lstm"
    assert main(["train", "classify", "--csv", str(corpus / "labelled.csv"), "--out", str(lstm), "--model", "lstm",
                 "--max-steps", "2", "--set", "train.batch_size=8", *QUIET]) == 0
    capsys.readouterr()
    for run, named in [(pre_ln, "norm_first=True has no BERT equivalent"),
                       (no_pooler, "pooler=False has no BERT equivalent"), (lstm, "a lstm classifier is no Transformer")]:
        code, _, err = cli("export", run, "--format", "hf", "--out", tmp_path / "out", capsys=capsys)
        assert code == 2 and named in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()


def write_json(path, value):
    path.write_text(json.dumps(value))


@pytest.mark.parametrize("damage, message", [
    (lambda d: write_json(d / "config.json", {**json.loads((d / "config.json").read_text()), "hidden_act": "relu"}),
     "hidden_act='relu'"),
    (lambda d: write_json(d / "config.json", {**json.loads((d / "config.json").read_text()),
                                              "position_embedding_type": "relative_key"}), "position_embedding_type"),
    (lambda d: (d / "model.safetensors").unlink(), "has no model.safetensors"),
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:200]),
     "model.safetensors is damaged"),
    (lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"), "a pickle (loading one can run code)"),
    (lambda d: (d / "tokenizer.json").unlink(), "has no tokenizer"),
    (lambda d: write_json(d / "config.json", {"model_type": "bert"}), "lacks vocab_size"),
    # a string where a number goes was said to be missing; no model_type was "a None model"
    (lambda d: write_json(d / "config.json", {**json.loads((d / "config.json").read_text()), "vocab_size": "88"}),
     "vocab_size='88' must be whole numbers"),
    (lambda d: write_json(d / "config.json", {k: v for k, v in json.loads((d / "config.json").read_text()).items()
                                              if k != "model_type"}), "has no model_type; seqlab imports bert, gpt2"),
    (lambda d: write_json(d / "config.json", {**json.loads((d / "config.json").read_text()), "vocab_size": 99}),
     "are not the model's 99 embedding rows"),
])
def test_broken_or_foreign_checkpoints_are_refused(tmp_path, capsys, damage, message):
    directory = tmp_path / "bert"
    tiny_bert(directory)
    damage(directory)
    capsys.readouterr()  # transformers' own output while saving
    code, _, err = cli("import", "hf", directory, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_a_bert_without_its_masked_lm_head_is_refused(tmp_path, capsys):
    tiny_bert(tmp_path / "bert", cls=transformers.BertModel)
    capsys.readouterr()
    code, _, err = cli("import", "hf", tmp_path / "bert", "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and "no masked-LM head" in err and len(err.strip().splitlines()) == 1, err


def test_an_imported_bert_does_not_resume_and_says_what_it_can_do(imported, capsys):
    code, _, err = cli("train", "mlm", "--resume", imported, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "was imported (" in err
    assert err.endswith(f"no training state to resume; use it as it is (predict, eval), or fine-tune a classifier "
                        f"from it (seqlab train classify --init {imported})\n")
