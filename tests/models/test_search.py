import itertools

import pytest
import torch

from seqlab.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from seqlab.models import ConvSeq2Seq, ConvSeq2SeqConfig, Seq2Seq, Seq2SeqConfig, Transformer, TransformerConfig
from seqlab.models.search import beam_search, decided, greedy_decode, length_penalty

V, STEPS = 6, 3


def model():
    torch.manual_seed(3)
    m = Transformer(TransformerConfig(9, V, d_model=16, n_heads=2, n_layers=1, d_ff=16, dropout=0.0)).eval()
    with torch.no_grad():  # sharpen the output distribution so that choices matter
        m.generator.weight.mul_(8)
    return m


def sequence_log_prob(m, src, tokens):
    decoder_in = torch.tensor([[BOS_ID, *tokens[:-1]]])
    log_probs = m(src, decoder_in).log_softmax(-1)[0]
    return sum(log_probs[t, tok].item() for t, tok in enumerate(tokens))


def truncate(tokens):
    return list(tokens[: tokens.index(EOS_ID) + 1]) if EOS_ID in tokens else list(tokens)


def test_greedy_equals_beam_of_one_and_stops_at_eos():
    m = model()
    src = torch.randint(4, 9, (5, 6))
    greedy = greedy_decode(m, src, STEPS)
    beam = beam_search(m, src, STEPS, beam_size=1, alpha=0.0)
    assert torch.equal(greedy, beam[:, : greedy.size(1)])
    for row in greedy.tolist():
        if EOS_ID in row:
            assert all(t == PAD_ID for t in row[row.index(EOS_ID) + 1 :])
    for search in (greedy_decode, beam_search):  # no step allowed: no tokens, one empty row a sentence
        assert search(m, src, 0).shape == (5, 0)


def test_wide_beam_is_exact_search():
    m = model()
    for seed in range(3):
        src = torch.randint(4, 9, (1, 5), generator=torch.Generator().manual_seed(seed))
        candidates = {tuple(truncate(list(t))) for t in itertools.product(range(V), repeat=STEPS)}
        best = max(candidates, key=lambda t: sequence_log_prob(m, src, list(t)))
        found = truncate(beam_search(m, src, STEPS, beam_size=V**STEPS, alpha=0.0)[0].tolist())
        assert abs(sequence_log_prob(m, src, found) - sequence_log_prob(m, src, list(best))) < 1e-4


def test_batched_beam_equals_one_by_one():
    m = model()
    src = torch.randint(4, 9, (4, 6))
    src[2, 4:] = PAD_ID
    together = beam_search(m, src, STEPS, beam_size=3)
    for i in range(4):
        alone = beam_search(m, src[i : i + 1, : 4 if i == 2 else 6], STEPS, beam_size=3)
        n = alone.size(1)
        assert together[i, :n].tolist() == alone[0].tolist()


def exhaustive_beam_search(m, src, max_len, K, alpha):
    """The beam search without its early stop, one sentence at a time, in plain Python: every step
    until all K hypotheses have finished (or max_len), then the best by log P / GNMT's lp."""
    memory, mask = m.encode(src)
    beams = [(0.0, [], False)]  # (log P, tokens, finished)
    for _ in range(max_len):
        candidates = []
        for score, tokens, done in beams:
            if done:
                candidates.append((score, tokens + [PAD_ID], True))
                continue
            decoder_in = torch.tensor([[BOS_ID, *tokens]])
            log_probs = m.decode(decoder_in, memory, mask)[0, -1].log_softmax(-1)
            candidates += [(score + log_probs[v].item(), tokens + [v], v == EOS_ID) for v in range(log_probs.size(0))]
        beams = sorted(candidates, key=lambda c: -c[0])[:K]
        if all(done for _, _, done in beams):
            break

    def ranked(beam):
        score, tokens, _ = beam
        length = tokens.index(EOS_ID) + 1 if EOS_ID in tokens else len(tokens)
        return score / ((5 + length) / 6) ** alpha

    return truncate(max(beams, key=ranked)[1])


def ending_more_likely_with_length(m, ramp):
    """m, its <eos> logit raised by ``ramp`` per position decoded, so that hypotheses finish at
    different lengths and finished ones compete with live ones."""
    decode = m.decode

    def wrapped(tgt, memory, mask, cache=None):
        start = cache.offset if cache is not None else 0
        logits = decode(tgt, memory, mask, cache)
        bonus = torch.zeros(logits.size(-1))
        bonus[EOS_ID] = ramp
        return logits + torch.arange(start, start + tgt.size(1)).unsqueeze(1) * bonus

    m.decode = wrapped
    return m


def test_stopping_early_changes_no_output_and_saves_steps():
    torch.manual_seed(3)
    steps, stopped_early = 10, 0
    for ramp in (0.6, 1.0):
        m = ending_more_likely_with_length(
            Transformer(TransformerConfig(9, V, d_model=16, n_heads=2, n_layers=1, d_ff=16, dropout=0.0)).eval(), ramp)
        decode, calls = m.decode, []
        m.decode = lambda *args: calls.append(1) or decode(*args)
        for alpha in (0.0, 0.6, 1.5):
            for seed in range(3):
                src = torch.randint(4, 9, (3, 5), generator=torch.Generator().manual_seed(seed))
                calls.clear()
                found = beam_search(m, src, steps, beam_size=3, alpha=alpha)
                stopped_early += len(calls) < steps
                with torch.no_grad():
                    expected = [exhaustive_beam_search(m, src[i : i + 1], steps, 3, alpha) for i in range(3)]
                assert [truncate(row) for row in found.tolist()] == expected
    assert stopped_early >= 9  # of 18 searches


def test_length_penalty_is_gnmts():
    lengths = torch.tensor([1, 7, 13])
    torch.testing.assert_close(length_penalty(lengths, 1.0), torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(length_penalty(lengths, 0.5), torch.tensor([1.0, 2.0, 3.0]).sqrt())
    assert length_penalty(lengths, 0.0).tolist() == [1.0, 1.0, 1.0]
    assert length_penalty(7, 1.0) == 2.0 and length_penalty(13, 0.5) == 3.0 ** 0.5  # a length on the host


def test_decided_copies_nothing_from_the_host_each_step(monkeypatch):
    # On CUDA a tensor made from Python numbers is a host-to-device copy that the step waits for.
    args = (torch.tensor([[-1.0, -2.1]]), torch.tensor([[True, False]]), torch.tensor([[1, 7]]), 1.0, 6, 7)
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: pytest.fail("decided() made a tensor from host values"))
    assert decided(*args).tolist() == [True]


def decided_by_rule(scores, finished, lengths, alpha, step, max_len):
    """decided()'s docstring in plain Python, every final length from step + 1 to max_len tried."""
    lp = lambda n: ((5 + n) / 6) ** alpha  # noqa: E731
    out = []
    for s_row, f_row, n_row in zip(scores.tolist(), finished.tolist(), lengths.tolist()):
        done = [(s / lp(n), s) for s, f, n in zip(s_row, f_row, n_row) if f]
        live = [s for s, f in zip(s_row, f_row) if not f]
        if not done:
            out.append(False)
            continue
        best_ranked, best_score = max(done)
        out.append(all(s < best_score for s in live)
                   and all(best_ranked > s / lp(n) for s in live for n in range(step + 1, max_len + 1)))
    return out


def test_decided_follows_its_rule():
    # Edge cases by hand, one a row: (scores, finished, lengths, alpha, step, max_len, decided).
    cases = [
        ([-1.0, -2.0], [True, False], [1, 1], 1.0, 0, 7, False),  # -1/lp(1) = -2/lp(7) = -1: no overtaking, no stop
        ([-1.0, -2.1], [True, False], [1, 7], 1.0, 6, 7, True),  # the last step: the live one can be 7 long, not 8
        ([-0.8, -1.0], [True, False], [3, 3], -1.0, 2, 5, True),  # alpha < 0: lp is largest at the live length 3
        ([-1.0, -1.0], [True, False], [1, 3], -1.0, 2, 5, False),  # a live one as probable as f: not decided
        ([-3.0, -1.0], [True, False], [2, 2], 0.0, 1, 4, False),  # a live one more probable
        ([-1.0, -2.0], [False, False], [2, 2], 0.6, 1, 4, False),  # none finished
        ([-1.0, -2.0], [True, True], [2, 4], 0.6, 3, 4, True),  # all finished
        ([-1.2, -1.5], [True, True], [1, 5], 1.0, 4, 5, True),  # f by score / lp: -1.5/(10/6) = -0.9 wins
    ]
    for scores, finished, lengths, alpha, step, max_len, expected in cases:
        args = (torch.tensor([scores]), torch.tensor([finished]), torch.tensor([lengths]), alpha, step, max_len)
        assert decided(*args).tolist() == [expected] == decided_by_rule(*args), (scores, finished, lengths, alpha)
    generator = torch.Generator().manual_seed(0)
    for alpha in (0.0, 0.6, 1.5, -1.0):
        for step in (0, 2, 5):
            scores = -torch.rand(40, 3, generator=generator) * 4 * (step + 1)
            finished = torch.rand(40, 3, generator=generator) < 0.5
            lengths = torch.where(finished, torch.randint(1, step + 2, (40, 3), generator=generator), step + 1)
            args = (scores, finished, lengths, alpha, step, 6)
            got = decided(*args).tolist()
            assert got == decided_by_rule(*args)
            assert 0 < sum(got) < 40  # both kinds of row occur


def test_decided_sentences_leave_the_batch():
    # Sentences whose search has ended are no longer decoded: later steps see fewer rows, and the
    # outputs still equal the search without its early stop, one sentence at a time.
    torch.manual_seed(3)
    m = ending_more_likely_with_length(
        Transformer(TransformerConfig(9, V, d_model=16, n_heads=2, n_layers=1, d_ff=16, dropout=0.0)).eval(), 0.6)
    decode, rows = m.decode, []
    m.decode = lambda tgt, *args: rows.append(tgt.size(0)) or decode(tgt, *args)
    src = torch.randint(4, 9, (6, 5), generator=torch.Generator().manual_seed(0))
    found = beam_search(m, src, 10, beam_size=3, alpha=0.6)
    assert rows[0] == 18 and min(rows) < 18 and rows == sorted(rows, reverse=True), rows
    assert found.size(1) == len(rows)  # one column per step run
    with torch.no_grad():
        expected = [exhaustive_beam_search(m, src[i : i + 1], 10, 3, 0.6) for i in range(6)]
    assert [truncate(row) for row in found.tolist()] == expected


def family(name, sharpen):
    torch.manual_seed(0)
    if name == "transformer":
        m = Transformer(TransformerConfig(11, 13, d_model=16, n_heads=2, n_layers=2, d_ff=16, dropout=0.0))
    elif name == "conv":
        m = ConvSeq2Seq(ConvSeq2SeqConfig(11, 13, embed_dim=8, hidden_size=12, n_layers=2, kernel_size=3,
                                          dropout=0.0, max_len=16))
    else:
        m = Seq2Seq(Seq2SeqConfig(11, 13, embed_dim=8, hidden_size=12, dropout=0.0, cell=name))
    with torch.no_grad():
        (m.output if name in ("lstm", "gru") else m.generator).weight.mul_(sharpen)
    return m.eval()


# (family, output weights' scale, <eos> logit bonus): chosen so that the 8 sentences' searches end at
# different steps, which the test asserts.
FAMILIES = [("transformer", 1, 1.0), ("lstm", 16, 0.5), ("gru", 16, 0.5), ("conv", 16, 2.0)]


@pytest.mark.parametrize("name,sharpen,eos_bonus", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_leaves_the_batch_and_equals_one_by_one(name, sharpen, eos_bonus):
    # The rows that leave take their cache (self- and cross-attention, recurrent state, convolution
    # history) and memory with them: the sentences left are decoded as if alone.
    m = family(name, sharpen)
    decode, rows = m.decode, []
    bonus = torch.zeros(13)
    bonus[EOS_ID] = eos_bonus

    def wrapped(tgt, *args):
        rows.append(tgt.size(0))
        return decode(tgt, *args) + bonus

    m.decode = wrapped
    src = torch.randint(3, 11, (8, 6), generator=torch.Generator().manual_seed(1))
    src[::3, 3:] = PAD_ID  # and the memory mask must leave with its rows
    together = beam_search(m, src, 12, beam_size=3)
    assert rows[0] == 24 and len(set(rows)) >= 3, rows  # sentences left the batch at two steps at least
    for i in range(8):
        alone = beam_search(m, src[i : i + 1], 12, beam_size=3)[0].tolist()
        assert truncate(together[i].tolist()) == truncate(alone)
