"""A text over data.max_len is named so the user can find it: by its start always, and by its number only
where the numbers are the user's own order (not a shuffled training or validation split)."""

import pytest

from cli_run import run_cli
from seqlab.data.tokenizer import train_tokenizer
from seqlab.errors import DataError
from seqlab.tasks import classify
from seqlab.tasks.translate import encode_checked

LONG = "this sentence goes on and on for far more than forty characters"


def test_translate_names_the_sentence_by_its_start_and_its_number_where_it_has_one():
    tokenizer = train_tokenizer(["short", LONG], "char", 1000)
    with pytest.raises(DataError, match=r"^test source sentence 2 \('this sentence goes on and on for far mor…'\) "
                                        r"has 63 tokens, 64 with its <bos>/<eos>; data.max_len is 20"):
        encode_checked(tokenizer, ["short", LONG], 20, "test source")
    with pytest.raises(DataError, match=r"^a train source sentence \('this sentence goes on and on for far mor…'\)"):
        encode_checked(tokenizer, ["short", LONG], 20, "train source", numbered=False)


def test_classify_names_a_training_text_by_its_start_and_an_input_by_its_number():
    tokenizer = train_tokenizer(["short", LONG], "word", 100)
    with pytest.raises(DataError, match=r"^a training text \('this sentence goes on and on for far mor…'\) has 12"):
        classify.encode(tokenizer, ["short", LONG], 5)
    with pytest.raises(DataError, match=r"^text 2 \('this sentence goes on and on for far mor…'\) has 12 tokens"):
        classify.encode(tokenizer, ["short", LONG], 5, training=False)


def test_a_too_long_pair_in_the_shuffled_split_is_named_by_its_text(tmp_path, capsys):
    """The split cut from the training file is shuffled: "sentence 7" would name no line of the file."""
    lines = [f"pair {i}" for i in range(40)]
    lines[29] = LONG
    (tmp_path / "a.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(lines) + "\n")
    code, _, err = run_cli("train", "translate", "--src", tmp_path / "a.txt", "--tgt", tmp_path / "b.txt",
                           "--set", "data.tokenizer='char'", "--set", "data.max_len=30", "--out", tmp_path / "run",
                           capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "source sentence ('this sentence goes on and on for far mor…') has 63 tokens" in err, err
    assert " sentence 30 " not in err and not (tmp_path / "run").exists()
