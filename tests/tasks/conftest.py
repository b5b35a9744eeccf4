"""Data the --init tests share: an unlabelled corpus and a labelled CSV over the same few words."""

import random
from pathlib import Path

import pytest

SUBJECTS, OBJECTS = ["the cat", "a dog", "my friend", "the teacher"], ["the sun", "a tree", "the river"]


def write_init_texts(folder: Path, lines: int) -> Path:
    """corpus.txt (``lines`` sentences "SUBJECT sees OBJECT.") and labelled.csv (is the subject an
    animal?), drawn with a fixed seed."""
    rng = random.Random(0)
    text = [f"{rng.choice(SUBJECTS)} sees {rng.choice(OBJECTS)}.\n" for _ in range(lines)]
    (folder / "corpus.txt").write_text("".join(text), encoding="utf-8")
    rows = [f"{s} sees {rng.choice(OBJECTS)},{'animal' if s in SUBJECTS[:2] else 'person'}" for s in SUBJECTS * 10]
    (folder / "labelled.csv").write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def write_texts():
    return write_init_texts


@pytest.fixture(scope="module")
def init_texts(tmp_path_factory):
    return write_init_texts(tmp_path_factory.mktemp("init-data"), 600)
