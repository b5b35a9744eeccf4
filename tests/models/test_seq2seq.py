import math

import pytest
import torch

from seqlab.models import Seq2Seq, Seq2SeqConfig, from_pretrained
from seqlab.models.search import beam_search, greedy_decode
from seqlab.models.seq2seq import RecurrentCache, teacher_forcing_ratio

VARIANTS = [dict(kind="simple"), dict(kind="context", cell="gru"), dict(kind="attention"),
            dict(kind="attention", score="dot", bidirectional=False), dict(kind="attention", score="general", cell="gru"),
            dict(kind="attention", window=2, num_layers=2)]


def model(**kw):
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(11, 13, embed_dim=8, hidden_size=12, dropout=0.0, **kw)).eval()


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_cached_steps_equal_teacher_forced_decode_and_search_runs(variant):
    m = model(**variant)
    src, tgt = torch.randint(1, 11, (3, 6)), torch.randint(1, 13, (3, 5))
    src[1, 4:] = 0
    full = m(src, tgt)
    assert full.shape == (3, 5, 13)
    memory, mask = m.encode(src)
    cache = m.new_cache()
    steps = torch.cat([m.decode(tgt[:, t : t + 1], memory, mask, cache) for t in range(5)], 1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)
    assert greedy_decode(m, src, 6).shape[0] == 3
    assert beam_search(m, src, 6, beam_size=3).shape[0] == 3


@pytest.mark.parametrize("variant", VARIANTS[:3] + VARIANTS[-1:], ids=lambda v: "-".join(map(str, v.values())))
def test_source_padding_changes_nothing(variant):
    m = model(**variant)
    src, tgt = torch.randint(1, 11, (1, 5)), torch.randint(1, 13, (1, 4))
    padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(m(padded, tgt), m(src, tgt), atol=1e-5, rtol=1e-5)


def test_attention_weights_are_a_distribution_over_real_tokens():
    m = model(kind="attention")
    src, tgt = torch.randint(1, 11, (2, 6)), torch.randint(1, 13, (2, 4))
    src[0, 3:] = 0
    memory, mask = m.encode(src)
    logits, attention = m.decode(tgt, memory, mask, need_weights=True)
    torch.testing.assert_close(logits, m.decode(tgt, memory, mask))
    (weights,) = attention["cross"]  # one layer, one head: (B, 1, T, S)
    weights = weights.squeeze(1)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4))
    assert (weights[0, :, 3:] == 0).all()


def test_local_attention_stays_in_its_window():
    m = model(kind="attention", window=1)
    src, tgt = torch.randint(1, 11, (2, 9)), torch.randint(1, 13, (2, 4))
    _, attention = m(src, tgt, need_weights=True)
    nonzero = (attention["cross"][0] > 0).sum(-1)
    assert (nonzero <= 3).all() and (nonzero >= 1).all()


def test_scheduled_sampling_feeds_own_predictions():
    m = model(kind="attention")
    src, tgt = torch.randint(1, 11, (4, 6)), torch.randint(1, 13, (4, 6))
    torch.testing.assert_close(m(src, tgt, teacher_forcing=1.0), m(src, tgt))
    assert not torch.allclose(m(src, tgt, teacher_forcing=0.0), m(src, tgt))
    assert teacher_forcing_ratio(0, "linear", 1.0, 0.5, 100) == 1.0
    assert teacher_forcing_ratio(50, "linear", 1.0, 0.5, 100) == pytest.approx(0.75)
    assert teacher_forcing_ratio(10**6, "inverse_sigmoid", 1.0, 0.5, 100) == 0.5


def test_teacher_forcing_schedules_by_hand():
    # defaults: constant 1.0; linear from 1.0 to 0.5 over 10 000 steps
    assert teacher_forcing_ratio(123) == 1.0
    assert teacher_forcing_ratio(123, "constant", 0.8, 0.1, 7) == 0.8
    assert teacher_forcing_ratio(5_000, "linear") == pytest.approx(0.75, rel=1e-12)
    assert teacher_forcing_ratio(2_000, "linear", 0.9) == pytest.approx(0.9 - 0.4 * 0.2, rel=1e-12)
    # past the end of the ramp: the end value, not beyond
    assert teacher_forcing_ratio(150, "linear", 1.0, 0.5, 100) == 0.5
    assert teacher_forcing_ratio(1, "linear", 1.0, 0.5, 1) == 0.5
    # inverse sigmoid (Bengio et al., 2015): start · k / (k + exp(step / k)), k = steps / 10, at least end
    assert teacher_forcing_ratio(10, "inverse_sigmoid", 1.0, 0.0, 100) == pytest.approx(10 / (10 + math.e), rel=1e-6)
    assert teacher_forcing_ratio(20, "inverse_sigmoid", 0.8, 0.0, 100) == pytest.approx(
        0.8 * 10 / (10 + math.exp(2)), rel=1e-6)
    assert teacher_forcing_ratio(0, "inverse_sigmoid", 1.0, 0.0, 10) == pytest.approx(0.5)  # k = 1
    assert teacher_forcing_ratio(0, "inverse_sigmoid", 1.0, 0.0, 5) == pytest.approx(0.5)  # k at least 1
    assert teacher_forcing_ratio(50, "inverse_sigmoid", 1.0, 0.3, 100) == 0.3  # 10 / (10 + e^5) < 0.3
    with pytest.raises(ValueError, match="^teacher forcing schedule must be constant, linear or inverse_sigmoid; "
                                         "got 'cosine'$"):
        teacher_forcing_ratio(0, "cosine")


def test_recurrent_cache_reorders_every_layers_state():
    cache = RecurrentCache()
    assert cache.h is None and cache.c is None
    cache.reorder(torch.tensor([0]))  # nothing cached yet: nothing to do
    assert cache.h is None and cache.c is None
    h = [torch.arange(6.0).view(3, 2), 10 + torch.arange(6.0).view(3, 2)]  # two layers, 3 beams
    index = torch.tensor([2, 0, 0])
    cache.h = list(h)
    cache.reorder(index)  # a GRU's cache: no cell state
    assert cache.c is None
    assert all(torch.equal(mine, layer[[2, 0, 0]]) for mine, layer in zip(cache.h, h))
    lstm = RecurrentCache()
    lstm.h, lstm.c = list(h), [-layer for layer in h]
    lstm.reorder(index)
    assert all(torch.equal(mine, layer[[2, 0, 0]]) for mine, layer in zip(lstm.h, h))
    assert all(torch.equal(mine, -layer[[2, 0, 0]]) for mine, layer in zip(lstm.c, h))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="kind"):
        Seq2Seq(Seq2SeqConfig(5, 5, kind="transformer"))
    with pytest.raises(ValueError, match="window"):
        Seq2Seq(Seq2SeqConfig(5, 5, kind="simple", window=3))
    with pytest.raises(ValueError, match="dot scores need equal sizes"):
        Seq2Seq(Seq2SeqConfig(5, 5, kind="attention", score="dot", hidden_size=8, bidirectional=True))


def test_save_and_load(tmp_path):
    m = model(kind="attention", cell="gru")
    m.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path).eval()
    src, tgt = torch.randint(1, 11, (2, 5)), torch.randint(1, 13, (2, 4))
    torch.testing.assert_close(loaded(src, tgt), m(src, tgt))


@pytest.mark.parametrize("pad_id", [0, 3])
def test_the_target_padding_token_embeds_to_zeros_and_gets_no_gradient(pad_id):
    # nn.Embedding's padding_idx: the pad row starts at zero and is never updated
    torch.manual_seed(0)
    m = Seq2Seq(Seq2SeqConfig(11, 13, embed_dim=8, hidden_size=12, dropout=0.0, pad_id=pad_id))
    for table in (m.src_embed, m.tgt_embed):
        assert torch.equal(table.weight[pad_id], torch.zeros(8))
        assert table.weight[(pad_id + 1) % 11].abs().sum() > 0
    src = torch.tensor([[1, 2, 4, 5]])
    tgt = torch.tensor([[1, pad_id, 2, pad_id]])
    m(src, tgt).sum().backward()
    assert torch.equal(m.tgt_embed.weight.grad[pad_id], torch.zeros(8))
    assert m.tgt_embed.weight.grad[2].abs().sum() > 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_deep_encoder_drops_out_between_its_layers_in_training(cell):
    # config.dropout is the encoder's inter-layer dropout when it has two layers or more (as nn.LSTM's
    # dropout=): in training two passes over the same input differ, in eval they agree; without dropout
    # they agree in training too
    x, lengths = torch.randn(2, 5, 8), torch.tensor([5, 5])
    for dropout, differ in [(0.5, True), (0.0, False)]:
        torch.manual_seed(0)
        encoder = Seq2Seq(Seq2SeqConfig(11, 13, cell=cell, embed_dim=8, hidden_size=12, num_layers=2,
                                        dropout=dropout)).encoder
        first, second = encoder.train()(x, lengths)[0], encoder(x, lengths)[0]
        assert (not torch.equal(first, second)) == differ
        encoder.eval()
        torch.testing.assert_close(encoder(x, lengths)[0], encoder(x, lengths)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_decoder_starts_from_the_bridged_final_encoder_states_of_torchs_rnn(cell):
    # torch's own nn.LSTM / nn.GRU with the encoder's weights; per layer both directions' final states
    # concatenated, h0 = tanh(W_b [h→; h←] + b_b), and for an LSTM c0 = W_c [c→; c←] + b_c (no tanh)
    torch.manual_seed(0)
    m = Seq2Seq(Seq2SeqConfig(11, 13, cell=cell, embed_dim=8, hidden_size=12, num_layers=2, dropout=0.0)).eval()
    reference = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(8, 12, 2, batch_first=True, bidirectional=True)
    reference.load_state_dict(m.encoder.state_dict())
    src = torch.randint(1, 11, (3, 5))  # no padding: every row runs its full length
    with torch.no_grad():
        (outputs, _, h0, c0), _ = m.encode(src)
        want_outputs, state = reference(m.src_embed(src))
    h_n, c_n = state if cell == "lstm" else (state, None)  # (layers·2, B, H)
    torch.testing.assert_close(outputs, want_outputs, atol=1e-5, rtol=1e-5)
    for layer in range(2):
        h_cat = torch.cat([h_n[2 * layer], h_n[2 * layer + 1]], -1)  # (B, 2H)
        torch.testing.assert_close(h0[:, layer], torch.tanh(h_cat @ m.bridge.weight.T + m.bridge.bias),
                                   atol=1e-5, rtol=1e-5)
        if cell == "lstm":
            c_cat = torch.cat([c_n[2 * layer], c_n[2 * layer + 1]], -1)
            torch.testing.assert_close(c0[:, layer], c_cat @ m.bridge_cell.weight.T + m.bridge_cell.bias,
                                       atol=1e-5, rtol=1e-5)
    if cell == "gru":
        assert m.bridge_cell is None and torch.equal(c0, torch.zeros_like(h0))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_every_parameter_takes_part_in_the_loss(variant):
    # an unused parameter (a bridge for a cell state a GRU does not have) would get no gradient, and
    # DistributedDataParallel refuses such models
    m = model(**variant).train()
    src, tgt = torch.randint(1, 11, (2, 6)), torch.randint(1, 13, (2, 5))
    m(src, tgt).sum().backward()
    unused = [name for name, p in m.named_parameters() if p.grad is None]
    assert unused == []
