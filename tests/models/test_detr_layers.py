"""DETR's sine encodings against the paper's code (``PositionEmbeddingSine``, normalize=True) written out
here in float64."""

import math

import pytest
import torch

from seqlab.models.detr_layers import grid_positions, sine_encoding

from torch_reference import copy_attention  # tests/ is on sys.path (its conftest)


def papers_sine(h: int, w: int, n: int, temperature: float = 10000.0) -> torch.Tensor:
    """DETR's models/position_encoding.py for one unpadded h×w map, float64: y and x cumulative indices
    normalised by the last one + 1e-6, times 2π; -> (h·w, 2n), the n row features first."""
    y_embed = torch.arange(1, h + 1, dtype=torch.float64)[:, None].expand(h, w)
    x_embed = torch.arange(1, w + 1, dtype=torch.float64)[None, :].expand(h, w)
    y_embed = y_embed / (y_embed[-1:, :] + 1e-6) * 2 * math.pi
    x_embed = x_embed / (x_embed[:, -1:] + 1e-6) * 2 * math.pi
    dim_t = torch.arange(n, dtype=torch.float64)
    dim_t = temperature ** (2 * (dim_t // 2) / n)
    pos_x, pos_y = x_embed[:, :, None] / dim_t, y_embed[:, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, 0::2].sin(), pos_x[:, :, 1::2].cos()), dim=3).flatten(2)
    pos_y = torch.stack((pos_y[:, :, 0::2].sin(), pos_y[:, :, 1::2].cos()), dim=3).flatten(2)
    return torch.cat((pos_y, pos_x), dim=2).view(h * w, 2 * n)


@pytest.mark.parametrize("h, w", [(1, 1), (2, 3), (4, 2)])
def test_grid_positions_are_the_papers_code_to_float32_precision(h, w):
    # the 1e-6 in the normalisation moves the last row's and column's angle 2π by ~1.3e-5: within reach
    pe = grid_positions(h, w, 8)
    assert pe.dtype == torch.float32 and pe.shape == (h * w, 8)
    torch.testing.assert_close(pe.double(), papers_sine(h, w, 4), atol=3e-6, rtol=0)


def test_sine_encoding_frequencies_use_the_temperature():
    # at a large coordinate the frequency temperature^(2i/n) is read to 1e-4: 250·2π/100 = 15.7 rad
    coords = torch.tensor([[250.0, 0.25]])
    i = torch.arange(4, dtype=torch.float64)
    for temperature, kwargs in ((10000.0, {}), (20.0, {"temperature": 20.0})):
        angles = coords.double()[..., None] * 2 * math.pi / temperature ** (2 * (i // 2) / 4)
        expected = torch.where(i % 2 == 0, angles.sin(), angles.cos()).flatten(-2)
        torch.testing.assert_close(sine_encoding(coords, 4, **kwargs).double(), expected, atol=3e-4, rtol=0)


def test_odd_feature_counts_are_refused():
    with pytest.raises(ValueError, match="^n_features must be even, got 5$"):
        sine_encoding(torch.zeros(2, 2), 5)
    with pytest.raises(ValueError, match="^n_features must be even, got 3$"):  # d_model / 2 per coordinate
        grid_positions(2, 2, 6)


def test_positions_may_be_left_out_and_weights_come_back_only_when_asked():
    from torch import nn

    from seqlab.models.detr_layers import DETRDecoderLayer, DETREncoderLayer
    from seqlab.nn import MultiHeadAttention, PositionwiseFeedForward

    torch.manual_seed(0)
    D, H = 8, 2
    encoder = DETREncoderLayer(MultiHeadAttention(D, H), PositionwiseFeedForward(D, 16), nn.LayerNorm(D),
                               nn.LayerNorm(D), dropout=0.0)
    decoder = DETRDecoderLayer(MultiHeadAttention(D, H), MultiHeadAttention(D, H), PositionwiseFeedForward(D, 16),
                               nn.LayerNorm(D), nn.LayerNorm(D), nn.LayerNorm(D), dropout=0.0)
    theirs_enc = nn.TransformerEncoderLayer(D, H, 16, dropout=0.0, batch_first=True).eval()
    theirs_dec = nn.TransformerDecoderLayer(D, H, 16, dropout=0.0, batch_first=True).eval()
    with torch.no_grad():
        for ours, theirs, pairs in ((encoder, theirs_enc, [("self_attn", "self_attn")]),
                                    (decoder, theirs_dec, [("self_attn", "self_attn"), ("cross_attn", "multihead_attn")])):
            for mine, torchs in pairs:
                a, b = getattr(ours, mine), getattr(theirs, torchs)
                copy_attention(a, b)
            theirs.linear1.load_state_dict(ours.ff.linear1.state_dict())
            theirs.linear2.load_state_dict(ours.ff.linear2.state_dict())
            for name in ("norm1", "norm2", "norm3"):
                if hasattr(theirs, name):
                    getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())
    x, memory = torch.randn(2, 5, D), torch.randn(2, 6, D)
    out, weights = encoder(x)  # no positions: the plain post-LN layer
    assert weights is None
    torch.testing.assert_close(out, theirs_enc(x))
    out, weights = decoder(x, memory)
    assert weights is None
    torch.testing.assert_close(out, theirs_dec(x, memory))


def test_encodings_are_made_on_the_device_of_their_input():
    # the meta device stands for an accelerator: a table made on the CPU could not meet a meta tensor
    assert grid_positions(2, 3, 8, device=torch.device("meta")).device.type == "meta"
    assert sine_encoding(torch.zeros(3, 2, device="meta"), 4).device.type == "meta"
