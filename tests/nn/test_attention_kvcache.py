"""KVCache: where it writes. Appends go in place into a buffer with room to spare (grown by half, at least
16 positions), reorders copy the moved rows in place or gather into a second buffer, and nothing autograd
saved or the caller gave is ever written to. The values are checked against torch.cat and index_select."""

import pytest
import torch

from seqlab.nn import KVCache


def test_an_empty_cache_holds_nothing():
    cache = KVCache()
    assert cache.key is None and cache.value is None and len(cache) == 0 and cache.length == 0
    cache.reorder(torch.tensor([0]))  # nothing to reorder
    assert cache.key is None


def storage(t):
    return t.untyped_storage().data_ptr()


def positions(t):
    """The positions the storage behind a cached (B, H, T, d) float tensor has room for."""
    B, H, _, d = t.shape
    return t.untyped_storage().nbytes() // (B * H * d * t.element_size())


def test_cache_appends_in_place_and_grows_by_half_at_least_16():
    torch.manual_seed(0)
    cache, kept = KVCache(), []  # kept: every tensor returned stays alive, so no address is reused
    keys, values = torch.randn(2, 3, 1, 4), torch.randn(2, 3, 1, 4)
    cache.update(keys, values)
    for new in [1] * 17:  # 2 positions need room: 2 + 16 = 18
        k, v = torch.randn(2, 3, new, 4), torch.randn(2, 3, new, 4)
        keys, values = torch.cat([keys, k], 2), torch.cat([values, v], 2)
        kept.append(cache.update(k, v))
        assert torch.equal(kept[-1][0], keys) and torch.equal(kept[-1][1], values)
    assert len(cache) == 18 and all(positions(k) == 18 for k, _ in kept)
    assert len({storage(k) for k, _ in kept}) == 1 and len({storage(v) for _, v in kept}) == 1  # all in place
    kept.append(cache.update(torch.randn(2, 3, 1, 4), torch.randn(2, 3, 1, 4)))
    assert positions(kept[-1][0]) == 19 + 16 and storage(kept[-1][0]) != storage(kept[0][0])

    cache, kept = KVCache(), []
    cache.update(torch.randn(1, 2, 40, 4), torch.randn(1, 2, 40, 4))
    kept.append(cache.update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4)))
    assert positions(kept[0][0]) == 41 + 20  # half as many again
    for _ in range(20):
        kept.append(cache.update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4)))
    assert len(cache) == 61 and len({storage(k) for k, _ in kept}) == 1  # filled to the last position in place
    kept.append(cache.update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4)))
    assert positions(kept[-1][0]) == 62 + 31 and storage(kept[-1][0]) != storage(kept[0][0])


def test_cache_reorders_few_rows_in_place_and_many_into_a_spare_buffer():
    torch.manual_seed(0)
    B, H = 6, 2
    cache = KVCache()
    keys, values = torch.randn(B, H, 3, 4), torch.randn(B, H, 3, 4)
    cache.update(keys[:, :, :2], values[:, :, :2])
    kept = [cache.update(keys[:, :, 2:], values[:, :, 2:])[0]]  # grown: the cache's own buffer
    home = storage(kept[0])

    def reorder(*index):
        nonlocal keys, values
        index = torch.tensor(index)
        cache.reorder(index)
        keys, values = keys[index], values[index]
        assert torch.equal(cache.key, keys) and torch.equal(cache.value, values)
        kept.append(cache.key)
        return storage(cache.key)

    assert reorder(0, 1, 2, 3, 4, 5) == home  # nothing moves
    assert reorder(0, 0, 2, 3, 4, 5) == home  # one row of six: copied in place
    assert reorder(0, 1, 1, 3, 3, 5) == home  # two rows of six: still fewer than half
    spare = reorder(0, 1, 2, 2, 2, 2)  # three of six (half): one gather into the spare buffer
    assert spare != home
    assert reorder(5, 4, 3, 2, 1, 0) == home  # and back: two buffers, no third
    assert reorder(1, 0, 3, 2, 5, 4) == spare

    # a new batch size (beam search's first step) copies; the copy is the cache's own to reorder in place
    widened = reorder(0, 0, 1, 1, 2, 2, 3, 3)
    assert cache.key.size(0) == 8 and widened not in (home, spare)
    assert reorder(0, 1, 2, 3, 4, 5, 7, 7) == widened
    narrowed = reorder(7, 1, 2)
    assert cache.key.size(0) == 3 and reorder(0, 0, 2) == narrowed


def test_reordering_never_writes_into_what_the_cache_was_given():
    key, value = torch.randn(4, 2, 3, 4), torch.randn(4, 2, 3, 4)
    given_key, given_value = key.clone(), value.clone()
    cache = KVCache()
    cache.update(key, value)  # held as given, not copied
    cache.reorder(torch.tensor([0, 1, 2, 2]))
    assert torch.equal(cache.key, given_key[[0, 1, 2, 2]]) and torch.equal(cache.value, given_value[[0, 1, 2, 2]])
    assert torch.equal(key, given_key) and torch.equal(value, given_value)


@pytest.mark.parametrize("needs_grad", ["key", "value"])
@pytest.mark.parametrize("when", ["first", "later"])
def test_cache_never_writes_into_a_tensor_autograd_saved(needs_grad, when):
    """Decoding with gradients through the cache (keys or values alone needing them, at the first step or
    a later one): the backward pass finds every saved tensor unchanged, and the gradients of a plain
    concatenation."""
    torch.manual_seed(0)
    steps = [[torch.randn(2, 2, n, 4), torch.randn(2, 2, n, 4)] for n in (2, 1, 1, 1)]
    at = 0 if when == "first" else 2
    steps[at][0 if needs_grad == "key" else 1].requires_grad_()
    queries = [torch.randn(2, 2, 1, 4, requires_grad=True) for _ in steps]

    def loss(k, v, q):
        return ((q @ k.transpose(-1, -2)).softmax(-1) @ v).square().sum()

    cache, total = KVCache(), 0
    for (k, v), q in zip(steps, queries):
        total = total + loss(*cache.update(k, v), q)
    leaves = [t for step in steps for t in step if t.requires_grad] + queries
    got = torch.autograd.grad(total, leaves)
    keys, values, expected = steps[0][0][:, :, :0], steps[0][1][:, :, :0], 0
    for (k, v), q in zip(steps, queries):
        keys, values = torch.cat([keys, k], 2), torch.cat([values, v], 2)
        expected = expected + loss(keys, values, q)
    for a, b in zip(got, torch.autograd.grad(expected, leaves)):
        torch.testing.assert_close(a, b)


def test_cache_reorders_on_the_device_of_its_tensors(monkeypatch):
    """On the meta device (no data; a stand-in for an accelerator here): every tensor the reorder makes
    lives where the cache does. torch's meta nonzero needs leave to assume every element non-zero."""
    config = pytest.importorskip("torch.fx.experimental._config")
    if not hasattr(config, "meta_nonzero_assume_all_nonzero"):
        pytest.skip("this torch has no meta nonzero")
    monkeypatch.setattr(config, "meta_nonzero_assume_all_nonzero", True)
    cache = KVCache()
    for n in (2, 1):
        cache.update(torch.empty(4, 2, n, 8, device="meta"), torch.empty(4, 2, n, 8, device="meta"))
    cache.reorder(torch.tensor([0, 0, 1, 2], device="meta"))
    assert cache.key.device.type == "meta" and cache.key.shape == (4, 2, 3, 8) and cache.value.shape == (4, 2, 3, 8)
