"""The language-model task's --text as a folder or a glob pattern, through the command line: the
files read as one text in sorted path order (the run's ids are those of the files joined into one),
eval reads them the same way, a tokenizer's training sample is capped, and a source that gives no
text is one line and exit status 2."""

import json

import pytest

from seqlab.data.tokenizer import SPECIALS
from seqlab.tasks.language_model import LMDataConfig, prepare_data
from cli_run import run_cli

TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
        "--set", "data.block_size=16", "--set", "train.batch_size=32", "--set", "train.eval_every=2",
        "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.curves=false",
        "--set", "train.precision='fp32'", "--max-steps", "2"]  # fp32: no timing of bf16 against it
PARTS = {"part-2.txt": "the dog finds a tree.\n" * 10, "part-1.txt": "the cat sees the sun.\n" * 10,
         "sub/part-3.txt": "my friend likes the moon.\n" * 10}
ORDER = ["part-1.txt", "part-2.txt", "sub/part-3.txt"]  # sorted by path


@pytest.fixture()
def corpus(tmp_path):
    """A folder of three files, and the one file they make joined in sorted path order."""
    folder = tmp_path / "corpus"
    for name, text in PARTS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    (folder / ".notes.txt").write_text("a hidden file: not read\n")
    joined = tmp_path / "joined.txt"
    joined.write_text("".join(PARTS[name] for name in ORDER), encoding="utf-8")
    return folder, joined


def run_files(run) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in ("train.bin", "valid.bin", "tokenizer.json")}


def prepared(text, tokenizer: str, run) -> dict[str, bytes]:
    """What ``train lm`` writes before training: the ids and the tokenizer, from ``text``."""
    run.mkdir()
    prepare_data(LMDataConfig(text=str(text), tokenizer=tokenizer, vocab_size=300), run)
    return run_files(run)


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_a_folder_and_a_glob_read_as_the_files_joined_in_path_order(tmp_path, corpus, tokenizer):
    folder, joined = corpus
    expected = prepared(joined, tokenizer, tmp_path / "file")
    assert prepared(folder, tokenizer, tmp_path / "folder") == expected
    assert prepared(f"{folder}/**/part-*.txt", tokenizer, tmp_path / "glob") == expected


def test_train_and_eval_read_a_folder_and_a_glob(tmp_path, corpus, capsys):
    folder, joined = corpus
    runs = {"folder": (folder, "char"), "glob": (f"{folder}/**/*.txt", "bpe")}
    for name, (text, tokenizer) in runs.items():
        code, _, err = run_cli("train", "lm", "--text", text, "--out", tmp_path / name, *TINY,
                               "--set", f"data.tokenizer='{tokenizer}'", "--set", "data.vocab_size=300", capsys=capsys)
        assert code == 0, err
        assert run_files(tmp_path / name) == prepared(joined, tokenizer, tmp_path / f"{name}-expected")
        assert json.loads((tmp_path / name / "data.json").read_text())["corpus"] == str(text)

    scores = {}
    for name, text in (("file", joined), ("folder", folder), ("glob", folder / "*" / "*.txt")):
        code, out, err = run_cli("eval", tmp_path / "folder", "--text", text, capsys=capsys)
        assert code == 0, err
        scores[name] = json.loads(out)
    assert scores["folder"] == scores["file"]
    assert scores["glob"]["tokens"] == len(PARTS["sub/part-3.txt"])  # sub/part-3.txt alone, a token a character


def test_a_source_that_gives_no_text_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "latin").mkdir()
    (tmp_path / "latin" / "a.txt").write_text("fine\n" * 50)
    (tmp_path / "latin" / "b.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    cases = {tmp_path / "empty": "is a folder with no files in it", tmp_path / "*.txt": "no files match",
             tmp_path / "latin": "b.txt is not valid UTF-8", tmp_path / "missing.txt": "file not found"}
    for text, expected in cases.items():
        code, _, err = run_cli("train", "lm", "--text", text, "--out", tmp_path / "run", *TINY, capsys=capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and expected in lines[0] and "Traceback" not in err, err
        assert not (tmp_path / "run").exists()
    (tmp_path / "good").mkdir()  # not matched by the pattern *.txt
    (tmp_path / "good" / "text.txt").write_text("the cat sees the sun.\n" * 30)
    assert run_cli("train", "lm", "--text", tmp_path / "good", "--out", tmp_path / "run", *TINY,
                   capsys=capsys)[0] == 0
    for text, expected in cases.items():
        code, _, err = run_cli("eval", tmp_path / "run", "--text", text, capsys=capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err


def test_the_tokenizer_learns_from_the_first_sample_characters(tmp_path):
    (tmp_path / "corpus.txt").write_text("ab ab ab\n" * 50 + "xyz\n" * 50)
    (tmp_path / "run").mkdir()
    prepare_data(LMDataConfig(text=str(tmp_path / "corpus.txt"), tokenizer_sample_chars=300), tmp_path / "run")
    vocab = json.loads((tmp_path / "run" / "tokenizer.json").read_text())["model"]["vocab"]
    assert set(vocab) == set(SPECIALS) | {"a", "b", " ", "\n"}  # x, y and z come after the first 300
