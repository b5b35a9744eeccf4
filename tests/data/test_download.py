import os
import urllib.error

import pytest

from seqlab.cli.main import main
from seqlab.data import download
from seqlab.errors import UserError


class FakeResponse:
    def __init__(self, data):
        self.data = data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self):
        return self.data


def test_download_writes_every_file_and_refuses_to_overwrite(tmp_path, monkeypatch, capsys):
    fetched = []
    monkeypatch.setattr(download.urllib.request, "urlopen",
                        lambda url, timeout: fetched.append(url) or FakeResponse(b"pos\tneg\n"))
    assert main(["data", "download", "mr", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mr.tsv", "rt-polarity.neg", "rt-polarity.pos"]
    assert all(url.startswith("https://") and "CNN_sentence" in url for url in fetched)
    (tmp_path / "rt-polarity.pos").write_text("mine")
    assert main(["data", "download", "mr", "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "rt-polarity.pos").read_text() == "mine"


def test_unknown_name_and_network_failure_are_one_line(tmp_path, monkeypatch, capsys):
    assert main(["data", "download", "imagenet", "--out", str(tmp_path)]) == 2
    assert "available: etth1, etth2, exchange, mr, multi30k, tinyshakespeare" in capsys.readouterr().err

    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    assert main(["data", "download", "tinyshakespeare", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no network" in err
    assert not list(tmp_path.iterdir())
    # the folders it made for --out go again (an empty "dir with space/ü" stayed), a file given is named
    assert main(["data", "download", "tinyshakespeare", "--out", str(tmp_path / "new dir" / "ü")]) == 2
    assert "no network" in capsys.readouterr().err and not list(tmp_path.iterdir())
    (tmp_path / "afile").write_text("mine")
    assert main(["data", "download", "tinyshakespeare", "--out", str(tmp_path / "afile")]) == 2
    assert capsys.readouterr().err.strip().endswith("afile is a file; --out takes a folder")  # was [Errno 17]
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_download_that_fails_midway_keeps_what_was_there_and_removes_what_it_began(tmp_path, monkeypatch, capsys):
    answers = iter([b"pos\n"])  # the first file comes, the second does not

    def flaky(url, timeout):
        try:
            return FakeResponse(next(answers))
        except StopIteration:
            raise urllib.error.URLError("connection reset") from None

    monkeypatch.setattr(download.urllib.request, "urlopen", flaky)
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["data", "download", "mr", "--out", str(tmp_path)]) == 2
    assert "connection reset" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_mr_comes_with_a_table_that_train_classify_reads(tmp_path, monkeypatch, capsys):
    snippets = {"pos": "a gripping , beautifully acted film \nfun\tand moving \n",
                "neg": "tedious and dull\nan ugly , caf\xe9-set mess \n"}
    monkeypatch.setattr(download.urllib.request, "urlopen",
                        lambda url, timeout: FakeResponse(snippets[url.rsplit(".", 1)[1]].encode("latin-1")))
    assert main(["data", "download", "mr", "--out", str(tmp_path)]) == 0
    assert f"next: seqlab train classify --csv {tmp_path}/mr.tsv" in capsys.readouterr().out
    from seqlab.data.labelled_text import read_labelled

    texts, labels = read_labelled(tmp_path / "mr.tsv", "text", "label")  # UTF-8 now; the tab became a space
    assert texts == ["a gripping , beautifully acted film ", "fun and moving ", "tedious and dull",
                     "an ugly , café-set mess "]  # otherwise as the files have them, as the MR benchmark reads them
    assert labels == ["pos", "pos", "neg", "neg"]


@pytest.mark.parametrize("name", sorted(download.DATASETS))
def test_every_dataset_names_its_source(name):
    dataset = download.DATASETS[name]
    assert dataset.files and dataset.about


def test_shipped_recipes_read_the_data_where_download_writes_it():
    """A recipe's data paths are data/NAME/FILE for a FILE that seqlab data download NAME writes there."""
    from importlib import resources

    from seqlab.config import read_toml

    recipes = [p for p in resources.files("seqlab.recipes").iterdir() if p.name.endswith(".toml")]
    paths = [value for recipe in recipes for key, value in read_toml(recipe).get("data", {}).items()
             if key in ("src", "tgt", "valid_src", "valid_tgt", "test_src", "test_tgt", "text", "csv") and value]
    assert paths  # the Multi30k recipes name six files each
    for path in paths:
        _, name, file = path.split("/")
        assert path.startswith("data/") and file in download.DATASETS[name].files, path


def test_exchange_comes_as_the_dated_table_long_horizon_papers_use(tmp_path, monkeypatch):
    """The headerless eight-column gzip becomes date,0..6,OT with the file's 7th column as OT and its 8th
    as 6 (the Autoformer layout), one day a row from 1990-01-01."""
    import gzip

    import pandas as pd

    raw = b"0.7855,1.611,0.861698,0.634196,0.211242,0.006838,0.593,0.525486\n" \
          b"0.7818,1.61,0.861104,0.633513,0.211242,0.006863,0.594,0.523972\n"
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: FakeResponse(gzip.compress(raw)))
    assert main(["data", "download", "exchange", "--out", str(tmp_path)]) == 0
    frame = pd.read_csv(tmp_path / "exchange_rate.csv")
    assert list(frame.columns) == ["date", "0", "1", "2", "3", "4", "5", "6", "OT"]
    assert list(frame["date"]) == ["1990-01-01", "1990-01-02"]
    assert frame.iloc[0, 1:].tolist() == [0.7855, 1.611, 0.861698, 0.634196, 0.211242, 0.006838, 0.525486, 0.593]
    assert frame["OT"].tolist() == [0.593, 0.594]


@pytest.mark.parametrize("path, hint", [("data/mr/mr.tsv", "mr"), ("runs/data/multi30k/train.de.gz", "multi30k"),
                                        ("data/exchange/sub/x.csv", "exchange")])
def test_a_missing_file_of_a_downloadable_set_names_the_command(path, hint):
    message = str(download.file_not_found(path))
    assert message == f"file not found: {path}; seqlab data download {hint} fetches it"


@pytest.mark.parametrize("path", ["data/mr", "data/imagenet/x.csv", "mr/data/x.tsv", "other/mr/mr.tsv", "mr.tsv",
                                  "data/x/mr/y.tsv"])
def test_a_missing_file_elsewhere_is_only_named(path):
    assert str(download.file_not_found(path)) == f"file not found: {path}"


def write_exchange(folder, raw: bytes):
    import gzip

    (folder / "exchange_rate.txt.gz").write_bytes(gzip.compress(raw))


def test_exchange_table_of_one_day_and_old_mac_line_ends(tmp_path):
    import warnings

    import pandas as pd

    write_exchange(tmp_path, b"1,2,3,4,5,6,7,8\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated pandas alias either
        download.exchange_table(tmp_path)
    assert (tmp_path / "exchange_rate.csv").read_text() == ("date,0,1,2,3,4,5,6,OT\n"
                                                           "1990-01-01,1.0,2.0,3.0,4.0,5.0,6.0,8.0,7.0\n")
    write_exchange(tmp_path, b"1,2,3,4,5,6,7,8\r1,2,3,4,5,6,7,9\r1,2,3,4,5,6,7,10\r")
    download.exchange_table(tmp_path)
    frame = pd.read_csv(tmp_path / "exchange_rate.csv")
    assert frame["date"].tolist() == ["1990-01-01", "1990-01-02", "1990-01-03"] and frame["6"].tolist() == [8, 9, 10]


def test_an_exchange_file_with_other_columns_is_refused(tmp_path):
    write_exchange(tmp_path, b"1,2,3,4,5,6,7\n1,2,3,4,5,6,7\n")
    with pytest.raises(UserError) as caught:
        download.exchange_table(tmp_path)
    assert str(caught.value) == f"{tmp_path / 'exchange_rate.txt.gz'} has 7 columns; the exchange-rate file has 8"


def test_fetch_asks_with_a_timeout_and_names_the_reason(monkeypatch):
    asked = []
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: asked.append((url, timeout))
                        or FakeResponse(b"abc"))
    assert download.fetch("https://example.org/x") == b"abc" and asked == [("https://example.org/x", 60.0)]
    assert download.fetch("https://example.org/y", timeout=2.5) == b"abc" and asked[-1][1] == 2.5

    def slow(url, timeout):
        raise TimeoutError("timed out")

    monkeypatch.setattr(download.urllib.request, "urlopen", slow)
    with pytest.raises(UserError) as caught:
        download.fetch("https://example.org/x")
    assert str(caught.value) == "cannot download https://example.org/x: timed out"

    def offline(url, timeout):
        raise urllib.error.URLError("no route")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    with pytest.raises(UserError) as caught:
        download.fetch("https://example.org/x")
    assert str(caught.value) == "cannot download https://example.org/x: no route"


def test_download_logs_each_file_its_source_and_the_next_step(tmp_path, monkeypatch):
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: FakeResponse(b"x" * 1234))
    lines = []
    written = download.download("tinyshakespeare", tmp_path / "out", log=lines.append)
    out = tmp_path / "out"
    assert written == [out / "tinyshakespeare.txt"] and (out / "tinyshakespeare.txt").read_bytes() == b"x" * 1234
    assert lines == [f"{out / 'tinyshakespeare.txt'}  (1,234 bytes)", download.DATASETS["tinyshakespeare"].about,
                     f"next: seqlab train lm --text {out}/tinyshakespeare.txt --config shakespeare-char-77s"]
    written = download.download("tinyshakespeare", out, overwrite=True, log=lines.append)
    assert written == [out / "tinyshakespeare.txt"]


def test_download_of_a_set_with_a_derived_file(tmp_path, monkeypatch):
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: FakeResponse(b"good\n"))
    lines = []
    written = download.download("mr", tmp_path, log=lines.append)
    assert written == [tmp_path / "rt-polarity.pos", tmp_path / "rt-polarity.neg", tmp_path / "mr.tsv"]
    assert lines[:3] == [f"{tmp_path / 'rt-polarity.pos'}  (5 bytes)", f"{tmp_path / 'rt-polarity.neg'}  (5 bytes)",
                         f"{tmp_path / 'mr.tsv'}  (made from the files above)"]
    assert (tmp_path / "mr.tsv").read_text(encoding="utf-8") == "text\tlabel\ngood\tpos\ngood\tneg\n"
    for name in ("rt-polarity.pos", "rt-polarity.neg"):
        (tmp_path / name).unlink()
    with pytest.raises(UserError, match=r"mr.tsv already exists; pass --overwrite to replace it"):
        download.download("mr", tmp_path, log=lines.append)


def test_an_empty_answer_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: FakeResponse(b""))
    url = download.DATASETS["etth1"].files["ETTh1.csv"]
    with pytest.raises(UserError) as caught:
        download.download("etth1", tmp_path, log=lambda line: None)
    assert str(caught.value) == f"{url} returned no data" and not (tmp_path / "ETTh1.csv").exists()


def test_mr_table_blanks_carriage_returns_and_writes_utf8_whatever_the_locale(tmp_path, ascii_locale):
    (tmp_path / "rt-polarity.pos").write_bytes("caf\xe9\rbar\n".encode("latin-1"))
    (tmp_path / "rt-polarity.neg").write_bytes(b"dull\n")

    with ascii_locale():
        download.mr_table(tmp_path)
    assert (tmp_path / "mr.tsv").read_bytes() == "text\tlabel\ncaf\xe9 bar\tpos\ndull\tneg\n".encode("utf-8")


def test_download_makes_missing_parent_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: FakeResponse(b"abc"))
    out = tmp_path / "a" / "b"
    assert download.download("etth1", out, log=lambda line: None) == [out / "ETTh1.csv"]
    assert (out / "ETTh1.csv").read_bytes() == b"abc"


def test_a_folder_given_for_a_file_is_named_as_a_folder(tmp_path):
    assert str(download.file_not_found(tmp_path)) == f"{tmp_path} is a folder; give a file"


@pytest.mark.parametrize("command", [["lm", "--text", "{0}"], ["translate", "--src", "{0}", "--tgt", "{0}"],
                                     ["forecast", "--csv", "{0}"], ["classify", "--csv", "{0}"]])
def test_a_device_or_a_pipe_is_not_called_missing(command, tmp_path, capsys):
    """/dev/null and a named pipe exist: 'file not found' sent the user looking for a typo."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for path in ("/dev/null", pipe):
        out = tmp_path / "run"
        assert main(["train", *[a.format(path) for a in command], "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [f"seqlab train: error: {path} is not a regular file (a device or a pipe); "
                                            f"save the data to a file and give that"]
        assert not out.exists()
