"""``seqlab data download NAME``: the benchmark data sets, fetched from their canonical sources.

Files are written under a temporary name and renamed, and nothing already there is replaced without
``overwrite``. Sources and licences: see each entry's ``about``.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..io import atomic_write


def mr_table(folder: Path) -> None:
    """mr.tsv beside the two Latin-1 files: one ``text<TAB>label`` row a snippet (pos, then neg, as the
    MR benchmark orders them), UTF-8, ready for ``seqlab train classify``."""
    from .text import read_lines  # lines end at "\n" only: MR has form feeds and U+0085 inside sentences

    rows = ["text\tlabel"]
    for label in ("pos", "neg"):
        lines = read_lines(folder / f"rt-polarity.{label}", encoding="latin-1")
        rows += [line.replace("\t", " ").replace("\r", " ") + f"\t{label}" for line in lines if line.strip()]
    atomic_write(folder / "mr.tsv", lambda path: path.write_text("\n".join(rows) + "\n", encoding="utf-8"))


def exchange_table(folder: Path) -> None:
    """exchange_rate.csv from the headerless gzip of eight daily rates: the layout long-horizon papers use
    since Autoformer (Wu et al., 2021): a ``date`` column from 1990-01-01, one day a row, the rates as
    columns 0–6 and ``OT`` (the file's seventh column; its eighth is named 6)."""
    import gzip

    import numpy as np
    import pandas as pd

    rates = np.loadtxt(gzip.open(folder / "exchange_rate.txt.gz", "rt"), delimiter=",", ndmin=2)
    if rates.shape[1] != 8:
        raise UserError(f"{folder / 'exchange_rate.txt.gz'} has {rates.shape[1]} columns; the exchange-rate "
                        f"file has 8")
    frame = pd.DataFrame(rates[:, [0, 1, 2, 3, 4, 5, 7, 6]], columns=[*map(str, range(7)), "OT"])
    frame.insert(0, "date", pd.date_range("1990-01-01", periods=len(frame), freq="D"))
    atomic_write(folder / "exchange_rate.csv", lambda path: frame.to_csv(path, index=False))


@dataclass(frozen=True)
class Dataset:
    files: dict[str, str]  # file name -> URL
    about: str
    derive: Callable[[Path], None] | None = None  # writes files made from the downloaded ones ...
    derived: tuple[str, ...] = ()  # ... with these names (checked before anything is fetched)
    next_step: str = ""  # the command that uses the data, with {out} for its folder


GITHUB = "https://raw.githubusercontent.com"
MULTI30K = f"{GITHUB}/multi30k/dataset/master/data/task1/raw"
DATASETS = {
    "tinyshakespeare": Dataset(
        {"tinyshakespeare.txt": f"{GITHUB}/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"},
        "tiny-shakespeare, 1.1 MB of Shakespeare (karpathy/char-rnn); public-domain text",
        next_step="seqlab train lm --text {out}/tinyshakespeare.txt --config shakespeare-char-77s"),
    "etth1": Dataset(
        {"ETTh1.csv": f"{GITHUB}/zhouhaoyi/ETDataset/main/ETT-small/ETTh1.csv"},
        "Electricity Transformer Temperature, hourly (zhouhaoyi/ETDataset); CC BY-ND 4.0, cite Zhou et al. 2021",
        next_step="seqlab train forecast --csv {out}/ETTh1.csv --target OT --input-len 336 --horizon 96 --model patch"),
    "etth2": Dataset(
        {"ETTh2.csv": f"{GITHUB}/zhouhaoyi/ETDataset/main/ETT-small/ETTh2.csv"},
        "Electricity Transformer Temperature, hourly, second station (zhouhaoyi/ETDataset); CC BY-ND 4.0, "
        "cite Zhou et al. 2021",
        next_step="seqlab train forecast --csv {out}/ETTh2.csv --horizon 96"),
    "exchange": Dataset(
        {"exchange_rate.txt.gz": f"{GITHUB}/laiguokun/multivariate-time-series-data/master/exchange_rate/"
                                 "exchange_rate.txt.gz"},
        "daily exchange rates of eight countries, 1990-2010 (laiguokun/multivariate-time-series-data); "
        "cite Lai et al., LSTNet, SIGIR 2018",
        derive=exchange_table, derived=("exchange_rate.csv",),
        next_step="seqlab train forecast --csv {out}/exchange_rate.csv --split 0.7,0.1,0.2 --horizon 96"),
    "multi30k": Dataset(
        {f"{split}.{lang}.gz": f"{MULTI30K}/{split}.{lang}.gz"
         for split in ("train", "val", "test_2016_flickr") for lang in ("de", "en")},
        "Multi30k task 1 raw sentences (multi30k/dataset); research use, cite Elliott et al. 2016",
        next_step="seqlab train translate --config multi30k-de-en (it reads data/multi30k/; from another folder "
                  "add --set data.src='{out}/train.de.gz' and likewise data.tgt, data.valid_*, data.test_*)"),
    "mr": Dataset(
        {f"rt-polarity.{p}": f"{GITHUB}/yoonkim/CNN_sentence/master/rt-polarity.{p}" for p in ("pos", "neg")},
        "MR sentence polarity v1.0, Latin-1 (yoonkim/CNN_sentence); research use, cite Pang & Lee 2005",
        derive=mr_table, derived=("mr.tsv",),
        next_step="seqlab train classify --csv {out}/mr.tsv --cv 10"),
}


def file_not_found(path: str | Path) -> UserError:
    """The error for a data file that is not there; a file under ``data/NAME/`` of a data set this module
    downloads (as the shipped recipes name them) says which command fetches it."""
    from ..errors import DataError

    parts = Path(path).parts
    for i in range(len(parts) - 2):
        if parts[i] == "data" and parts[i + 1] in DATASETS:
            return DataError(f"file not found: {path}; seqlab data download {parts[i + 1]} fetches it")
    if Path(path).is_dir():
        return DataError(f"{path} is a folder; give a file")
    if Path(path).exists():  # /dev/null, a named pipe, a socket: nothing seqlab can read twice or measure
        return DataError(f"{path} is not a regular file (a device or a pipe); save the data to a file and give that")
    return DataError(f"file not found: {path}")


def fetch(url: str, timeout: float = 60.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(f"cannot download {url}: {reason}") from None


def download(name: str, out: Path, overwrite: bool = False, log=print) -> list[Path]:
    if name not in DATASETS:
        raise UserError(f"unknown data set {name!r}; available: {', '.join(sorted(DATASETS))}")
    dataset = DATASETS[name]
    out = Path(out)
    targets = [out / f for f in [*dataset.files, *dataset.derived]]
    existing = [path for path in targets if path.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; --out takes a folder")
    made = next((p for p in [*reversed(out.parents), out] if not p.exists()), None)  # the first folder made here
    out.mkdir(parents=True, exist_ok=True)
    new = [path for path in targets if path not in existing]
    try:
        return _fetch_all(dataset, out, log)
    except BaseException:  # no network, a bad answer, Ctrl-C: nothing half-made stays, nothing of the user's goes
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        for path in new:
            path.unlink(missing_ok=True)
        raise


def _fetch_all(dataset: Dataset, out: Path, log) -> list[Path]:
    written = []
    for file_name, url in dataset.files.items():
        content = fetch(url)
        if not content:
            raise UserError(f"{url} returned no data")
        atomic_write(out / file_name, lambda path: path.write_bytes(content))
        written.append(out / file_name)
        log(f"{out / file_name}  ({len(content):,} bytes)")
    if dataset.derive is not None:
        dataset.derive(out)
        for file_name in dataset.derived:
            written.append(out / file_name)
            log(f"{out / file_name}  (made from the files above)")
    log(dataset.about)
    if dataset.next_step:
        log("next: " + dataset.next_step.format(out=out))
    return written
