"""A foreign vocabulary renumbered into seqlab's order: every text encodes to the same tokens, each under
its new id, whatever the tokenizer's model (BPE, Unigram), its added tokens and its post-processor."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing

from seqlab.errors import UserError
from seqlab.interop.vocabulary import NEVER, renumbered, seqlab_order

TEXTS = ["the cat sees a tree", "my friend likes the river house", "zebra!"]
CORPUS = TEXTS * 20 + ["a dog and a cat", "houses by the river"] * 10


def marian_like(model, trainer) -> Tokenizer:
    """</s> = 0, <unk> = 1, <pad> last (as Marian's vocabularies are), </s> appended to every text."""
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.add_special_tokens(["<pad>"])
    tokenizer.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 0)])
    return tokenizer


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_renumbered_tokenizer_gives_the_same_tokens_under_the_new_ids(kind):
    if kind == "bpe":
        tokenizer = marian_like(models.BPE(unk_token="<unk>"), trainers.BpeTrainer(
            vocab_size=60, special_tokens=["</s>", "<unk>"], show_progress=False))
    else:
        tokenizer = marian_like(models.Unigram(), trainers.UnigramTrainer(
            vocab_size=40, special_tokens=["</s>", "<unk>"], unk_token="<unk>", show_progress=False))
    size = tokenizer.get_vocab_size()
    pad = tokenizer.token_to_id("<pad>")
    assert (tokenizer.token_to_id("</s>"), tokenizer.token_to_id("<unk>"), pad) == (0, 1, size - 1)
    numbering = seqlab_order(size, pad=pad, start=pad, eos=0, unk=1)  # the decoder starts from <pad>
    ours = renumbered(tokenizer, numbering.new_id(), numbering.added)
    assert [ours.id_to_token(i) for i in range(4)] == ["<pad>", "<bos>", "</s>", "<unk>"]
    assert ours.get_vocab_size() == size + 1 and numbering.order[:4] == [pad, pad, 0, 1]
    for text in TEXTS + ["unseen qqq words"]:
        before, after = tokenizer.encode(text), ours.encode(text)
        assert after.tokens == before.tokens and after.tokens[-1] == "</s>"
        known = [k for k, token in enumerate(before.tokens) if tokenizer.token_to_id(token) == before.ids[k]]
        assert [after.ids[k] for k in known] == [ours.token_to_id(before.tokens[k]) for k in known]
        assert [numbering.order[i] for i in after.ids] == before.ids
    assert renumbered(tokenizer, numbering.new_id(), numbering.added, keep_post_processor=False).encode(
        "the cat").tokens[-1] != "</s>"


def test_rows_and_bias_follow_the_numbering():
    import torch

    numbering = seqlab_order(6, pad=5, start=5, eos=0, unk=None)  # no <unk>: a new row too
    assert numbering.order == [5, 5, 0, 5, 1, 2, 3, 4] and set(numbering.added) == {1, 3}
    rows = torch.arange(6.0).unsqueeze(1)
    assert numbering.rows(rows).squeeze(1).tolist() == [5, 5, 0, 5, 1, 2, 3, 4]
    assert numbering.bias(torch.arange(6.0)).tolist() == [NEVER, NEVER, 0, NEVER, 1, 2, 3, 4]  # <pad> never either


def test_a_start_that_is_the_end_token_is_a_row_of_its_own():
    import torch

    numbering = seqlab_order(6, pad=5, start=0, eos=0, unk=1)  # the decoder starts from </s>, as BART's does
    assert numbering.order == [5, 0, 0, 1, 2, 3, 4] and numbering.added == {1: "<bos>"}
    rows = torch.arange(6.0).unsqueeze(1)
    assert numbering.rows(rows).squeeze(1).tolist() == [5, 0, 0, 1, 2, 3, 4]  # <bos> reads </s>'s embedding ...
    assert numbering.bias(torch.arange(6.0)).tolist() == [NEVER, NEVER, 0, 1, 2, 3, 4]  # ... and is never output
    assert numbering.new_id() == {5: 0, 0: 2, 1: 3, 2: 4, 3: 5, 4: 6}  # </s> is <eos> alone


def test_clashing_specials_are_refused():
    with pytest.raises(UserError, match="padding"):
        seqlab_order(6, pad=0, start=0, eos=0, unk=1)
    for start in (-1, 6):
        with pytest.raises(UserError, match=rf"the decoder's start \({start}\) must be an id of the 6-token"):
            seqlab_order(6, pad=5, start=start, eos=0, unk=1)
