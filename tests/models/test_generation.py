"""Sampling (models/generation.py) on a stand-in model whose next-token logits are fixed per row, so that
every draw can be replayed with torch.multinomial itself; the filters' edge cases by hand; the argument
checks at their boundaries."""

import math

import pytest
import torch

from seqlab.models.generation import check_sampling, filter_logits, generate


class FixedLM:
    """forward(ids, cache) -> the same logits (B, V) at every position; counts its caches."""

    max_len = None

    def __init__(self, logits):
        self.logits, self.caches, self.cached_calls = logits, 0, 0

    def new_cache(self):
        self.caches += 1
        return type("Cache", (), {"offset": 0})()

    def __call__(self, ids, cache=None):
        if cache is not None:
            cache.offset += ids.size(1)
            self.cached_calls += 1
        return self.logits[:, None].expand(ids.size(0), ids.size(1), -1)


def test_default_temperature_draws_from_the_softmax_itself():
    logits = torch.randn(32, 5, generator=torch.Generator().manual_seed(0)) * 2
    prompt = torch.zeros(32, 1, dtype=torch.long)
    got = generate(FixedLM(logits), prompt, 4, generator=torch.Generator().manual_seed(7))
    replay = torch.Generator().manual_seed(7)
    probs = logits.exp() / logits.exp().sum(-1, keepdim=True)
    expected = [torch.multinomial(probs, 1, generator=replay).squeeze(1) for _ in range(4)]
    assert torch.equal(got, torch.cat([prompt, torch.stack(expected, dim=1)], dim=1))


def test_top_k_one_always_takes_the_most_probable_token():
    logits = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
    got = generate(FixedLM(logits), torch.zeros(32, 1, dtype=torch.long), 5, top_k=1,
                   generator=torch.Generator().manual_seed(0))
    assert torch.equal(got[:, 1:], logits.argmax(-1, keepdim=True).expand(32, 5))


def test_zero_new_tokens_give_back_the_prompt():
    prompt = torch.tensor([[3, 1, 2]])
    assert torch.equal(generate(FixedLM(torch.zeros(1, 4)), prompt, 0), prompt)


@pytest.mark.parametrize("use_cache", [None, True])
def test_the_cache_is_used_by_default_and_when_asked(use_cache):
    model = FixedLM(torch.zeros(2, 4))
    kwargs = {} if use_cache is None else {"use_cache": use_cache}
    generate(model, torch.zeros(2, 3, dtype=torch.long), 3, temperature=0, **kwargs)
    assert model.caches == 1 and model.cached_calls == 3
    model = FixedLM(torch.zeros(2, 4))
    generate(model, torch.zeros(2, 3, dtype=torch.long), 3, temperature=0, use_cache=False)
    assert model.cached_calls == 0


def test_top_p_one_keeps_even_a_vanishing_tail():
    # In float32 the cumulative mass reaches 1.0 before the last tokens (1 + 9e-14 == 1): a nucleus of
    # the whole mass must still keep them, so top_p = 1 filters nothing.
    logits = torch.tensor([[0.0, -30.0, -31.0]])
    assert torch.equal(filter_logits(logits, top_p=1.0), logits)
    assert torch.equal(filter_logits(logits, top_k=3), logits)


def test_top_p_stops_as_soon_as_the_mass_is_reached():
    # Four tokens of 1/4 each (exact in float): 1/4 + 1/4 reaches 0.5, so two are kept, not three.
    kept = torch.isfinite(filter_logits(torch.zeros(2, 4), top_p=0.5))
    assert kept.sum(-1).tolist() == [2, 2]
    assert torch.isfinite(filter_logits(torch.zeros(1, 4), top_p=0.75)).sum() == 3


def test_filters_work_on_the_last_dimension_of_any_shape():
    # Each row holds the probabilities .5, .3, .15, .05 in its own order: top-2 and nucleus .75 (.5
    # alone is short of it, .5 + .3 reaches it) both keep exactly the .5 and the .3.
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2], [0, 2, 3, 1], [3, 1, 2, 0]]
    table = probs[torch.tensor(orders)]  # (6, 4)
    expected = table >= 0.3
    for shape in [(6, 4), (2, 3, 4), (3, 1, 2, 4)]:
        logits = table.log().view(shape)
        for kwargs in [{"top_k": 2}, {"top_p": 0.75}, {"top_k": 3, "top_p": 0.75}]:
            assert torch.equal(torch.isfinite(filter_logits(logits, **kwargs)), expected.view(shape)), (shape, kwargs)
    one = filter_logits(probs.log(), top_k=2, top_p=0.75)  # (V,) alone
    assert torch.isfinite(one).tolist() == [True, True, False, False]


@pytest.mark.parametrize("max_new_tokens, temperature, top_k, top_p", [
    (0, 1.0, None, None), (10**7, 1.0, None, None), (1, 0.0, None, None), (1, 1e6, None, None), (1, 1.0, 1, None),
    (1, 1.0, None, 1.0), (1, 1.0, None, 0.5), (1, 1.0, None, 1e-9)])
def test_arguments_at_their_limits_are_accepted(max_new_tokens, temperature, top_k, top_p):
    check_sampling(max_new_tokens, temperature, top_k, top_p)


@pytest.mark.parametrize("max_new_tokens, temperature, top_k, top_p, word", [
    (-1, 1.0, None, None, "max_new_tokens must be between 0 and 10,000,000; got -1"),
    (10**20, 1.0, None, None, "max_new_tokens must be between 0 and 10,000,000; got 100000000000000000000"),
    (1, -1.0, None, None, r"temperature must be a number in \[0, 1e6\]; got -1.0"),
    (1, 1e6 + 0.5, None, None, "temperature"), (1, math.inf, None, None, "temperature"),
    (1, math.nan, None, None, "temperature"),
    (1, 1.0, 0, None, "top_k must be at least 1; got 0"),
    (1, 1.0, None, 0.0, r"top_p must be in \(0, 1\]; got 0.0"), (1, 1.0, None, 1.5, "top_p")])
def test_arguments_out_of_range_are_refused_by_name(max_new_tokens, temperature, top_k, top_p, word):
    with pytest.raises(ValueError, match=word):
        check_sampling(max_new_tokens, temperature, top_k, top_p)
