import pytest

from seqlab.cli.main import main
from seqlab.tasks.bench_complexity import slope


def test_slope_recovers_a_power_law():
    lengths = [64, 128, 256, 512]
    assert slope(lengths, [3 * n**2 for n in lengths]) == pytest.approx(2.0)
    assert slope(lengths, [0.5 * n for n in lengths]) == pytest.approx(1.0)


def test_bench_complexity_writes_table_and_plot(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "complexity", "--out", str(out), "--lengths", "8,16,32,64", "--d-model", "16",
                 "--repeats", "1"]) == 0
    table = (out / "complexity.md").read_text()
    assert "self-attention" in table and "| 64 |" in table
    assert (out / "complexity.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["bench", "complexity", "--out", str(out), "--lengths", "8,16"]) == 2
    err = capsys.readouterr().err
    assert "already exists; pass --overwrite" in err and "--resume" not in err, err  # bench has no --resume
    assert main(["bench", "complexity", "--out", str(tmp_path / "x"), "--lengths", "8"]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["bench", "complexity", "--out", str(tmp_path / "x"), "--lengths", "8,8"]) == 2
    assert "at least two different" in capsys.readouterr().err
    # a length whose attention weights cannot fit was killed by the system, without a word, leaving run.json
    assert main(["bench", "complexity", "--out", str(tmp_path / "x"), "--lengths", "8,100000000"]) == 2
    err = capsys.readouterr().err
    assert "--lengths 100000000 needs ~" in err and "give shorter lengths" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_two_lengths_are_enough_for_a_slope(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "complexity", "--out", str(out), "--lengths", "16,8", "--d-model", "16",
                 "--repeats", "1"]) == 0
    assert "time slope (n ≥ 8)" in (out / "complexity.md").read_text()
