"""Positional information against the papers' formulas written out here: the sinusoidal encoding of
Vaswani et al. 2017 §3.5 and the rotary embedding of Su et al. 2021 (RoFormer, eq. 34), at positions in
the precomputed table and past it."""

import math

import pytest
import torch
from torch import nn

from seqlab.nn import LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding, sinusoidal_table


def sinusoid(pos: int, d: int) -> list[float]:
    """§3.5: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)), in float64."""
    row = []
    for i in range(d // 2):
        angle = pos / 10000 ** (2 * i / d)
        row += [math.sin(angle), math.cos(angle)]
    return row


def sinusoids(positions, d: int) -> torch.Tensor:
    return torch.tensor([sinusoid(p, d) for p in positions], dtype=torch.float64)


def test_sinusoidal_table_is_the_formula_from_position_zero_and_at_an_offset():
    d = 8
    torch.testing.assert_close(sinusoidal_table(5, d).double(), sinusoids(range(5), d), atol=1e-7, rtol=0)
    # Far positions: the angles need float64 wavelengths (float32 ones are off by ~1e-4 here).
    far = range(9995, 10001)
    torch.testing.assert_close(sinusoidal_table(6, d, offset=9995).double(), sinusoids(far, d), atol=1e-6, rtol=0)


def test_sinusoidal_encoding_adds_the_formula_at_any_offset():
    d = 6
    pe = SinusoidalPositionalEncoding(d, max_len=10)
    x = torch.randn(2, 4, d, dtype=torch.float64)
    torch.testing.assert_close(pe(x), x + sinusoids(range(4), d), atol=1e-7, rtol=0)
    torch.testing.assert_close(pe(x, offset=5), x + sinusoids(range(5, 9), d), atol=1e-7, rtol=0)
    torch.testing.assert_close(pe(x, offset=8), x + sinusoids(range(8, 12), d), atol=1e-7, rtol=0)  # past max_len


def test_sinusoidal_encoding_past_a_table_shorter_than_the_width():
    pe = SinusoidalPositionalEncoding(16, max_len=4)
    torch.testing.assert_close(pe.encoding(10).double(), sinusoids(range(10), 16), atol=1e-7, rtol=0)


def test_sinusoidal_encoding_keeps_the_input_dtype():
    pe = SinusoidalPositionalEncoding(8, max_len=16)
    x = torch.randn(2, 5, 8).bfloat16()
    out = pe(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), x.double() + sinusoids(range(5), 8), atol=0.05, rtol=0.02)


def test_sinusoidal_table_covers_1024_positions_and_stays_out_of_checkpoints():
    pe = SinusoidalPositionalEncoding(8)
    assert pe.table.shape == (1024, 8)
    assert "table" not in pe.state_dict()  # a function of d_model: nothing to save or load


def test_sinusoidal_positions_past_the_table_land_on_the_tables_device():
    # The meta device stands in for an accelerator: a tensor left on the CPU would not add to it.
    pe = SinusoidalPositionalEncoding(8, max_len=4).to("meta")
    assert pe(torch.zeros(1, 6, 8, device="meta")).device.type == "meta"


def test_learned_positions_add_the_embedding_rows_at_the_offset():
    pe = LearnedPositionalEmbedding(10, 8)
    x = torch.randn(2, 3, 8)
    expected = x + nn.functional.embedding(torch.arange(4, 7), pe.embedding.weight)
    torch.testing.assert_close(pe(x, offset=4), expected)


def test_learned_positions_start_small():
    # N(0, 0.02²), the initialisation of GPT (Radford et al. 2018 §4.1) that GPT-2 and BERT kept.
    weight = LearnedPositionalEmbedding(1024, 64).embedding.weight
    assert abs(weight.mean().item()) < 0.002
    assert 0.019 < weight.std().item() < 0.021


def roformer(x: torch.Tensor, position: int, base: float = 10000.0) -> torch.Tensor:
    """Su et al. 2021 eq. 34 on one vector x (d,): each pair (x_2i, x_2i+1) rotated by position·θ_i,
    θ_i = base^(-2i/d), in float64, channel by channel."""
    d = x.numel()
    out = x.double().clone()
    for i in range(d // 2):
        angle = position * base ** (-2 * i / d)
        a, b = x[2 * i].item(), x[2 * i + 1].item()
        out[2 * i] = a * math.cos(angle) - b * math.sin(angle)
        out[2 * i + 1] = a * math.sin(angle) + b * math.cos(angle)
    return out


def reference_rotary(x: torch.Tensor, offset: int = 0, base: float = 10000.0) -> torch.Tensor:
    """seqlab pairs channel i with channel i + d/2 (the "rotate half" layout of GPT-NeoX and LLaMA): the
    paper's rotation after interleaving the halves, (x_0, x_d/2, x_1, x_d/2+1, …), and undoing it."""
    d = x.size(-1)
    interleave = torch.stack([torch.arange(d // 2), torch.arange(d // 2) + d // 2], dim=1).flatten()
    out = torch.empty(x.shape, dtype=torch.float64)
    for index in torch.cartesian_prod(*(torch.arange(n) for n in x.shape[:-1])).view(-1, x.dim() - 1):
        index = tuple(index.tolist())
        out[index][interleave] = roformer(x[index][interleave], offset + index[-1], base)
    return out


@pytest.mark.parametrize("offset", [0, 9, 14, 3000])  # in the table, at its end, across it, far past it
def test_rotary_embedding_is_roformers_rotation(offset):
    torch.manual_seed(0)
    rope = RotaryEmbedding(8, max_len=16)
    x = torch.randn(2, 3, 5, 8, dtype=torch.float64)  # (B, H, T, d_head), H != T
    out = rope(x, offset) if offset else rope(x)
    torch.testing.assert_close(out, reference_rotary(x, offset), atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", [(5, 8), (2, 5, 8)])  # one sequence (T, d), or (B, T, d) without a head axis
def test_rotary_embedding_rotates_along_the_second_last_axis_of_any_input(shape):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(RotaryEmbedding(8, max_len=16)(x, 2), reference_rotary(x, 2), atol=1e-6, rtol=0)


def test_rotary_embedding_with_another_base_and_a_table_shorter_than_the_width():
    torch.manual_seed(0)
    rope = RotaryEmbedding(16, max_len=4, base=500.0)
    x = torch.randn(1, 2, 6, 16, dtype=torch.float64)
    torch.testing.assert_close(rope(x), reference_rotary(x, 0, base=500.0), atol=1e-6, rtol=0)


def test_rotary_default_base_and_table():
    rope = RotaryEmbedding(8)
    assert rope.cos.shape == rope.sin.shape == (1024, 4)
    assert rope.state_dict() == {}  # the tables are functions of d_head: nothing to save or load
    x = torch.randn(1, 1, 3, 8, dtype=torch.float64)
    torch.testing.assert_close(rope(x, 1000), reference_rotary(x, 1000), atol=1e-6, rtol=0)


def test_rotary_scores_depend_only_on_the_distance():
    """RoFormer §3.4.2: (R_m q)·(R_n k) = q·R_{n-m} k, whatever m; checked for m in the table and past it."""
    torch.manual_seed(0)
    rope = RotaryEmbedding(8, max_len=32)
    q, k = torch.randn(1, 1, 1, 8, dtype=torch.float64), torch.randn(1, 1, 1, 8, dtype=torch.float64)
    for distance in (-3, 0, 5):
        if distance >= 0:
            expected = (q * reference_rotary(k, distance)).sum()  # q·R_{n-m} k
        else:
            expected = (reference_rotary(q, -distance) * k).sum()  # (R_{m-n} q)·k
        for m in (4, 20, 31, 500):
            score = (rope(q, m) * rope(k, m + distance)).sum()
            torch.testing.assert_close(score, expected, atol=1e-5, rtol=0, msg=f"m={m}, n-m={distance}")


def test_rotary_embedding_keeps_the_input_dtype():
    rope = RotaryEmbedding(8, max_len=8)
    x = torch.randn(2, 2, 4, 8).bfloat16()
    for offset in (0, 6):  # from the table, and computed past it
        out = rope(x, offset)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.double(), reference_rotary(x.double(), offset), atol=0.05, rtol=0.02)


def test_rotary_positions_past_the_table_land_on_the_inputs_device():
    rope = RotaryEmbedding(8, max_len=4).to("meta")
    assert rope(torch.zeros(1, 2, 3, 8, device="meta"), 6).device.type == "meta"


@pytest.mark.parametrize("width", [3, 5])
def test_rotary_embedding_refuses_an_odd_width(width):
    with pytest.raises(ValueError, match=f"even head width; got {width}"):
        RotaryEmbedding(width)
