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
