import pytest
import torch
from torch import nn

from seqlab.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, init_recurrent

OURS = {"rnn": (RNN, nn.RNN, RNNCell, nn.RNNCell), "lstm": (LSTM, nn.LSTM, LSTMCell, nn.LSTMCell),
        "gru": (GRU, nn.GRU, GRUCell, nn.GRUCell)}


def padded_batch(B=4, T=7, I=5):
    x = torch.randn(B, T, I)
    lengths = torch.tensor([7, 3, 5, 1])[:B]
    x = x * (torch.arange(T)[None, :, None] < lengths[:, None, None])
    return x, lengths


def torch_reference(ref, x, lengths, state):
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = ref(packed, state)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, final


@pytest.mark.parametrize("kind", sorted(OURS))
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_layers_equal_torch_with_copied_weights(kind, fused, layers, bidirectional):
    ours_cls, ref_cls, _, _ = OURS[kind]
    torch.manual_seed(0)
    ref = ref_cls(5, 6, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    ours = ours_cls(5, 6, num_layers=layers, bidirectional=bidirectional, fused=fused)
    ours.load_state_dict(ref.state_dict())  # same keys, same shapes
    mine, theirs = ours.state_dict(), ref.state_dict()
    assert list(mine) == list(theirs)  # torch's names in torch's order: checkpoints load both ways
    assert all(mine[name].equal(theirs[name]) for name in theirs)
    x, lengths = padded_batch()
    dirs = 2 if bidirectional else 1
    h0 = torch.randn(layers * dirs, 4, 6)
    state = (h0, torch.randn_like(h0)) if kind == "lstm" else h0
    out, final = ours(x, lengths, state)
    ref_out, ref_final = torch_reference(ref, x, lengths, state)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(final if kind == "lstm" else [final], ref_final if kind == "lstm" else [ref_final]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # Unpadded input, no lengths: the plain path.
    out, _ = ours(x[:1])
    torch.testing.assert_close(out, ref(x[:1])[0], atol=1e-5, rtol=1e-5)


def as_list(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("kind", sorted(OURS))
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("padded", [True, False])
def test_gradients_equal_torch(kind, fused, layers, bidirectional, padded):
    # Outputs and final states under one random loss; the gradients of every weight and bias, of the
    # input and of the initial state must be torch's (padded rows: through packed sequences).
    ours_cls, ref_cls, _, _ = OURS[kind]
    ref = ref_cls(3, 4, num_layers=layers, batch_first=True, bidirectional=bidirectional)
    ours = ours_cls(3, 4, num_layers=layers, bidirectional=bidirectional, fused=fused)
    ours.load_state_dict(ref.state_dict())
    x, lengths = padded_batch(I=3)
    x.requires_grad_()
    lengths = lengths if padded else None
    h0 = torch.randn(layers * (2 if bidirectional else 1), 4, 4, requires_grad=True)
    state = (h0, torch.randn_like(h0, requires_grad=True)) if kind == "lstm" else h0
    inputs = [x, *as_list(state)]
    out, final = ours(x, lengths, state)
    ref_out, ref_final = torch_reference(ref, x, lengths, state) if padded else ref(x, state)
    for a, b in zip((out, *as_list(final)), (ref_out, *as_list(ref_final))):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    targets = [torch.randn_like(t) for t in (out, *as_list(final))]
    losses = [sum((t * w).sum() for t, w in zip((o, *as_list(f)), targets))
              for o, f in ((out, final), (ref_out, ref_final))]
    grads = [torch.autograd.grad(loss, [*inputs, *module.parameters()])
             for loss, module in zip(losses, (ours, ref))]
    names = [f"input {i}" for i in range(len(inputs))] + [name for name, _ in ours.named_parameters()]
    assert names[len(inputs):] == [name for name, _ in ref.named_parameters()]
    for name, a, b in zip(names, *grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("kind", sorted(OURS))
def test_cells_equal_torch_cells(kind):
    _, _, ours_cls, ref_cls = OURS[kind]
    ref = ref_cls(5, 6)
    ours = ours_cls(5, 6)
    ours.load_state_dict(ref.state_dict())
    x, h = torch.randn(3, 5), torch.randn(3, 6)
    if kind == "lstm":
        c = torch.randn(3, 6)
        for a, b in zip(ours(x, (h, c)), ref(x, (h, c))):
            torch.testing.assert_close(a, b)
    else:
        torch.testing.assert_close(ours(x, h), ref(x, h))


def test_peephole_lstm_differs_only_through_peepholes():
    plain, peep = LSTM(3, 4, fused=False), LSTM(3, 4, peephole=True)
    peep.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(peep(x)[0], plain(x)[0])  # zero peepholes = plain LSTM
    with torch.no_grad():
        peep.peephole_l0.fill_(0.5)
    assert not torch.allclose(peep(x)[0], plain(x)[0])
    cell = LSTMCell(3, 4, peephole=True)
    assert cell.peephole.shape == (3, 4)


def test_incompatible_options_are_refused():
    with pytest.raises(ValueError, match="fused"):
        LSTM(3, 4, peephole=True, fused=True)
    with pytest.raises(ValueError, match="only in LSTMs"):
        GRU(3, 4, peephole=True)


def test_seed_004_initialisation():
    lstm = init_recurrent(LSTM(3, 4))
    torch.testing.assert_close(lstm.bias_ih_l0[4:8], torch.ones(4))
    assert lstm.bias_hh_l0.abs().sum() == 0
    block = lstm.weight_hh_l0[:4]
    torch.testing.assert_close(block @ block.T, torch.eye(4), atol=1e-5, rtol=1e-5)
