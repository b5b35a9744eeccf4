import itertools

import torch

from seqlab.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from seqlab.models import Transformer, TransformerConfig
from seqlab.models.search import beam_search, greedy_decode

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
