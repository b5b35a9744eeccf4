"""seqlab export --format hf / seqlab import hf for translation: a post-LN, sinusoidal translation run
loads in ``transformers`` as MarianMTModel, a pre-LN one as PegasusForConditionalGeneration, and each
computes seqlab's logits and greedy translations; a tiny
random MarianMTModel (Marian's own vocabulary layout: </s> = 0, <unk> = 1, <pad> last and the decoder's
start) imports as a translate run computing transformers' logits and greedy output; what Marian has no
equivalent for, and broken directories, are one line and exit 2. Nothing is downloaded."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from tokenizers.processors import TemplateProcessing  # noqa: E402
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, MarianConfig, MarianMTModel  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from seqlab.cli.main import main  # noqa: E402
from seqlab.data.tokenizer import BOS_ID, PAD_ID  # noqa: E402
from seqlab.interop.vocabulary import NEVER  # noqa: E402
from seqlab.models import from_pretrained  # noqa: E402
from seqlab.models.search import greedy_decode  # noqa: E402
from seqlab.tasks.translate import Translator  # noqa: E402

from test_gpt2 import assert_close_relative, run_cli as cli  # noqa: E402 (pytest puts this directory on sys.path)

QUICK = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.curves=false",
         "--set", "train.eval_every=10", "--set", "train.precision='fp32'", "--max-steps", "2"]
TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=2", "--set", "model.d_ff=32",
        "--set", "data.tokenizer='char'", "--set", "data.max_len=24", "--set", "train.batch_size=8",
        "--set", "decode.max_output_len=12", "--set", "decode.beam_size=1", *QUICK]
WORDS = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"]
SENTENCES = ["hello cat", "moon", "zebra tree dog"]




def assert_close_but_pad(ours: torch.Tensor, theirs: torch.Tensor, pad: int) -> None:
    """``assert_close_relative`` over every token but ``pad`` (its id in both), whose output bias an import
    makes NEVER: seqlab never outputs <pad> (as OPUS-MT's bad_words_ids [[pad]] rules it out in transformers)."""
    others = torch.arange(theirs.size(-1)) != pad
    assert_close_relative(ours[..., others], theirs[..., others])
    assert (ours[..., pad] < NEVER / 2).all()


def randomize(model: torch.nn.Module, std: float = 0.3) -> None:
    """Every weight, bias and LayerNorm gain random, so that a mapping that mixes any two up shows (not
    transformers' frozen sinusoidal tables)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.normal_(0.0, std)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("marian")
    lines = [" ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 1 + i % 3 + 1)) for i in range(60)]
    (root / "a.txt").write_text("\n".join(lines) + "\n")
    (root / "b.txt").write_text("\n".join(line.upper()[::-1] for line in lines) + "\n")  # another alphabet
    return root


@pytest.fixture(scope="module")
def exported(root):
    """A post-LN translation run, its weights made random (LayerNorms and biases too), exported."""
    run, out = root / "run", root / "hf"
    assert main(["train", "translate", "--src", str(root / "a.txt"), "--tgt", str(root / "b.txt"), *TINY,
                 "--set", "model.norm_first=false", "--set", "model.n_decoder_layers=3", "--out", str(run)]) == 0
    best = run / "checkpoints" / "best"
    model = from_pretrained(best)
    randomize(model)
    model.save_pretrained(best)
    assert main(["export", str(run), "--format", "hf", "--out", str(out)]) == 0
    return run, out


def padded(rows: list[list[int]]) -> torch.Tensor:
    width = max(map(len, rows))
    return torch.tensor([row + [PAD_ID] * (width - len(row)) for row in rows])


def test_exported_marian_computes_seqlabs_logits(exported):
    run, out = exported
    translator = Translator.load(run)
    hf = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    assert type(hf) is MarianMTModel and hf.config.decoder_vocab_size == translator.model.config.tgt_vocab_size
    src = padded(translator.encode_sources(SENTENCES))
    tgt = padded([[BOS_ID, 7, 5, 9, 6, 8], [BOS_ID, 5], [BOS_ID, 6, 6, 4]])
    with torch.no_grad():
        ours = translator.model(src, tgt)
        theirs = hf(input_ids=src, attention_mask=(src != PAD_ID).long(), decoder_input_ids=tgt).logits
    keep = tgt != PAD_ID
    keep[:, 0] = True
    assert_close_relative(ours[keep], theirs[keep])


def test_exported_marian_translates_as_seqlab_greedily(exported):
    run, out = exported
    translator = Translator.load(run)
    hf = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    source_tokenizer = AutoTokenizer.from_pretrained(out)
    target_tokenizer = AutoTokenizer.from_pretrained(out / "target_tokenizer")
    batch = source_tokenizer(SENTENCES, return_tensors="pt", padding=True)
    assert batch.input_ids.tolist() == padded(translator.encode_sources(SENTENCES)).tolist()
    steps = translator.config.decode.max_output_len
    with torch.no_grad():
        expected = greedy_decode(translator.model, batch.input_ids, steps)
        generated = hf.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=steps)
    assert generated[:, 0].eq(BOS_ID).all()  # decoder_start_token_id
    assert generated[:, 1:].tolist() == expected.tolist()
    assert ([target_tokenizer.decode(row, skip_special_tokens=True) for row in generated[:, 1:].tolist()]
            == translator.translate(SENTENCES, beam_size=1))


def test_an_export_imported_again_is_the_same_translator(exported, root, capsys):
    run, out = exported
    code, _, err = cli("import", "hf", out, "--out", root / "again", capsys=capsys)
    assert code == 0, err
    original, again = Translator.load(run), Translator.load(root / "again")
    src = padded(original.encode_sources(SENTENCES))
    tgt = padded([[BOS_ID, 7, 5, 9], [BOS_ID, 5, 4, 4], [BOS_ID, 8]])
    with torch.no_grad():
        assert_close_but_pad(again.model(src, tgt), original.model(src, tgt), PAD_ID)
    assert again.translate(SENTENCES, beam_size=1) == original.translate(SENTENCES, beam_size=1)


# --- a tiny Marian made here, imported ------------------------------------------------------------

MARIAN_WORDS = ["</s>", "<unk>", *"the a cat dog sees likes tree river house my friend".split(), "<pad>"]


def tiny_marian(directory, **config) -> tuple[MarianMTModel, PreTrainedTokenizerFast]:
    """A random MarianMTModel in Marian's own layout (</s> = 0, <unk> = 1, <pad> last and the decoder's
    start, one shared vocabulary), and a word-level tokenizer appending </s> to a source as Marian's does."""
    vocab = {token: i for i, token in enumerate(MARIAN_WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 0)])
    pad = vocab["<pad>"]
    settings = dict(vocab_size=len(vocab), d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                    decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=20,
                    pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad, forced_eos_token_id=None,
                    scale_embedding=True, activation_function="relu")
    torch.manual_seed(0)
    model = MarianMTModel(MarianConfig(**{**settings, **config})).eval()
    randomize(model)
    with torch.no_grad():
        model.final_logits_bias.normal_(0.0, 0.3)
    model.save_pretrained(directory)
    model = MarianMTModel.from_pretrained(directory).eval()  # as transformers reads it: its sinusoidal table
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", unk_token="<unk>",
                                           pad_token="<pad>")
    hf_tokenizer.save_pretrained(directory)
    return model, hf_tokenizer


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf") / "tiny-marian"
    model, tokenizer = tiny_marian(directory)
    run = directory.parent / "imported"
    assert main(["import", "hf", str(directory), "--out", str(run)]) == 0
    return directory, model, tokenizer, run


MARIAN_SENTENCES = ["the cat sees a tree", "my friend likes the river house", "a dog"]


def test_imported_marian_computes_transformers_logits(marian):
    _, hf, tokenizer, run = marian
    translator = Translator.load(run)
    batch = tokenizer(MARIAN_SENTENCES, return_tensors="pt", padding=True)
    # the same tokens by name: seqlab's ids are its own (<pad> <bos> <eos> <unk> first)
    ours_id = torch.tensor([translator.tgt_tokenizer.token_to_id(t) for t in MARIAN_WORDS])
    assert ours_id[[0, 1, -1]].tolist() == [2, 3, 0]
    src = padded(translator.encode_sources(MARIAN_SENTENCES))
    assert src.tolist() == ours_id[batch.input_ids].tolist()  # the source's </s> appended, as Marian's tokenizer does
    start = hf.config.decoder_start_token_id
    theirs_tgt = torch.tensor([[start, 4, 5, 6, 7], [start, 8, 0, 4, 4], [start, 9, 3, 2, 0]])
    ours_tgt = ours_id[theirs_tgt]
    ours_tgt[:, 0] = BOS_ID
    with torch.no_grad():
        theirs = hf(**batch, decoder_input_ids=theirs_tgt).logits
        ours = translator.model(src, ours_tgt)
    assert_close_but_pad(ours[..., ours_id], theirs, hf.config.pad_token_id)
    assert ours[..., BOS_ID].max() < theirs.min() - 100  # the start row, the padding token's copy: never chosen


def greedy_as_transformers(hf, tokenizer, translator) -> torch.Tensor:
    """transformers' greedy output of a tiny Marian (in its ids), checked to be seqlab's (in seqlab's)."""
    ours_id = torch.tensor([translator.tgt_tokenizer.token_to_id(t) for t in MARIAN_WORDS])
    batch = tokenizer(MARIAN_SENTENCES, return_tensors="pt", padding=True)
    steps = hf.config.max_position_embeddings
    with torch.no_grad():
        generated = hf.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=steps)[:, 1:]
        ours = greedy_decode(translator.model, padded(translator.encode_sources(MARIAN_SENTENCES)), steps)
    eos = hf.config.eos_token_id
    finished = (generated == eos).cumsum(1) - (generated == eos).long() > 0  # transformers pads after </s>
    expected = ours_id[generated].masked_fill(finished, PAD_ID)
    assert ours[:, :expected.size(1)].tolist() == expected.tolist()
    return generated


def test_imported_marian_translates_as_transformers_greedily(marian, capsys):
    _, hf, tokenizer, run = marian
    translator = Translator.load(run)
    generated = greedy_as_transformers(hf, tokenizer, translator)
    for command in ("translate", "predict"):
        code, out, err = cli(command, run, MARIAN_SENTENCES[0], "--beam", 1, capsys=capsys)
        assert code == 0, err
        assert out.strip() == tokenizer.decode(generated[0], skip_special_tokens=True)


def test_pad_is_never_generated_as_opus_mts_bad_words_rule_out(tmp_path):
    """OPUS-MT checkpoints ship bad_words_ids [[pad]]: transformers never generates <pad>, nor does seqlab."""
    hf, tokenizer = tiny_marian(tmp_path / "hf")
    pad = hf.config.pad_token_id
    with torch.no_grad():
        hf.final_logits_bias[0, pad] += 3.0  # <pad> the likeliest token by far
    hf.generation_config.bad_words_ids = [[pad]]
    hf.save_pretrained(tmp_path / "hf")
    hf = MarianMTModel.from_pretrained(tmp_path / "hf").eval()
    assert main(["import", "hf", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    generated = greedy_as_transformers(hf, tokenizer, Translator.load(tmp_path / "run"))
    assert generated.size(1) > 1 and not generated.eq(pad).all()


@pytest.mark.parametrize("eos_bias", [0.0, 3.0])
def test_a_decoder_starting_from_eos_stops_as_transformers_does(tmp_path, eos_bias):
    """decoder_start_token_id = eos_token_id (as BART-style models have): <bos> reads </s>'s embedding but is
    a row of its own that is never output, so </s> ends the translation as in transformers."""
    hf, tokenizer = tiny_marian(tmp_path / "hf", decoder_start_token_id=0)
    with torch.no_grad():
        hf.final_logits_bias[0, 0] += eos_bias  # 3: </s> the likeliest token, transformers stops at once
    hf.save_pretrained(tmp_path / "hf")
    hf = MarianMTModel.from_pretrained(tmp_path / "hf").eval()
    assert main(["import", "hf", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    translator = Translator.load(tmp_path / "run")
    assert translator.tgt_tokenizer.id_to_token(BOS_ID) == "<bos>"
    generated = greedy_as_transformers(hf, tokenizer, translator)
    if eos_bias:
        assert generated.eq(0).all()  # </s> first: an empty translation
        assert translator.translate(MARIAN_SENTENCES, beam_size=1) == ["", "", ""]


def test_imported_marian_is_evaluated_and_explored(marian, tmp_path, capsys):
    _, _, _, run = marian
    (tmp_path / "src.txt").write_text("\n".join(MARIAN_SENTENCES) + "\n")
    (tmp_path / "ref.txt").write_text("the cat\na tree\nmy dog\n")
    code, out, err = cli("eval", run, "--src", tmp_path / "src.txt", "--ref", tmp_path / "ref.txt", capsys=capsys)
    assert code == 0 and "bleu" in out, err
    from fastapi.testclient import TestClient

    from seqlab.explore.app import create_app

    client = TestClient(create_app(run))
    assert client.get("/api/run").status_code == 200, "explore opens the run"
    assert client.post("/api/infer", json={"text": MARIAN_SENTENCES[0]}).status_code == 200


def test_an_untied_separate_vocabulary_marian_imports(tmp_path):
    directory = tmp_path / "untied"
    hf, tokenizer = tiny_marian(directory, share_encoder_decoder_embeddings=False, tie_word_embeddings=False,
                                activation_function="gelu")
    assert main(["import", "hf", str(directory), "--out", str(tmp_path / "run")]) == 0
    translator = Translator.load(tmp_path / "run")
    assert not translator.model.config.share_embeddings and not translator.model.config.tie_output
    ours_id = torch.tensor([translator.tgt_tokenizer.token_to_id(t) for t in MARIAN_WORDS])
    batch = tokenizer(MARIAN_SENTENCES[:2], return_tensors="pt", padding=True)
    theirs_tgt = torch.tensor([[hf.config.decoder_start_token_id, 4, 5], [hf.config.decoder_start_token_id, 6, 7]])
    ours_tgt = ours_id[theirs_tgt]
    ours_tgt[:, 0] = BOS_ID
    with torch.no_grad():
        theirs = hf(**batch, decoder_input_ids=theirs_tgt).logits
        ours = translator.model(padded(translator.encode_sources(MARIAN_SENTENCES[:2])), ours_tgt)
    assert_close_but_pad(ours[..., ours_id], theirs, hf.config.pad_token_id)


def test_a_swish_marian_imports_computing_transformers_logits(tmp_path):
    """OPUS-MT checkpoints use activation_function "swish", x·σ(x): seqlab's silu."""
    hf, tokenizer = tiny_marian(tmp_path / "hf", activation_function="swish")
    assert main(["import", "hf", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    translator = Translator.load(tmp_path / "run")
    assert translator.model.config.activation == "silu"
    ours_id = torch.tensor([translator.tgt_tokenizer.token_to_id(t) for t in MARIAN_WORDS])
    batch = tokenizer(MARIAN_SENTENCES, return_tensors="pt", padding=True)
    start = hf.config.decoder_start_token_id
    theirs_tgt = torch.tensor([[start, 4, 5, 6], [start, 8, 0, 4], [start, 9, 3, 2]])
    ours_tgt = ours_id[theirs_tgt]
    ours_tgt[:, 0] = BOS_ID
    with torch.no_grad():
        theirs = hf(**batch, decoder_input_ids=theirs_tgt).logits
        ours = translator.model(padded(translator.encode_sources(MARIAN_SENTENCES)), ours_tgt)
    assert_close_but_pad(ours[..., ours_id], theirs, hf.config.pad_token_id)


@pytest.mark.parametrize("tied, activation", [(True, "relu"), (False, "relu"), (True, "swish")])
def test_an_imported_marian_exported_again_computes_its_logits(tmp_path, tied, activation):
    """Shared embeddings, tied or not: imported, then exported (seqlab's vocabulary order, its <bos> row);
    OPUS-MT's swish leaves as swish."""
    hf, tokenizer = tiny_marian(tmp_path / "hf", tie_word_embeddings=tied, activation_function=activation)
    assert main(["import", "hf", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    assert main(["export", str(tmp_path / "run"), "--format", "hf", "--out", str(tmp_path / "again")]) == 0
    again = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "again").eval()
    # transformers 5 shares a Marian's embeddings only when it ties them to the output layer too
    assert again.config.share_encoder_decoder_embeddings == tied and again.config.tie_word_embeddings == tied
    assert again.config.activation_function == activation
    again_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "again")
    again_id = torch.tensor([again_tokenizer.convert_tokens_to_ids(t) for t in MARIAN_WORDS])
    batch = tokenizer(MARIAN_SENTENCES, return_tensors="pt", padding=True)
    again_batch = again_tokenizer(MARIAN_SENTENCES, return_tensors="pt", padding=True)
    assert again_batch.input_ids.tolist() == again_id[batch.input_ids].tolist()
    start = hf.config.decoder_start_token_id
    theirs_tgt = torch.tensor([[start, 4, 5, 6], [start, 8, 0, 4], [start, 9, 3, 2]])
    again_tgt = again_id[theirs_tgt]
    again_tgt[:, 0] = again.config.decoder_start_token_id
    with torch.no_grad():
        expected = hf(**batch, decoder_input_ids=theirs_tgt).logits
        got = again(**again_batch, decoder_input_ids=again_tgt).logits
    assert_close_but_pad(got[..., again_id], expected, hf.config.pad_token_id)


# --- pre-LN: Pegasus ------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def pegasus(root, request):
    """A pre-LN run (translate's default), its weights random, exported: as Pegasus."""
    run, out = root / f"pre-ln-{request.param}", root / f"hf-pre-ln-{request.param}"
    assert main(["train", "translate", "--src", str(root / "a.txt"), "--tgt", str(root / "b.txt"), *TINY,
                 "--set", f"model.tie_output={str(request.param).lower()}", "--out", str(run)]) == 0
    best = run / "checkpoints" / "best"
    model = from_pretrained(best)
    randomize(model)
    model.save_pretrained(best)
    assert main(["export", str(run), "--format", "hf", "--out", str(out)]) == 0
    return run, out


def test_a_pre_ln_run_is_pegasus_computing_seqlabs_logits_and_translations(pegasus):
    run, out = pegasus
    translator = Translator.load(run)
    hf = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    assert type(hf) is transformers.PegasusForConditionalGeneration
    c = translator.model.config
    assert c.norm_first and hf.config.vocab_size == c.tgt_vocab_size + c.src_vocab_size
    batch = AutoTokenizer.from_pretrained(out)(SENTENCES, return_tensors="pt", padding=True)
    ours_src = padded(translator.encode_sources(SENTENCES))
    # the source's ids follow the target's in Pegasus's one vocabulary; <pad> is the shared 0
    assert batch.input_ids.tolist() == torch.where(ours_src == PAD_ID, 0, ours_src + c.tgt_vocab_size).tolist()
    tgt = padded([[BOS_ID, 7, 5, 9, 6, 8], [BOS_ID, 5], [BOS_ID, 6, 6, 4]])
    with torch.no_grad():
        ours = translator.model(ours_src, tgt)
        theirs = hf(**batch, decoder_input_ids=tgt).logits
    keep = tgt != PAD_ID
    keep[:, 0] = True
    assert_close_relative(ours[keep], theirs[keep][:, :c.tgt_vocab_size])
    assert theirs[..., c.tgt_vocab_size:].max() < theirs[..., :c.tgt_vocab_size].min()  # never a source token
    steps = translator.config.decode.max_output_len
    with torch.no_grad():
        expected = greedy_decode(translator.model, ours_src, steps)
        generated = hf.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=steps)
    assert generated[:, 1:].tolist() == expected.tolist()
    target_tokenizer = AutoTokenizer.from_pretrained(out / "target_tokenizer")
    assert ([target_tokenizer.decode(row, skip_special_tokens=True) for row in generated[:, 1:].tolist()]
            == translator.translate(SENTENCES, beam_size=1))


def test_a_pegasus_export_imported_again_is_the_same_translator(pegasus, tmp_path, capsys):
    run, out = pegasus
    code, _, err = cli("import", "hf", out, "--out", tmp_path / "again", capsys=capsys)
    assert code == 0, err
    original, again = Translator.load(run), Translator.load(tmp_path / "again")
    assert again.model.config.norm_first and again.model.config.share_embeddings  # Pegasus's one vocabulary
    src = padded(original.encode_sources(SENTENCES))
    again_src = padded(again.encode_sources(SENTENCES))
    tgt = padded([[BOS_ID, 7, 5, 9], [BOS_ID, 5, 4, 4], [BOS_ID, 8]])
    V = original.model.config.tgt_vocab_size
    with torch.no_grad():
        assert_close_but_pad(again.model(again_src, tgt)[..., :V], original.model(src, tgt), PAD_ID)
    assert again.translate(SENTENCES, beam_size=1) == original.translate(SENTENCES, beam_size=1)


def test_a_random_pegasus_imports_computing_transformers_logits(tmp_path):
    """A tiny PegasusForConditionalGeneration in Pegasus's own layout (<pad> = 0 also the decoder's start,
    </s> = 1, <unk> = 2), a word-level tokenizer appending </s>."""
    words = ["<pad>", "</s>", "<unk>", *"the a cat dog sees likes tree river house my friend".split()]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    config = transformers.PegasusConfig(
        vocab_size=len(words), d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=20,
        activation_function="relu", scale_embedding=True, forced_eos_token_id=None)
    torch.manual_seed(0)
    model = transformers.PegasusForConditionalGeneration(config).eval()
    randomize(model)
    with torch.no_grad():
        model.final_logits_bias.normal_(0.0, 0.3)
    model.save_pretrained(tmp_path / "hf")
    hf = transformers.PegasusForConditionalGeneration.from_pretrained(tmp_path / "hf").eval()
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", unk_token="<unk>",
                                           pad_token="<pad>")
    hf_tokenizer.save_pretrained(tmp_path / "hf")
    assert main(["import", "hf", str(tmp_path / "hf"), "--out", str(tmp_path / "run")]) == 0
    translator = Translator.load(tmp_path / "run")
    assert translator.model.config.norm_first
    ours_id = torch.tensor([translator.tgt_tokenizer.token_to_id(w) for w in words])
    batch = hf_tokenizer(MARIAN_SENTENCES, return_tensors="pt", padding=True)
    theirs_tgt = torch.tensor([[0, 4, 5, 6, 7], [0, 8, 1, 4, 4], [0, 9, 3, 2, 0]])
    ours_tgt = ours_id[theirs_tgt]
    ours_tgt[:, 0] = BOS_ID
    with torch.no_grad():
        theirs = hf(**batch, decoder_input_ids=theirs_tgt).logits
        ours = translator.model(padded(translator.encode_sources(MARIAN_SENTENCES)), ours_tgt)
        generated = hf.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=20)[:, 1:]
        decoded = greedy_decode(translator.model, padded(translator.encode_sources(MARIAN_SENTENCES)), 20)
    assert_close_but_pad(ours[..., ours_id], theirs, 0)
    finished = (generated == 1).cumsum(1) - (generated == 1).long() > 0  # transformers pads after </s>
    assert decoded[:, :generated.size(1)].tolist() == ours_id[generated].masked_fill(finished, PAD_ID).tolist()


# --- refusals -------------------------------------------------------------------------------------

def test_relative_positions_are_refused(root, capsys):
    run = root / "relative"
    assert main(["train", "translate", "--src", str(root / "a.txt"), "--tgt", str(root / "b.txt"), *TINY,
                 "--set", "model.positional='relative'", "--out", str(run)]) == 0
    code, _, err = cli("export", run, "--format", "hf", "--out", root / "new" / "refused", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "model.positional=relative" in err and "Marian" in err and "Pegasus" in err
    assert not (root / "new").exists()  # nor the folder made for it


def test_an_rnn_run_is_refused(root, capsys):
    run = root / "rnn"
    assert main(["train", "translate", "--src", str(root / "a.txt"), "--tgt", str(root / "b.txt"), *QUICK,
                 "--set", "data.tokenizer='char'", "--set", "model.arch='attention'", "--set", "model.rnn.embed_dim=8",
                 "--set", "model.rnn.hidden_size=8", "--out", str(run)]) == 0
    code, _, err = cli("export", run, "--format", "hf", "--out", root / "refused-rnn", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model.arch=attention" in err, err


def breakages():
    def edit_config(**changes):
        def edit(directory):
            config = json.loads((directory / "config.json").read_text())
            (directory / "config.json").write_text(json.dumps({**config, **changes}))
        return edit

    def drop_key(key):
        def edit(directory):
            config = json.loads((directory / "config.json").read_text())
            del config[key]
            (directory / "config.json").write_text(json.dumps(config))
        return edit

    def drop_pad_token(directory):  # the model's vocabulary keeps the row; the tokenizer has no token for it
        state = json.loads((directory / "tokenizer.json").read_text())
        state["added_tokens"] = [t for t in state["added_tokens"] if t["content"] != "<pad>"]
        state["model"]["vocab"].pop("<pad>", None)
        (directory / "tokenizer.json").write_text(json.dumps(state))

    return [
        ("no config", lambda d: (d / "config.json").unlink(), "no config.json"),
        ("start -1", edit_config(decoder_start_token_id=-1), "the decoder's start (-1) must be an id of the 14-token"),
        ("start past the end", edit_config(decoder_start_token_id=14), "the decoder's start (14) must be an id"),
        ("layers true", edit_config(encoder_layers=True), "encoder_layers=True (a positive integer)"),
        ("start text", edit_config(decoder_start_token_id="13"), "decoder_start_token_id='13' (an integer)"),
        ("dropout text", edit_config(dropout="x"), "dropout='x' (a number)"),
        ("no d_model", drop_key("d_model"), "config.json has no d_model"),
        ("corrupt tokenizer", lambda d: (d / "tokenizer.json").write_text("{not json"),
         "tokenizer.json is not a tokenizers JSON file (key must be a string"),
        ("no pad token", drop_pad_token, "tokenizer.json has no token at pad_token_id 13; add the model's padding"),
        ("generation config list", lambda d: (d / "generation_config.json").write_text("[1]"),
         "generation_config.json is not a generation config"),
        ("no weights", lambda d: (d / "model.safetensors").unlink(), "has no model.safetensors"),
        ("model_type", edit_config(model_type="t5"), "holds a 't5' model"),
        ("tanh", edit_config(activation_function="tanh"), "activation_function='tanh'"),
        ("unscaled", edit_config(scale_embedding=False), "scale_embedding=false"),
        ("no tokenizer", lambda d: (d / "tokenizer.json").unlink(), "has no tokenizer.json"),
        ("bigger", edit_config(d_model=32), "do not fit config.json"),
        ("a trillion tokens", edit_config(vocab_size=10**12, decoder_vocab_size=10**12),  # checked before anything is sized by it
         "config.json is damaged (its vocab_size 1,000,000,000,000 embedding rows of d_model 16 are more numbers"),
        ("pad is eos", edit_config(pad_token_id=0), "padding (0) and end (0) must be two ids"),
        ("positions", lambda d: save_file({**load_file(d / "model.safetensors"), "model.encoder.embed_positions.weight":
                                           torch.randn(20, 16)}, d / "model.safetensors"),
         "encoder.embed_positions.weight is not the sinusoidal table"),
        ("nan weights", lambda d: save_file({**load_file(d / "model.safetensors"), "model.encoder.layers.0.fc1.weight":
                                             torch.full((32, 16), float("nan"))}, d / "model.safetensors"),
         "model.encoder.layers.0.fc1.weight holds NaN or infinite values"),
        ("cut weights", lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:500]),
         "model.safetensors"),
    ]


@pytest.mark.parametrize("name, breaks, message", breakages(), ids=[b[0] for b in breakages()])
def test_a_broken_marian_directory_is_one_line(marian, tmp_path, capsys, name, breaks, message):
    directory = tmp_path / "broken"
    shutil.copytree(marian[0], directory)
    breaks(directory)
    code, _, err = cli("import", "hf", directory, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert not (tmp_path / "run").exists()
