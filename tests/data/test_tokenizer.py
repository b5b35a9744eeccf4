"""Tokenisers: the defaults the docstrings name, BERT's WordPiece conventions (lowercasing, ``##``
pieces that decode back to words, [CLS] … [SEP]), decoding without specials, unknown pieces and their
note, and the saved file's round trip and errors."""

import itertools
import json
import random

import pytest
from tokenizers import Tokenizer, models

from seqlab.data.tokenizer import (
    EOS_ID, UNK_ID, decode, encode_all, load_tokenizer, save_tokenizer, train_tokenizer, train_wordpiece,
    unknown_note, unknown_pieces, with_cls_sep)
from seqlab.errors import DamagedFileError, UserError

THREE_LETTER_WORDS = " ".join("".join(w) for w in itertools.product("abcdefghijklmnopqrstuvwxyz", repeat=3))


def test_default_kind_is_bpe_over_metaspace():
    tokenizer = train_tokenizer(["a small text to learn from"] * 3, vocab_size=60)
    saved = json.loads(tokenizer.to_str())
    assert saved["model"]["type"] == "BPE"
    assert saved["pre_tokenizer"]["type"] == "Metaspace"


def test_default_vocabulary_is_8000_tokens():
    cjk = "".join(chr(0x4E00 + i) for i in range(8100))  # 8,100 distinct characters
    assert train_tokenizer([cjk], "char").get_vocab_size() == 8000
    assert train_wordpiece([THREE_LETTER_WORDS]).get_vocab_size() == 8000  # 17,576 words: merges to spare


def test_wordpiece_follows_bert():
    texts = ["The unbelievable Café sees the believable cafés"] * 20
    tokenizer = train_wordpiece(texts, vocab_size=60)
    assert tokenizer.get_vocab_size() <= 60
    encoding = tokenizer.encode("THE UNBELIEVABLE CAFÉ SEEABLE")
    assert encoding.ids == tokenizer.encode("the unbelievable cafe seeable").ids  # lowercased, accents stripped
    assert encoding.tokens[-1] == "##able"  # an unseen word: pieces, the later ones marked ##
    assert tokenizer.decode(encoding.ids) == "the unbelievable cafe seeable"  # ## pieces joined back into words
    cased = train_wordpiece(texts, vocab_size=60, lowercase=False)
    assert cased.encode("The").tokens != cased.encode("the").tokens


def zipf_texts() -> list[str]:
    """2,000 lines of 300 random words drawn Zipf-like: HF's own WordPieceTrainer learns the same
    vocabulary from them in every process at 60 and 150 pieces (no two merges tie), checked over four."""
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 9))) for _ in range(300)]
    return [" ".join(words[min(int(rng.paretovariate(1.0)) - 1, 299)] for _ in range(12)) for _ in range(2000)]


@pytest.mark.parametrize("vocab_size", [60, 150])
def test_wordpiece_learns_what_hfs_trainer_learns(vocab_size):
    from tokenizers import normalizers, pre_tokenizers, trainers

    texts = zipf_texts()
    hf = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    hf.normalizer, hf.pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    hf.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, show_progress=False,
                                                            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                                            continuing_subword_prefix="##"))
    ours = train_wordpiece(texts, vocab_size)
    assert set(ours.get_vocab()) == set(hf.get_vocab()) and ours.get_vocab_size() == vocab_size
    assert json.loads(ours.to_str())["added_tokens"] == json.loads(hf.to_str())["added_tokens"]  # specials
    assert all(ours.encode(text).tokens == hf.encode(text).tokens for text in texts[:50])


def test_wordpiece_is_the_same_in_every_process(tmp_path):
    """HF's trainer numbers the ## pieces in a hash map's order, new in each process, and ties between
    merges then went other ways: the mlm test's own corpus gave other vocabularies (tokenizers#1794)."""
    import subprocess
    import sys

    corpus = tmp_path / "corpus.txt"
    rng = random.Random(0)
    subjects, verbs = ["the cat", "a dog", "my friend", "the teacher"], ["sees", "likes", "finds", "watches"]
    objects = ["the sun", "a tree", "the river", "an old house"]
    corpus.write_text("".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} every morning.\n"
                              for _ in range(1500)))
    script = ("import sys; from seqlab.data.tokenizer import train_wordpiece; "
              "print(train_wordpiece(open(sys.argv[1]).read().splitlines(), 150).to_str())")
    saved = {subprocess.run([sys.executable, "-c", script, str(corpus)], capture_output=True, text=True,
                            check=True).stdout for _ in range(3)}
    assert len(saved) == 1


def test_with_cls_sep_wraps_a_text_as_bert_reads_one_segment():
    plain = train_wordpiece(["the cat sees a tree"] * 5, vocab_size=40)
    wrapped = with_cls_sep(plain)
    inner = plain.encode("the cat").ids
    assert wrapped.encode("the cat").ids == [2, *inner, 3]  # [CLS]=2 … [SEP]=3
    assert wrapped.encode("the cat").tokens[0] == "[CLS]" and wrapped.encode("the cat").tokens[-1] == "[SEP]"
    assert plain.encode("the cat").ids == inner  # the original is left as it was
    assert encode_all(wrapped, ["the cat", "a tree"]) == [wrapped.encode("the cat").ids, wrapped.encode("a tree").ids]


def test_decode_drops_the_first_four_ids_even_when_not_marked_special():
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3, "a": 4, "b": 5}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))  # no token registered as special
    assert tokenizer.decode([4, UNK_ID, 5]) == "a <unk> b"  # the library's own decode keeps it
    assert decode(tokenizer, [1, 4, UNK_ID, 0, 5, EOS_ID, 4]) == "a b"


def test_unknown_pieces_of_several_texts_and_the_note():
    words = train_tokenizer(["the cat sees a tree"] * 5, "word", 40)
    assert unknown_pieces(words, ["the zebra", "a cat", "a yak sees a zebra"]) == ["zebra", "yak", "zebra"]
    assert unknown_pieces(Tokenizer(models.Unigram()), ["anything"]) == []  # a model with no unknown token
    assert unknown_note(["zebra", "yak", "zebra"], "test set") == (
        "note: the vocabulary lacks 3 piece(s) of the test set ('zebra', 'yak'); the model reads each as unknown")


def test_a_saved_tokenizer_loads_back_and_bad_files_name_themselves(tmp_path):
    tokenizer = train_tokenizer(["the cat sees a tree"] * 5, "word", 40)
    path = tmp_path / "tokenizer.json"
    save_tokenizer(tokenizer, path)
    assert json.loads(path.read_text())["model"]["vocab"] == tokenizer.get_vocab()
    assert load_tokenizer(str(path)).encode("the cat").ids == tokenizer.encode("the cat").ids
    with pytest.raises(UserError, match=r"nothing\.json is missing; the run directory is incomplete"):
        load_tokenizer(tmp_path / "nothing.json")
    damaged = tmp_path / "damaged.json"
    damaged.write_text(path.read_text()[:50])
    with pytest.raises(DamagedFileError, match=r"damaged\.json is damaged \(not a tokenizer file: ") as error:
        load_tokenizer(damaged)
    assert error.value.path == damaged


def test_char_tokenizer_limits_and_its_lookup():
    from tokenizers import Regex, pre_tokenizers

    from seqlab.data.tokenizer import SPECIALS, char_lookup

    chars = train_tokenizer(["aab"], "char", 500)  # vocabulary: the specials, then a (2), b (1)
    assert chars.encode("abz").ids == [4, 5, UNK_ID]  # an unseen character is <unk>
    assert train_tokenizer(["aab"], "char", vocab_size=4).get_vocab_size() == 4  # the specials alone
    lookup = char_lookup(chars)
    assert lookup("abc").tolist() == chars.encode("abc").ids == [4, 5, UNK_ID]  # c: the code point after b's

    only_specials = Tokenizer(models.WordLevel({t: i for i, t in enumerate(SPECIALS)}, unk_token="<unk>"))
    only_specials.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    assert char_lookup(only_specials)("ab").tolist() == only_specials.encode("ab").ids == [UNK_ID, UNK_ID]
    words = Tokenizer(models.WordLevel({t: i for i, t in enumerate(SPECIALS)}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Split(Regex(r"\w+|\W"), behavior="isolated")  # a Split, not per character
    assert char_lookup(words) is None


def test_a_char_tokenizer_of_nul_characters_holds_only_that_character():
    tokenizer = train_tokenizer(["\0\0"], "char", 500)
    assert tokenizer.get_vocab_size() == 5 and tokenizer.encode("\0").ids == [4]  # U+0001 never seen


def test_a_char_tokenizer_of_texts_without_characters_holds_only_the_specials():
    # what WordLevelTrainer gives for texts with nothing in them: the four specials, every character unknown
    tokenizer = train_tokenizer(["", ""], "char", 500)
    assert tokenizer.get_vocab_size() == 4 and tokenizer.encode("a").ids == [UNK_ID]


def test_byte_level_bpe_honours_vocab_size_and_min_frequency():
    # 256 bytes and the 4 specials come first; then one merge a token
    assert train_tokenizer(["the cat sat on the mat"] * 5, "bytebpe", vocab_size=265).get_vocab_size() == 265
    assert train_tokenizer(["ab ab"], "bytebpe", 1000, min_frequency=3).get_vocab_size() == 260  # "ab" twice: no merge


def test_word_level_honours_vocab_size_min_frequency_and_unknown_words():
    # "b" twice, "a" and "c" once: the 4 specials, then "b", then one word of the tie
    tokenizer = train_tokenizer(["b a b c"], "word", vocab_size=6)
    assert tokenizer.get_vocab_size() == 6 and tokenizer.token_to_id("b") == 4
    assert train_tokenizer(["b a b c"], "word", 100, min_frequency=2).get_vocab_size() == 5  # "b" alone
    assert train_tokenizer(["b a b c"], "word", 100).encode("b zz").ids == [4, UNK_ID]


def test_bpe_honours_vocab_size_min_frequency_and_unknown_characters():
    # 4 specials + 27 characters ("▁" and a…z) + merges up to the size asked
    assert train_tokenizer([THREE_LETTER_WORDS], "bpe", vocab_size=40).get_vocab_size() == 40
    # "▁ab" once: no pair reaches 2, so no merge: the specials, "▁", "a", "b"
    assert train_tokenizer(["ab"], "bpe", 100, min_frequency=2).get_vocab_size() == 7
    tokenizer = train_tokenizer(["ab"], "bpe", 100, min_frequency=2)
    assert tokenizer.encode("az").ids == [tokenizer.token_to_id("▁"), tokenizer.token_to_id("a"), UNK_ID]
