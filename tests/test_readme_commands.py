"""README.md's shell commands, walked top to bottom: every `.venv/bin/seqlab` line (and the seqlab
command behind the quickstart's `make demo`) runs as written, in README order, in one folder holding
stand-ins for the files the README names, each with a tiny budget appended. Flags given last win
(argparse keeps the last value of a flag; flags and --set win over --config), so an appended
`--max-steps 2` or `--cv 2` shrinks the command without changing what it is.

`seqlab data download` runs with the network replaced by stand-in files (the test never goes online);
`make test` is this suite, so the walk leaves it out. A README command without an entry in BUDGETS
fails the walk: add one."""

import gzip
import io
import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
import standin_data

from seqlab.cli.main import main
from seqlab.data import download
from seqlab.tasks import demo
from seqlab.tasks import task as registry

ROOT = Path(__file__).parents[1]
SEQLAB = ".venv/bin/seqlab"
QUIET = ["--threads", "1", "--set", "train.progress=false", "--set", "train.tensorboard=false"]
TRAIN = [*QUIET, "--max-steps", "2", "--precision", "fp32"]  # fp32: "auto" would time both on each model
NET = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--set", "model.d_ff=32"]
RNN = ["--set", "model.rnn.embed_dim=8", "--set", "model.rnn.hidden_size=16", "--set", "model.conv.embed_dim=8",
       "--set", "model.conv.hidden_size=16", "--set", "model.conv.n_layers=1"]
SHORT = ["--set", "decode.max_output_len=12"]
SERIES_ROWS = 14_400  # ETT's 12/4/4 months of hours, what the default split (data.split = "ett") needs


def skip(reason: str) -> dict:
    return {"skip": reason}


# Each README command (what follows `seqlab`, as the README writes it; the longest key that begins a
# command is its entry) -> what the walk appends, and what it checks beyond exit status 0.
BUDGETS: dict[str, dict] = {
    "make demo": {"args": [*QUIET, *NET, "--set", "train.max_steps=2", "--set", "train.eval_every=2",
                           "--set", "train.precision='fp32'"],
                  "check": lambda out: (Path("runs/demo") / "metrics.json").is_file()},
    "make test": skip("the test suite itself, this file among it"),
    'translate runs/demo "17 dic 1974"': {"args": ["--threads", "1"],  # a 2-step model's line may be empty
                                          "check": lambda out: out.count("\n") == 1},
    "train translate --src train.de --tgt train.en": {"args": [*TRAIN, *NET, *SHORT],
                                                      "check": lambda out: Path("runs/de-en/run.json").is_file()},
    "data download multi30k": {"check": lambda out: len(list(Path("data/multi30k").glob("*.gz"))) == 6},
    "train translate --config multi30k-de-en": {"args": [*TRAIN, *NET, *SHORT]},
    "eval runs/de-en": {"args": ["--threads", "1"], "check": lambda out: "bleu" in json.loads(out)},
    "train translate --resume runs/de-en": {"args": [*QUIET, "--max-steps", "4"],
                                            "check": lambda out: last_step("runs/de-en") == 4},
    "bench complexity": {"args": ["--threads", "1", "--lengths", "8,16", "--d-model", "16", "--repeats", "1"],
                         "check": lambda out: Path("runs/bench-complexity/run.json").is_file()},
    "compare translate --dates": {"args": [*TRAIN, *NET, *RNN, *SHORT],
                                  "check": lambda out: compared("translate")},
    "train lm --text input.txt --config shakespeare-char-77s": {"args": [*TRAIN, *NET]},
    "train lm --text input.txt --config shakespeare-char-quick": {"args": [*TRAIN, *NET],
                                                                "check": lambda out: Path("runs/quick/run.json").is_file()},
    "generate runs/shakespeare": {"args": ["--threads", "1", "--max-new-tokens", "20"],
                                  "check": lambda out: out.startswith("ROMEO:") and len(out) > len("ROMEO:\n")},
    "export runs/shakespeare --format hf": {"check": lambda out: Path("hf/shakespeare/config.json").is_file()},
    "import hf hf/shakespeare": {"check": lambda out: Path("runs/shakespeare-hf/run.json").is_file()},
    "export runs/shakespeare --format onnx": {"check": lambda out: Path("onnx/shakespeare/decode.onnx").is_file()},
    "train lm": {"args": [*TRAIN, *NET, "--set", "data.default_corpus_chars=20000"]},
    "compare lm --text input.txt": {"args": [*TRAIN, *NET, "--max-time", "20"],
                                    "check": lambda out: compared("lm")},
    "train lm --text input.txt --nproc 2": {"args": [*TRAIN, *NET, "--device", "cpu", "--out", "runs/lm-2"],
                                            "check": lambda out: processes("runs/lm-2") == 2},
    "train forecast --csv ETTh1.csv --target OT": {"args": [*TRAIN, *NET, "--set", "model.patch_len=16"]},
    "predict runs/forecast-…": {"args": ["--threads", "1"],
                                "check": lambda out: len(pd.read_csv("next96.csv")) == 96},
    "eval runs/forecast-…": {"args": ["--threads", "1"],  # later.csv: 500 rows, windows of 336 + 96
                             "check": lambda out: json.loads(out)["windows"] == 500 - 432 + 1},
    "train forecast --csv ETTh1.csv --input-len 720": {"args": TRAIN},
    "train forecast --csv ETTh1.csv --target OT --horizon 96": {  # --model auto: 2 steps a candidate, one length
        "args": [*TRAIN, "--lookbacks", "96"],
        "check": lambda out: json.loads(Path("runs/ot-auto/auto.json").read_text())["choice"] != []},
    "train classify --csv reviews.csv": {"args": [*TRAIN, "--cv", "2"]},
    "compare classify --csv reviews.csv": {"args": [*TRAIN, *NET, "--cv", "2", "--set", "model.hidden_size=16",
                                                    "--set", "model.n_filters=8"],
                                           "check": lambda out: compared("classify")},
    "data download mr": {"check": lambda out: Path("data/mr/mr.tsv").is_file()},
    "train classify --csv data/mr/mr.tsv": {"args": [*TRAIN, "--cv", "2"]},
    "compare forecast --csv ETTh1.csv": {"args": [*TRAIN, *NET, "--set", "model.patch_len=8",
                                                  "--set", "model.stride=4"],
                                         "check": lambda out: compared("forecast")},
    "train vision": {"args": [*TRAIN, *NET]},
    "train detect --out runs/digits-detect": {
        "args": [*TRAIN, "--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_encoder_layers=1",
                 "--set", "model.n_decoder_layers=1", "--set", "model.d_ff=32", "--set", "model.backbone_width=4",
                 "--set", "model.n_queries=6", "--set", "data.digits_train=8", "--set", "data.digits_valid=2",
                 "--set", "data.digits_test=2", "--set", "train.batch_size=4"],
        "check": lambda out: Path("runs/digits-detect/data/test/images/000001.png").is_file()},
    "eval runs/digits-detect": {"args": ["--threads", "1"], "check": lambda out: json.loads(out)["images"] == 2},
    "predict runs/digits-detect": {"args": ["--threads", "1"],
                                   "check": lambda out: len(json.loads(Path("boxes.json").read_text())) == 6
                                   and Path("boxes.png").is_file()},
    "train forecast --csv ETTh1.csv --target OT --quantiles": {
        "args": [*TRAIN, *NET, "--set", "model.patch_len=16"],
        "check": lambda out: "test_coverage_80" in json.loads(Path("runs/ot-q/metrics.json").read_text())},
    "train mlm --text corpus.txt --config mlm-tiny": {"args": [*TRAIN, *NET]},
    'predict runs/mlm "the movie was [MASK] good"': {"args": ["--threads", "1"],
                                                     "check": lambda out: fillers(out) == 5},  # --top-k 5 by default
}


def last_step(run: str) -> int:
    return max(json.loads(line)["step"] for line in (Path(run) / "metrics.jsonl").read_text().splitlines())


def compared(task: str) -> bool:
    """Whether runs/compare-TASK's table has a row for each of the task's architectures, in order."""
    return list(pd.read_csv(f"runs/compare-{task}/compare.csv")["model"]) == list(registry.get(task).architectures)


def fillers(out: str) -> int:
    """How many fillers `seqlab predict MLM_RUN TEXT` printed for the text's one [MASK]."""
    text, line = out.splitlines()
    assert text == "the movie was [MASK] good" and line.startswith("  [MASK] 1: "), out
    return len(line.split(", "))


def processes(run: str) -> int:
    return json.loads((Path(run) / "metrics.json").read_text())["processes"]


def shell_blocks(text: str) -> list[str]:
    """The fenced code blocks that are not Python (the README's command blocks)."""
    return re.findall(r"^```(?!python)\w*\n(.*?)^```", text, flags=re.M | re.S)


def readme_commands() -> list[list[str]]:
    """Every command of README.md's code blocks as the shell would split it (quotes removed, # comments
    dropped, `a && b` two commands), in README order: each `.venv/bin/seqlab` line, and `make TARGET`."""
    commands = []
    for block in shell_blocks((ROOT / "README.md").read_text(encoding="utf-8")):
        for line in block.splitlines():
            if not line.startswith((SEQLAB, "make ")):
                continue
            words = shlex.split(line, comments=True)
            while "&&" in words:
                commands.append(words[:words.index("&&")])
                words = words[words.index("&&") + 1:]
            commands.append(words)
    return commands


def make_target(target: str) -> list[str]:
    """The seqlab arguments of the Makefile's recipe for ``target`` (one `$(VENV)/bin/seqlab` line)."""
    recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M)
    lines = [line.strip() for line in recipe.group(1).splitlines() if "/bin/seqlab " in line]
    assert len(lines) == 1, f"make {target}: expected one seqlab line in its recipe"
    return shlex.split(lines[0].split("/bin/seqlab ", 1)[1])


def entry(command: list[str]) -> str:
    """The BUDGETS key of a README command: the longest key its text begins with."""
    words = command[1:] if command[0] == SEQLAB else command
    text = " ".join(f'"{word}"' if " " in word else word for word in words)
    keys = [key for key in BUDGETS if text == key or text.startswith(key + " ")]
    assert keys, (f"README command `{' '.join(command)}` has no entry in {Path(__file__).name}'s BUDGETS: "
                  f"add one (the flags that make it tiny, or skip(reason))")
    return max(keys, key=len)


def test_every_readme_command_has_an_entry_and_every_entry_a_command():
    commands = readme_commands()
    assert len(commands) >= 25 and ["make", "demo"] in commands
    used = {entry(command) for command in commands}
    assert used == set(BUDGETS), f"entries for no README command: {sorted(set(BUDGETS) - used)}"
    with pytest.raises(AssertionError, match="no entry in test_readme_commands.py's BUDGETS: add one"):
        entry([SEQLAB, "explore", "runs/demo"])


def standin_downloads() -> dict[str, bytes]:
    """URL -> the bytes the walk serves for it: tiny Multi30k (gzipped lines) and MR (Latin-1 lines)."""
    de, en = standin_data.german_english()
    served = {}
    for file, url in download.DATASETS["multi30k"].files.items():
        lines = de if file.endswith(".de.gz") else en
        served[url] = gzip.compress(("\n".join(lines) + "\n").encode())
    for file, url in download.DATASETS["mr"].files.items():
        text = standin_data.REVIEWS[file.rsplit(".", 1)[1]]
        served[url] = "".join(f"{text} n° {i}\n" for i in range(6)).encode("latin-1")
    return served


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A folder with the files the README names, the network replaced, the demo's corpus made small."""
    de, en = standin_data.german_english()
    for split in ("train", "test"):
        standin_data.write_lines(tmp_path / f"{split}.de", de)
        standin_data.write_lines(tmp_path / f"{split}.en", en)
    standin_data.play(tmp_path / "input.txt", copies=200)
    standin_data.write_lines(tmp_path / "corpus.txt", [f"the movie was {word} good ." for word in
                                                       ("very", "not", "so", "really", "quite")] * 40)
    standin_data.reviews(tmp_path / "reviews.csv")
    columns = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")  # ETTh1's
    standin_data.hourly_series(tmp_path / "ETTh1.csv", SERIES_ROWS, columns)
    standin_data.hourly_series(tmp_path / "later.csv", 500, columns, start="2025-08-21")

    served = standin_downloads()
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(served[url]))
    make_splits = demo.make_splits  # the demo's 200,000 training pairs -> 400
    monkeypatch.setattr(demo, "make_splits", lambda seed, n_train=400, n_test=40: make_splits(seed, 400, 40))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def resolve(argv: list[str]) -> list[str]:
    """`runs/forecast-…` (a run named when it was made) -> that run: the newest that matches."""
    resolved = []
    for word in argv:
        if "…" in word:
            matches = sorted(Path().glob(word.replace("…", "*")), key=lambda p: p.stat().st_mtime)
            assert matches, f"{word}: no run made by an earlier command matches"
            word = str(matches[-1])
        resolved.append(word)
    return resolved


def test_the_readme_commands_run_top_to_bottom(home, capsys):
    for command in readme_commands():
        key = entry(command)
        budget = BUDGETS[key]
        if "skip" in budget:
            continue
        argv = make_target(command[1]) if command[0] == "make" else resolve(command[1:])
        code = main([*argv, *budget.get("args", [])])
        captured = capsys.readouterr()
        shown = f"`{' '.join(command)}` (walked as seqlab {shlex.join(argv)} + {budget.get('args', [])})"
        assert code == 0, f"{shown} exits {code}:\n{captured.err}"
        if check := budget.get("check"):
            assert check(captured.out), f"{shown}: the check of its entry fails; it printed:\n{captured.out}"
