"""seqlab export / import: the commands' own checks, before any converter runs."""

import pytest

from seqlab.cli.main import main


@pytest.mark.parametrize("args, message", [
    (["export", "missing-run", "--format", "hf", "--out", "out", "--threads", "1"], "no such run directory"),
    (["export", "users-dir/notes.txt", "--format", "hf", "--out", "out"], "notes.txt: a file, not run directory"),
    (["train", "classify", "--csv", "texts.csv", "--init", "users-dir/notes.txt", "--out", "run"],
     "--init users-dir/notes.txt: a file, not run directory"),  # it said "no such run directory"
    (["import", "hf", "not-a-checkpoint", "--out", "run", "--threads", "1"], "no config.json"),
    (["import", "hf", "weird", "--out", "run"], "holds a 'weird-model' model; seqlab imports"),
    (["import", "hf", "broken", "--out", "run"], "is not a JSON object"),
    (["export", "mine", "--format", "hf", "--out", "users-dir", "--overwrite"], "is no export of seqlab's"),
    (["import", "hf", "old-run/hf", "--out", "old-run", "--overwrite"], "--overwrite would delete old-run/hf"),
    (["export", "mine", "--format", "hf", "--out", "users-dir/notes.txt", "--overwrite"], "is a file, not a directory"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-checkpoint").mkdir()
    (tmp_path / "weird").mkdir()
    (tmp_path / "weird" / "config.json").write_text('{"model_type": "weird-model"}')
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('["model_type"]')
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "run.json").write_text('{"task": "lm"}')
    (tmp_path / "users-dir").mkdir()
    (tmp_path / "users-dir" / "notes.txt").write_text("keep me")
    (tmp_path / "texts.csv").write_text("text,label\n" + "".join(f"words {i},{'ab'[i % 2]}\n" for i in range(40)))
    (tmp_path / "old-run" / "hf").mkdir(parents=True)  # a run holding the checkpoint to import
    (tmp_path / "old-run" / "run.json").write_text('{"task": "lm"}')
    (tmp_path / "old-run" / "hf" / "config.json").write_text('{"model_type": "weird-model"}')
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "users-dir" / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()
    assert (tmp_path / "old-run" / "hf" / "config.json").is_file()
