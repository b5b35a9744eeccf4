"""seqlab import hf of a Marian directory as the OPUS-MT checkpoints ship it: no tokenizer.json, but
Marian's SentencePiece models (source.spm, target.spm) and one vocabulary (vocab.json). SentencePiece
models are trained here on generated German-like and English-like text (no download) and the oracle is
transformers' MarianTokenizer over the same files: the same source ids (awkward spacing, characters the
model has never seen, another language's pieces, specials in the text), the same target ids, and the
imported run's greedy translation decoded into transformers' text."""

import io
import json
import random
import shutil

import pytest
import torch

transformers = pytest.importorskip("transformers")
spm = pytest.importorskip("sentencepiece")
from transformers import MarianConfig, MarianMTModel, MarianTokenizer  # noqa: E402

from seqlab.cli.main import main  # noqa: E402
from seqlab.interop.spm import MARK  # noqa: E402
from seqlab.tasks.translate import Translator  # noqa: E402

from test_gpt2 import run_cli as cli  # noqa: E402 (pytest puts this directory on sys.path)
from test_marian import randomize  # noqa: E402

SOURCE_WORDS = "der die das haus katze hund sieht mag baum sonne mond fluss freund ein eine und groß klein".split()
TARGET_WORDS = "the a house cat dog sees likes tree sun moon river friend and big small".split()
SOURCES = ["der hund sieht die katze.", "  Das  Haus   ist groß!  ", "ein baum und ü €", "die sonne </s> mond", "",
           "fluss\tfreund", "ａｂｃ groß", "▁der hund", "üé haus", "big katze qq", "ein ☃☃ baum", "the der", "<unk> <pad>"]
TARGETS = ["the cat sees a tree.", "  big   small ", "moon ü", "der hund", "katze big"]


def sentencepiece_model(words: list[str], size: int, seed: int, normalization: str = "nmt_nfkc") -> bytes:
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 8))) + rng.choice([".", "!", "?", ""])
             for _ in range(800)]
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=out, vocab_size=size,
                                   model_type="unigram", normalization_rule_name=normalization, minloglevel=2)
    return out.getvalue()


def opus_mt_directory(directory, leave_out: int = 0, normalization: str = "nmt_nfkc"):
    """A random tiny MarianMTModel with OPUS-MT's tokenizer files: the two SentencePiece models (their
    ``normalization`` rule) and one vocabulary holding both sides' pieces, </s> = 0, <unk> = 1, <pad> last
    (the decoder's start); the last ``leave_out`` source-only pieces missing from it."""
    directory.mkdir(parents=True)
    models = {"source.spm": sentencepiece_model(SOURCE_WORDS, 40, 0, normalization),
              "target.spm": sentencepiece_model(TARGET_WORDS, 38, 1, normalization)}
    pieces = {}
    for name, model in models.items():
        (directory / name).write_bytes(model)
        processor = spm.SentencePieceProcessor(model_proto=model)
        pieces[name] = [processor.id_to_piece(i) for i in range(processor.get_piece_size())
                        if not (processor.is_control(i) or processor.is_unknown(i))]
    source_only = [p for p in pieces["source.spm"] if p not in pieces["target.spm"]]
    left_out = set(source_only[len(source_only) - leave_out:]) if leave_out else set()
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in pieces["source.spm"] + pieces["target.spm"]:
        if piece not in left_out:
            vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = MarianTokenizer(str(directory / "source.spm"), str(directory / "target.spm"), str(directory / "vocab.json"))
    tokenizer.save_pretrained(directory)
    pad = vocab["<pad>"]
    torch.manual_seed(0)
    model = MarianMTModel(MarianConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=24,
        pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad, forced_eos_token_id=None,
        scale_embedding=True, activation_function="swish")).eval()
    randomize(model)
    model.save_pretrained(directory)
    return MarianMTModel.from_pretrained(directory).eval(), MarianTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def opus_mt(tmp_path_factory):
    directory = tmp_path_factory.mktemp("opus") / "opus-mt-tiny"
    model, tokenizer = opus_mt_directory(directory)
    assert not (directory / "tokenizer.json").exists() and (directory / "source.spm").is_file()
    run = directory.parent / "imported"
    assert main(["import", "hf", str(directory), "--out", str(run)]) == 0
    return model, tokenizer, Translator.load(run), run


def seqlab_ids(tokenizer, marian_ids: list[int], theirs) -> list[int]:
    """Marian's ids as seqlab's, by the pieces' names (seqlab renumbers; a piece segmenting must not
    produce is spelt with MARK)."""
    ours = {name.removesuffix(MARK): i for name, i in tokenizer.get_vocab().items()}
    return [ours[theirs.convert_ids_to_tokens(i)] for i in marian_ids]


def test_source_ids_are_marian_tokenizers(opus_mt):
    _, tokenizer, translator, _ = opus_mt
    for sentence, ours in zip(SOURCES, translator.encode_sources(SOURCES)):
        theirs = tokenizer(sentence).input_ids
        assert ours == seqlab_ids(translator.src_tokenizer, theirs, tokenizer), sentence
    unknown = tokenizer.convert_tokens_to_ids("<unk>")
    assert any(unknown in tokenizer(s).input_ids for s in SOURCES)  # the cases reach <unk> ...
    source_model = spm.SentencePieceProcessor(model_file=str(tokenizer.spm_files[0]))
    source_pieces = {source_model.id_to_piece(i) for i in range(source_model.get_piece_size())}
    target_only = {i for piece, i in tokenizer.get_vocab().items() if piece not in source_pieces}
    assert any(target_only & set(tokenizer(s).input_ids) for s in SOURCES)  # ... and the other side's pieces


def test_without_unicode_normalisation_the_ids_are_marian_tokenizers_too(tmp_path):
    """An "identity" normaliser leaves "▁" in the text (NFKC makes it a space): SentencePiece still adds its
    dummy prefix before one at the start."""
    _, tokenizer = opus_mt_directory(tmp_path / "opus", normalization="identity")
    assert main(["import", "hf", str(tmp_path / "opus"), "--out", str(tmp_path / "run")]) == 0
    translator = Translator.load(tmp_path / "run")
    for sentence, ours in zip(SOURCES, translator.encode_sources(SOURCES)):
        assert ours == seqlab_ids(translator.src_tokenizer, tokenizer(sentence).input_ids, tokenizer), sentence


def test_target_ids_are_marian_tokenizers(opus_mt):
    _, tokenizer, translator, _ = opus_mt
    for sentence in TARGETS:
        theirs = tokenizer(text_target=sentence).input_ids[:-1]  # seqlab appends a target's <eos> itself
        assert translator.tgt_tokenizer.encode(sentence).ids == seqlab_ids(translator.tgt_tokenizer, theirs,
                                                                           tokenizer), sentence


def test_the_imported_run_translates_into_transformers_text(opus_mt, capsys):
    model, tokenizer, _, run = opus_mt
    for sentence in SOURCES[:4]:
        with torch.no_grad():
            generated = model.generate(**tokenizer([sentence], return_tensors="pt"), num_beams=1, do_sample=False,
                                       max_new_tokens=model.config.max_position_embeddings,
                                       bad_words_ids=[[model.config.pad_token_id]])
        code, out, err = cli("translate", run, sentence, "--beam", 1, capsys=capsys)
        assert code == 0, err
        assert out.strip() == tokenizer.decode(generated[0], skip_special_tokens=True), sentence


def test_pieces_the_vocabulary_lacks_are_counted_in_a_note(tmp_path, capsys):
    opus_mt_directory(tmp_path / "opus", leave_out=3)
    capsys.readouterr()  # transformers' own progress lines
    code, out, err = cli("import", "hf", tmp_path / "opus", "--out", tmp_path / "run", capsys=capsys)
    assert code == 0, err
    assert "note: 3 pieces of source.spm are not in its vocabulary" in err and err.count("\n") == 1
    config = json.loads((tmp_path / "opus" / "config.json").read_text())  # refused later on: no note beside it
    (tmp_path / "opus" / "config.json").write_text(json.dumps({**config, "d_model": 32}))
    code, _, err = cli("import", "hf", tmp_path / "opus", "--out", tmp_path / "again", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "do not fit config.json" in err, err


@pytest.mark.parametrize("breaks, message", [
    (lambda d: (d / "source.spm").write_bytes(b"\x00not a model"), "source.spm is not a SentencePiece model"),
    (lambda d: (d / "target.spm").unlink(), "has source.spm but no target.spm"),
    (lambda d: (d / "vocab.json").write_text('{"</s>": 0, "a": 1}'), "vocab.json has no <unk>"),
    (lambda d: (d / "vocab.json").write_text('{"</s>": 0, "<unk>": 2}'), "the ids are not 0 … 1"),
    (lambda d: (d / "vocab.json").write_text("[1, 2]"), "is not a vocabulary"),
    (lambda d: (d / "tokenizer_config.json").write_text("{"), "tokenizer_config.json is not JSON"),
    (lambda d: (d / "tokenizer_config.json").write_text('{"separate_vocabs": true}'), "has no target_vocab.json"),
], ids=["spm", "no target", "no unk", "gaps", "list", "config", "no target vocabulary"])
def test_broken_sentencepiece_files_are_one_line(opus_mt, tmp_path, capsys, breaks, message):
    directory = tmp_path / "broken"
    shutil.copytree(opus_mt[3].parent / "opus-mt-tiny", directory)  # the fixture's checkpoint, beside its run
    breaks(directory)
    code, _, err = cli("import", "hf", directory, "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()
