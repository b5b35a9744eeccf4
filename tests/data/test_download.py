import urllib.error

import pytest

from seqlab.cli.main import main
from seqlab.data import download


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
