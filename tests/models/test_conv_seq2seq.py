import pytest
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


def _glu_conv(layer, x, causal):
    """Gehring et al. 2017 §3.2 written out: a 1-D convolution over time (torch's F.conv1d), zero padded so
    the output keeps the input's length (causal: all k − 1 zeros on the left), then GLU: A ⊙ σ(B)."""
    k = layer.kernel_size
    left = k - 1 if causal else (k - 1) // 2
    padded = torch.nn.functional.pad(x.transpose(1, 2), (left, k - 1 - left))  # (B, C, T + k − 1)
    out = torch.nn.functional.conv1d(padded, layer.conv.weight, layer.conv.bias).transpose(1, 2)  # (B, T, 2C)
    a, b = out.chunk(2, dim=-1)
    return a * torch.sigmoid(b)


def _reference_logits(m, src, tgt):
    """ConvS2S forward written independently (Gehring et al. 2017 §3): residual blocks scaled by √0.5,
    attention whose values are the encoder output plus the source embedding, scores scaled by 1/√E."""
    half, E = 0.5 ** 0.5, m.config.embed_dim
    real = (src != m.pad_id).float().unsqueeze(-1)  # (B, S, 1)
    e = (m.src_embed.weight[src] + m.src_position.weight[torch.arange(src.size(1))]) * real
    x = (e @ m.encoder_in.weight.T + m.encoder_in.bias) * real
    for layer in m.encoder_layers:
        x = (_glu_conv(layer, x, causal=False) + x) * half * real
    z = (x @ m.encoder_out.weight.T + m.encoder_out.bias) * real
    values = (z + e) * half
    g = m.tgt_embed.weight[tgt] + m.tgt_position.weight[torch.arange(tgt.size(1))]
    h = g @ m.decoder_in.weight.T + m.decoder_in.bias
    for layer, lin_in, lin_out in zip(m.decoder_layers, m.attention_in, m.attention_out):
        c = _glu_conv(layer, h, causal=True)
        d = (c @ lin_in.weight.T + lin_in.bias + g) * half
        scores = d @ z.transpose(1, 2) / E ** 0.5
        scores = scores + torch.where(src != m.pad_id, 0.0, -1e9).unsqueeze(1)
        ctx = scores.softmax(-1) @ values @ lin_out.weight.T + lin_out.bias
        h = ((c + ctx) * half + h) * half
    out = h @ m.decoder_out.weight.T + m.decoder_out.bias
    return out @ m.generator.weight.T + m.generator.bias


def test_forward_equals_the_paper_written_out():
    torch.manual_seed(1)
    m = ConvSeq2Seq(ConvSeq2SeqConfig(11, 13, embed_dim=8, hidden_size=12, n_layers=2, kernel_size=3, dropout=0.0,
                                      max_len=16)).eval()
    with torch.no_grad():  # weights large enough that every term (scaling, residuals) shows in the logits
        for p in m.parameters():
            p.normal_(0, 0.5)
    src = torch.tensor([[3, 4, 5, 6, 7, 0, 0], [2, 9, 8, 1, 4, 5, 10]])
    tgt = torch.randint(1, 13, (2, 5))
    with torch.no_grad():
        torch.testing.assert_close(m(src, tgt), _reference_logits(m, src, tgt), atol=1e-4, rtol=1e-4)
        # an encoder position sees its right neighbour (not causal): changing the last source token changes
        # the attention keys at the position before it
        changed = src.clone()
        changed[1, -1] = 3
        (z, _), _ = m.encode(src)
        (z2, _), _ = m.encode(changed)
        assert not torch.allclose(z[1, -2], z2[1, -2])


def test_length_and_config_errors_name_the_numbers():
    m = model()  # max_len=16
    src = torch.randint(1, 11, (1, 4))
    m(src, torch.randint(1, 13, (1, 16)))  # exactly max_len is fine
    with pytest.raises(ValueError, match=r"sequence of length 17 is longer than max_len=16"):
        m(torch.randint(1, 11, (1, 17)), torch.randint(1, 13, (1, 3)))
    memory, mask = m.encode(src)
    cache = m.new_cache()
    m.decode(torch.randint(1, 13, (1, 10)), memory, mask, cache)
    with pytest.raises(ValueError, match=r"sequence of length 17 is longer than max_len=16"):
        m.decode(torch.randint(1, 13, (1, 7)), memory, mask, cache)
    ConvSeq2SeqConfig(3, 3, kernel_size=2, n_layers=1)  # the smallest allowed
    for bad in ({"kernel_size": 1}, {"n_layers": 0}):
        with pytest.raises(ValueError, match=r"^kernel_size must be at least 2 and n_layers at least 1$"):
            ConvSeq2SeqConfig(3, 3, **bad)
