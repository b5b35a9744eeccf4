"""Translation metrics: perplexity per token and per word, computed sentence by sentence here and
compared with the batched, padded computation the task uses."""

import math

import pytest
import torch

from seqlab.data.batching import fixed_batches
from seqlab.data.tokenizer import BOS_ID, EOS_ID
from seqlab.models import Seq2Seq, Seq2SeqConfig, Transformer, TransformerConfig
from seqlab.tasks.translate import DecodeConfig, perplexities, translate_ids


def test_perplexity_per_token_and_per_word_match_a_sentence_by_sentence_sum():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(30, 30, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0,
                                          max_len=32)).eval()
    sources = [[5, 6, 7], [8, 9], [10, 11, 12, 13, 14]]
    targets = [[15, 16, 17, 18, 19, 20, 21], [22, 23, 24], [25, 26]]  # different lengths: padding in a batch
    references = ["A man, in a hat.", "Two dogs run.", "Yes!"]  # 13a words: 7, 4 and 2

    nll, tokens = 0.0, 0
    with torch.no_grad():
        for src, tgt in zip(sources, targets):
            logits = model(torch.tensor([src]), torch.tensor([[BOS_ID, *tgt]]))[0]  # (T, V)
            gold = torch.tensor([*tgt, EOS_ID])
            nll -= logits.log_softmax(-1).gather(1, gold[:, None]).sum().item()
            tokens += len(gold)
        got = perplexities(model, fixed_batches(sources, targets, batch_size=2), references, "cpu")

    words = (7 + 1) + (4 + 1) + (2 + 1)  # each sentence's words and its end
    assert got["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    assert got["word_perplexity"] == pytest.approx(math.exp(nll / words), rel=1e-5)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_an_empty_source_translates_to_nothing_and_leaves_the_others_as_they_were(beam_size):
    # A row of padding alone would give an RNN's attention a softmax over no position (NaN).
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(30, 30, embed_dim=8, hidden_size=16, dropout=0.0))
    sources = [[5, 6, 7], [8, 9, 10, 11]]
    config = DecodeConfig(beam_size, 0.6, 6)
    alone = translate_ids(model, sources, config, "cpu")
    got = translate_ids(model, [[], sources[0], [], sources[1]], config, "cpu")
    assert got == [[], alone[0], [], alone[1]] and all(alone)
