import torch

from seqlab.models import ConvSeq2Seq, ConvSeq2SeqConfig, from_pretrained
from seqlab.models.search import beam_search


def model():
    torch.manual_seed(0)
    return ConvSeq2Seq(ConvSeq2SeqConfig(11, 13, embed_dim=8, hidden_size=12, n_layers=2, kernel_size=3, dropout=0.0,
                                         max_len=16)).eval()


def test_cached_decoding_equals_full_and_is_causal():
    m = model()
    src, tgt = torch.randint(1, 11, (2, 6)), torch.randint(1, 13, (2, 7))
    full = m(src, tgt)
    memory, mask = m.encode(src)
    cache = m.new_cache()
    steps = torch.cat([m.decode(tgt[:, t : t + 1], memory, mask, cache) for t in range(7)], 1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)
    cache = m.new_cache()  # several positions a call (a prompt, then steps)
    chunks = torch.cat([m.decode(tgt[:, a:b], memory, mask, cache) for a, b in [(0, 3), (3, 4), (4, 7)]], 1)
    torch.testing.assert_close(chunks, full, atol=1e-5, rtol=1e-5)
    for t in range(6):
        changed = tgt.clone()
        changed[:, t + 1 :] = torch.randint(1, 13, changed[:, t + 1 :].shape)
        torch.testing.assert_close(m(src, changed)[:, : t + 1], full[:, : t + 1])


def test_source_padding_changes_nothing_and_search_runs(tmp_path):
    m = model()
    src, tgt = torch.randint(1, 11, (1, 5)), torch.randint(1, 13, (1, 4))
    padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(m(padded, tgt), m(src, tgt), atol=1e-5, rtol=1e-5)
    assert beam_search(m, torch.cat([padded, padded]), 5, beam_size=2).shape[0] == 2
    m.save_pretrained(tmp_path)
    torch.testing.assert_close(from_pretrained(tmp_path).eval()(src, tgt), m(src, tgt))


def test_gated_convolution_equals_torch_conv1d_forward_and_backward():
    from torch.nn import functional as F

    from seqlab.models.conv_seq2seq import GatedConvolution

    torch.manual_seed(0)
    for causal, k in [(True, 3), (False, 3), (False, 4), (True, 2)]:
        layer = GatedConvolution(6, k, causal).double()
        x = torch.randn(2, 9, 6, dtype=torch.float64, requires_grad=True)
        padding = (k - 1, 0) if causal else ((k - 1) // 2, k // 2)
        reference = F.glu(layer.conv(F.pad(x.transpose(1, 2), padding)), dim=1).transpose(1, 2)
        ours = layer(x)
        torch.testing.assert_close(ours, reference)
        weights = torch.randn_like(ours)
        grads = torch.autograd.grad((ours * weights).sum(), [x, layer.conv.weight, layer.conv.bias])
        expected = torch.autograd.grad((reference * weights).sum(), [x, layer.conv.weight, layer.conv.bias])
        for got, want in zip(grads, expected):
            torch.testing.assert_close(got, want)



def test_cache_reorder_follows_the_beams():
    """Beam search reorders the cache after each step (a row continues another row's prefix): the
    next step must then equal the whole reordered prefix recomputed."""
    m = model()
    src = torch.randint(1, 11, (1, 6)).repeat(3, 1)  # the beams of one sentence share its source
    tgt = torch.randint(4, 13, (3, 5))
    memory, mask = m.encode(src)
    cache = m.new_cache()
    m.decode(tgt[:, :4], memory, mask, cache)
    index = torch.tensor([2, 0, 0])
    cache.reorder(index)
    step = m.decode(tgt[index, 4:], memory, mask, cache)
    torch.testing.assert_close(step, m(src, tgt[index])[:, 4:], atol=1e-5, rtol=1e-5)
