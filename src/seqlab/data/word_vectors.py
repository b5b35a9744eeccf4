"""Word vectors for an embedding layer: word2vec (CBOW or skip-gram, Mikolov et al., 2013)
trained with gensim on the training text, or GloVe-format vectors read from a text file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from ..errors import DataError


def train_word2vec(sentences: list[list[str]], dim: int, skip_gram: bool, epochs: int = 10, seed: int = 0,
                   min_count: int = 1) -> dict[str, np.ndarray]:
    """word -> vector, trained on the given tokenised sentences only (no outside data). One worker
    thread, so the vectors are a function of the seed."""
    from gensim.models import Word2Vec

    model = Word2Vec(sentences, vector_size=dim, sg=int(skip_gram), window=5, min_count=min_count, workers=1,
                     seed=seed, epochs=epochs)
    return {word: model.wv[word] for word in model.wv.index_to_key}


def read_glove(path: str | Path) -> dict[str, np.ndarray]:
    """GloVe's text format: a word and its numbers, space-separated, a line each (a word2vec-style
    "count dim" first line is skipped)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the word-vector file itself")
    if not path.is_file():
        raise DataError(f"word-vector file not found: {path}")
    vectors: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8", errors="strict") as file:
        try:
            for number, line in enumerate(file, 1):
                parts = line.rstrip().split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue
                try:
                    vectors[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    raise DataError(f"{path} line {number} is not 'word number number …'") from None
                if not np.isfinite(vectors[parts[0]]).all():  # inf, nan, or past float32's range
                    raise DataError(f"{path} line {number} holds a number that is not finite (inf, nan, or beyond "
                                    f"3.4e38): the loss would turn nan")
        except UnicodeDecodeError:
            raise DataError(f"{path} is not valid UTF-8") from None
    sizes = {len(v) for v in vectors.values()}
    if len(sizes) != 1:
        raise DataError(f"{path}: vectors of different sizes ({sorted(sizes)[:3]} …)" if sizes else f"{path} is empty")
    return vectors


def embedding_matrix(tokenizer: Tokenizer, vectors: dict[str, np.ndarray], dim: int) -> tuple[torch.Tensor, float]:
    """(V, dim) rows for the tokenizer's vocabulary (zeros where a word has no vector) and the share
    of the vocabulary covered."""
    if vectors and len(next(iter(vectors.values()))) != dim:
        raise DataError(f"the word vectors have {len(next(iter(vectors.values())))} dimensions; "
                        f"model.d_model is {dim} (set it to match)")
    vocab = tokenizer.get_vocab()
    matrix = np.zeros((len(vocab), dim), dtype=np.float32)
    found = 0
    for word, index in vocab.items():
        vector = vectors.get(word)
        if vector is not None:
            matrix[index] = vector
            found += 1
    return torch.from_numpy(matrix), found / max(len(vocab), 1)
