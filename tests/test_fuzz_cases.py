"""Nothing breaks, nothing is lost — inputs found by trying hostile ones against every command. Each row
is answered by the real command line with exit status 2 and one line on stderr (no traceback), leaves
every file that was there byte for byte the same, and makes no run directory. Several rows pass
``--overwrite`` over an existing run: data that cannot be used must be refused before that run is
replaced, not after."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from test_bad_inputs import COMMON, LM_TINY, TRANSLATE_TINY, WORDS, assert_one_line_refusal, run_cli, snapshot

VISION_TINY = ["--set", "data.image_size=8", "--set", "model.d_model=16", "--set", "model.n_heads=2",
               "--set", "model.n_layers=1", *COMMON, "--max-steps", "2"]
TFIDF = ["--model", "tfidf", *COMMON]
NEURAL_TINY = ["--model", "conv1d", "--set", "model.d_model=8", *COMMON, "--max-steps", "2"]
SERIES_ROWS = [f"2024-01-{1 + i // 24:02d} {i % 24:02d}:00,{(i % 24) / 10:.1f},{i % 7}" for i in range(240)]


def labelled(rows: int, header: str = "text,label", classes: str = "ab") -> str:
    return header + "\n" + "".join(f"text number {i},{classes[i % len(classes)]}\n" for i in range(rows))


def images(per_class: int) -> dict[str, object]:
    return {f"images/{name}/{i}.png": Image.new("L", (8, 8), color=shade + i)
            for name, shade in (("dark", 30), ("light", 200)) for i in range(per_class)}


EXISTING_RUN = {"old/run.json": json.dumps({"task": "lm", "config": {}}), "old/notes.txt": "keep me\n"}

# case -> (files to write, the command's arguments after `seqlab`, what the one line must say)
CASES = {
    # settings
    "seed negative": ({"a.txt": "\n".join(WORDS), "b.txt": "\n".join(WORDS)},
                      ["train", "translate", "--src", "a.txt", "--tgt", "b.txt", "--out", "run", *TRANSLATE_TINY,
                       "--seed", "-1"], "train.seed must be in [0, 4294967295]; got -1"),
    "seed beyond 64 bits": ({"a.txt": "\n".join(WORDS), "b.txt": "\n".join(WORDS)},
                            ["train", "translate", "--src", "a.txt", "--tgt", "b.txt", "--out", "run",
                             *TRANSLATE_TINY, "--seed", str(10**24)], "train.seed must be in [0, 4294967295]"),
    "vision image_size beyond the limit": ({}, ["train", "vision", "--images", "nowhere", "--out", "run",
                                                *VISION_TINY, "--set", "data.image_size=100000"],
                                           "data.image_size must be at most 1024"),
    "vision augment_shift beyond the limit": (images(12), ["train", "vision", "--images", "images", "--out", "run",
                                                           *VISION_TINY, "--set", "data.augment_shift=9"],
                                              "data.augment_shift must be at most 8"),
    # language models
    "lm text of one character": ({"one.txt": "a"}, ["train", "lm", "--text", "one.txt", "--out", "run", *LM_TINY],
                                 "has 1 characters, 0 of them in the training part; a block of 32"),
    "mlm vocabulary too large for the tokenizer trainer, over an existing run": (
        {"t.txt": "\n".join(WORDS), **EXISTING_RUN},
        ["train", "mlm", "--text", "t.txt", "--out", "old", "--overwrite", *COMMON, "--max-steps", "2",
         "--set", "data.vocab_size=2147483648"], "data.vocab_size must be at most 16,777,216"),
    "mlm text of special tokens only (nothing to mask)": (
        {"m.txt": "[MASK] [MASK] [MASK]\n" * 400},
        ["train", "mlm", "--text", "m.txt", "--out", "run", *COMMON, "--max-steps", "2", "--set", "model.d_model=16",
         "--set", "model.n_heads=2", "--set", "data.block_size=16"], "none of the scored text's tokens can be masked"),
    "lm text shorter than a block, over an existing run": (
        {"short.txt": "hello world, hello sun\n", **EXISTING_RUN},
        ["train", "lm", "--text", "short.txt", "--out", "old", "--overwrite", *LM_TINY],
        "a block of 32 needs at least 33"),
    # classification
    "classify two texts a class (no room for validation)": (
        {"few.csv": labelled(4)}, ["train", "classify", "--csv", "few.csv", "--out", "run", *NEURAL_TINY],
        "4 examples of 2 classes are too few for data.test_fraction=0.1 and data.valid_fraction=0.1"),
    "classify one text a class, over an existing run": (
        {"two.csv": labelled(2), **EXISTING_RUN},
        ["train", "classify", "--csv", "two.csv", "--out", "old", "--overwrite", *TFIDF],
        "has 1 example(s); a train/test split needs at least 2 per class"),
    "classify duplicate text header": ({"dup.csv": labelled(30, "text,text,label")},
                                       ["train", "classify", "--csv", "dup.csv", "--out", "run", *TFIDF],
                                       "names the column 'text' twice in its header"),
    "classify duplicate label header (tsv)": ({"dup.tsv": labelled(30, "label,text,label").replace(",", "\t")},
                                              ["train", "classify", "--csv", "dup.tsv", "--out", "run", *TFIDF],
                                              "names the column 'label' twice in its header"),
    "classify the text column is the label column": (
        {"data.csv": labelled(30)},
        ["train", "classify", "--csv", "data.csv", "--text-col", "label", "--out", "run", *TFIDF],
        "the text column and the label column are both 'label'"),
    # compare
    "compare translate given --dates and --src": ({"a.txt": "\n".join(WORDS), "b.txt": "\n".join(WORDS)},
                                                  ["compare", "translate", "--dates", "--src", "a.txt", "--tgt",
                                                   "b.txt", "--out", "run", *COMMON],
                                                  "--dates is the data; give it or --src/--tgt or --tsv, not both"),
    # forecasting
    "forecast duplicate header": ({"dup.csv": "date,OT,OT\n" + "\n".join(SERIES_ROWS) + "\n"},
                                  ["train", "forecast", "--csv", "dup.csv", "--input-len", "24", "--horizon", "4",
                                   "--split", "0.7,0.1,0.2", "--out", "run", *COMMON, "--max-steps", "2"],
                                  "names the column 'OT' twice in its header"),
    "forecast --top-k with one model": ({"s.csv": "date,OT,x\n" + "\n".join(SERIES_ROWS) + "\n"},
                                        ["train", "forecast", "--csv", "s.csv", "--model", "linear", "--top-k", "2",
                                         "--split", "0.7,0.1,0.2", "--input-len", "24", "--horizon", "4", "--out",
                                         "run", *COMMON, "--max-steps", "2"], "--model linear trains one model"),
    "forecast split with a NaN fraction": ({"s.csv": "date,OT,x\n" + "\n".join(SERIES_ROWS) + "\n"},
                                           ["train", "forecast", "--csv", "s.csv", "--input-len", "24", "--horizon",
                                            "4", "--split", "0.7,nan,0.2", "--out", "run", *COMMON, "--max-steps", "2"],
                                           "three positive fractions summing to 1"),
    # vision
    "vision too few images a class for a validation split": (
        images(6), ["train", "vision", "--images", "images", "--out", "run", *VISION_TINY],
        "12 images in 2 classes are too few"),
    "vision patch size that does not divide, over an existing run": (
        {**images(12), **EXISTING_RUN},
        ["train", "vision", "--images", "images", "--out", "old", "--overwrite", *VISION_TINY,
         "--set", "model.patch_size=3"], "model.patch_size 3 does not divide the image size 8"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_input_is_one_line_and_loses_nothing(case, tmp_path, capsys, monkeypatch):
    files, args, expected = CASES[case]
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Image.Image):
            content.save(path)
        else:
            path.write_text(content)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code, _, err = run_cli(args, capsys)
    assert_one_line_refusal(code, err, expected)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "run").exists()


def test_a_duplicate_header_is_read_as_the_file_says(tmp_path):
    """The header check reads the file's own first row: a column that pandas would name ``x.1`` is
    not mistaken for a duplicate of ``x``, and a quoted name is the name."""
    from seqlab.data.labelled_text import duplicate_header

    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("x,x.1,label\n1,2,a\n")
    bad.write_text('"x",y,x\n1,2,3\n')
    assert duplicate_header(good, sep=",") is None
    assert duplicate_header(bad, sep=",") == "x"


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    from seqlab.cli.main import main

    root = tmp_path_factory.mktemp("lm")
    (root / "text.txt").write_text("the cat sat on the mat. the dog sat on the log.\n" * 40)
    assert main(["train", "lm", "--text", str(root / "text.txt"), "--out", str(root / "run"), *LM_TINY]) == 0
    return root / "run"


# a trained run's command -> what the one line must say
ON_A_RUN = {
    "generate on a device torch does not know": (["generate", "{run}", "--prompt", "the", "--device", "tpu"],
                                                 "--device must be auto, cpu, cuda, cuda:N or mps; got 'tpu'"),
    "eval on a device torch does not know": (["eval", "{run}", "--text", "{run}/../text.txt", "--device", "gpu0"],
                                             "--device must be auto, cpu, cuda, cuda:N or mps; got 'gpu0'"),
}


@pytest.mark.parametrize("case", sorted(ON_A_RUN))
def test_a_hostile_input_to_a_trained_run_is_one_line(case, lm_run, capsys):
    args, expected = ON_A_RUN[case]
    before = snapshot(lm_run.parent)
    code, out, err = run_cli([a.format(run=lm_run) for a in args], capsys)
    assert_one_line_refusal(code, err, expected)
    assert out == "" and snapshot(lm_run.parent) == before


def test_stray_inputs_an_existing_forecast_file_an_empty_model_list_and_a_huge_seed_are_one_line(tmp_path, capsys):
    """Each of these used to be ignored, overwrite a file, train every model, or raise a traceback."""
    from seqlab.cli.main import main

    series = tmp_path / "series.csv"
    series.write_text("date,OT\n" + "".join(f"2020-01-{1 + h // 24:02d} {h % 24:02d}:00,{h % 7}\n" for h in range(200)))
    run = tmp_path / "run"
    assert main(["train", "forecast", "--csv", str(series), "--model", "linear", "--input-len", "8", "--horizon", "2",
                 "--split", "0.7,0.1,0.2", "--max-steps", "2", "--set", "train.progress=false",
                 "--set", "train.tensorboard=false", "--out", str(run)]) == 0
    capsys.readouterr()
    kept = tmp_path / "kept.csv"
    kept.write_text("mine\n")
    for argv, words in ((["predict", str(run), "hello", "--csv", str(series)], "takes no inputs"),
                        (["predict", str(run), "--csv", str(series), "--out", str(kept)], "exists"),
                        (["compare", "forecast", "--csv", str(series), "--models", "", "--out", str(tmp_path / "c")],
                         "unknown model kind")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert kept.read_text() == "mine\n" and not (tmp_path / "c").exists()
