"""BERT's masking (Devlin et al., 2019 §3.1) on large samples: 15 % of the ordinary tokens chosen, of
those 80 % [MASK], 10 % a random token, 10 % unchanged; specials never chosen; whole words together;
and batch n a pure function of (seed, n)."""

import numpy as np
import pytest

from seqlab.data.masking import IGNORE, Masking, MaskedBlockBatches, evaluation_batches, with_ends
from seqlab.data.tokenizer import BERT_SPECIALS, train_wordpiece

V, N_SPECIAL, MASK_ID, CLS_ID, SEP_ID = 60, 5, 4, 2, 3
CONTINUING = np.arange(V) >= 40  # ids 40 … 59 play the ## pieces


def vocabulary(whole_word=False, probability=0.15):
    special = np.arange(V) < N_SPECIAL
    return Masking(MASK_ID, special, CONTINUING if whole_word else None, probability)


def sample(rows=400, length=250, seed=1):
    """Ordinary ids between [CLS] and [SEP], with [PAD] at the end of every fourth row."""
    rng = np.random.default_rng(seed)
    ids = with_ends(rng.integers(N_SPECIAL, V, size=(rows, length)), CLS_ID, SEP_ID)
    ids[::4, -20:] = 0
    return ids


def test_fifteen_percent_of_ordinary_tokens_are_chosen_and_split_80_10_10():
    ids = sample()
    inputs, labels = vocabulary()(ids, np.random.default_rng(0))
    ordinary = ids >= N_SPECIAL
    chosen = labels != IGNORE
    assert not chosen[~ordinary].any()  # [CLS], [SEP], [PAD] never
    assert chosen.sum() / ordinary.sum() == pytest.approx(0.15, abs=0.005)  # ~85,000 ordinary tokens
    assert (labels[chosen] == ids[chosen]).all() and (inputs[~chosen] == ids[~chosen]).all()

    masked = inputs[chosen] == MASK_ID
    unchanged = inputs[chosen] == ids[chosen]
    replaced = ~masked & ~unchanged
    # A random replacement is one of the 55 ordinary ids, so 1/55 of the 10 % draw the original back.
    assert masked.mean() == pytest.approx(0.8, abs=0.01)
    assert replaced.mean() == pytest.approx(0.1 * 54 / 55, abs=0.01)
    assert unchanged.mean() == pytest.approx(0.1 + 0.1 / 55, abs=0.01)
    assert (inputs[chosen][replaced] >= N_SPECIAL).all()  # never a special token as the random one
    random_ids = np.bincount(inputs[chosen][replaced], minlength=V)[N_SPECIAL:]
    assert (random_ids > 0).all()  # drawn from the whole ordinary vocabulary (about 25 draws each)


def test_the_probability_is_a_setting():
    ids = sample(rows=200)
    _, labels = vocabulary(probability=0.4)(ids, np.random.default_rng(0))
    assert (labels != IGNORE).sum() / (ids >= N_SPECIAL).sum() == pytest.approx(0.4, abs=0.01)


def words(row):
    """(start, end) of each word of a row: an ordinary non-## token and the ## pieces after it."""
    spans, start = [], None
    for t, token in enumerate(row):
        if start is not None and not (token >= N_SPECIAL and CONTINUING[token]):
            spans.append((start, t))
            start = None
        if token >= N_SPECIAL and not CONTINUING[token]:
            start = t
    return spans + ([(start, len(row))] if start is not None else [])


def test_whole_word_masking_chooses_every_piece_of_a_word_together():
    ids = sample(rows=200)
    inputs, labels = vocabulary(whole_word=True)(ids, np.random.default_rng(0))
    chosen = labels != IGNORE
    assert not chosen[ids < N_SPECIAL].any()
    n_words = n_chosen = 0
    for r, row in enumerate(ids):
        for start, end in words(row):
            together = chosen[r, start:end]
            assert together.all() or not together.any(), (r, start, end)
            n_words += 1
            n_chosen += together[0]
    assert n_chosen / n_words == pytest.approx(0.15, abs=0.01)
    assert (inputs[chosen] == MASK_ID).mean() == pytest.approx(0.8, abs=0.015)  # 80/10/10 still per token


def test_a_wordpiece_tokenizers_masking_knows_its_specials_and_pieces():
    tokenizer = train_wordpiece(["unbelievable things happen to unbelievers\n"] * 5, vocab_size=60)
    masking = Masking.for_tokenizer(tokenizer, BERT_SPECIALS, whole_word=True)
    assert masking.mask_id == 4 and masking.special[:5].all() and not masking.special[5:].any()
    for i in range(tokenizer.get_vocab_size()):
        assert masking.continuation[i] == tokenizer.id_to_token(i).startswith("##")
    assert masking.continuation.any()
    plain = Masking.for_tokenizer(tokenizer, BERT_SPECIALS, probability=0.3)  # whole words off by default
    assert plain.continuation is None and plain.probability == 0.3


def test_batch_n_is_a_pure_function_of_seed_and_n():
    ids = np.random.default_rng(0).integers(N_SPECIAL, V, size=5000).astype(np.uint16)
    def make(seed):
        return MaskedBlockBatches(ids, 30, 8, seed, vocabulary(), CLS_ID, SEP_ID)
    straight = make(7)
    batches = [next(straight) for _ in range(4)]
    assert batches[0]["x"].shape == (8, 32) and (batches[0]["x"][:, 0] == CLS_ID).all()
    resumed = make(0)
    resumed.load_state_dict({"seed": 7, "index": 3})
    again = next(resumed)
    assert (again["x"] == batches[3]["x"]).all() and (again["labels"] == batches[3]["labels"]).all()
    assert straight.state_dict() == {"seed": 7, "index": 4}
    other = next(make(8))
    assert not (other["labels"] == batches[0]["labels"]).all()
    # Same blocks with a different masking would be the bug this guards: the draws differ between batches.
    assert not (batches[1]["labels"] == batches[2]["labels"]).all()


def test_evaluation_masking_does_not_depend_on_the_batch_size():
    ids = np.random.default_rng(0).integers(N_SPECIAL, V, size=3000).astype(np.uint16)
    starts = np.arange(0, 2900, 30)
    def collect(batch_size):
        batches = list(evaluation_batches(ids, starts, 30, batch_size, vocabulary(), CLS_ID, SEP_ID))
        return np.concatenate([b["x"] for b in batches]), np.concatenate([b["labels"] for b in batches])
    (x1, y1), (x2, y2) = collect(7), collect(32)
    assert (x1 == x2).all() and (y1 == y2).all() and (y1 != IGNORE).any()
    untouched = y1[:, 1:-1] == IGNORE  # the blocks themselves, between [CLS] and [SEP]
    assert (x1[:, 1:-1][untouched] == np.stack([ids[s : s + 30] for s in starts])[untouched]).all()


@pytest.mark.parametrize("probability", [0.0, 1.0, 1.5, -0.1])
def test_a_probability_outside_zero_one_is_refused(probability):
    with pytest.raises(ValueError, match=r"masking probability must be in \(0, 1\)"):
        vocabulary(probability=probability)


def test_any_integer_ids_come_back_as_int64():
    ids = sample(rows=4, length=10).astype(np.uint16)  # as the token stream stores them
    inputs, labels = vocabulary(probability=0.5)(ids, np.random.default_rng(0))
    assert inputs.dtype == np.int64 and labels.dtype == np.int64
    assert (labels[labels != IGNORE] == ids[labels != IGNORE]).all()
    ends = with_ends(np.array([[5, 6]], dtype=np.uint64), CLS_ID, SEP_ID)
    assert ends.dtype == np.int64 and ends.tolist() == [[CLS_ID, 5, 6, SEP_ID]]


def test_a_piece_cut_off_at_the_start_of_a_row_is_a_word_of_its_own():
    ids = np.tile([40, 10, 11], (4000, 1))  # a ## piece with no start before it, then two words
    _, labels = vocabulary(whole_word=True, probability=0.5)(ids, np.random.default_rng(0))
    chosen = labels != IGNORE
    assert chosen[:, 0].mean() == pytest.approx(0.5, abs=0.03)
    # independent of the word after it: chosen alone about half the time (never, if it shared its draw)
    assert (chosen[:, 0] != chosen[:, 1]).mean() == pytest.approx(0.5, abs=0.03)
