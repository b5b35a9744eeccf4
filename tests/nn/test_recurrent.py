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


def cells_with_torchs_weights(kind):
    """Our cell of ``kind`` (input 5, hidden 6) holding the weights of a fresh torch cell, and that cell."""
    _, _, ours_cls, ref_cls = OURS[kind]
    ref, ours = ref_cls(5, 6), ours_cls(5, 6)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("kind", sorted(OURS))
def test_cells_equal_torch_cells(kind):
    ours, ref = cells_with_torchs_weights(kind)
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


# --- cells: unbatched input, the zero initial state, peepholes --------------------------------------

@pytest.mark.parametrize("kind", sorted(OURS))
def test_cells_start_from_zeros_and_take_unbatched_input_like_torch(kind):
    ours, ref = cells_with_torchs_weights(kind)
    x = torch.randn(3, 5)  # batch 3 ≠ input width 5
    for a, b in zip(as_list(ours(x)), as_list(ref(x))):  # no state given: torch starts from zeros
        assert a.shape == (3, 6)
        torch.testing.assert_close(a, b)
    # one unbatched vector (I,) with its state (H,): torch's cells accept it, and so do ours
    h = torch.randn(6)
    state = (h, torch.randn(6)) if kind == "lstm" else h
    for a, b in zip(as_list(ours(x[0], state)), as_list(ref(x[0], state))):
        assert a.shape == (6,)
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", sorted(OURS))
def test_cells_take_an_unbatched_input_without_a_state_like_torch(kind):
    ours, ref = cells_with_torchs_weights(kind)
    x = torch.randn(5)
    for a, b in zip(as_list(ours(x)), as_list(ref(x)), strict=True):
        assert a.shape == (6,)
        torch.testing.assert_close(a, b)


def peephole_lstm_reference(xs, h, c, w_ih, w_hh, b_ih, b_hh, p):
    """Gers & Schmidhuber (2000), one step at a time, gate by gate (torch's order i, f, g, o):
    i = σ(W_i x + U_i h + b_i + p_i ⊙ c_{t-1}), f = σ(… + p_f ⊙ c_{t-1}), g = tanh(…),
    c_t = f ⊙ c_{t-1} + i ⊙ g, o = σ(… + p_o ⊙ c_t), h_t = o ⊙ tanh(c_t).  xs: (T, B, I)."""
    H = h.size(-1)

    def gate(n, x, h):
        rows = slice(n * H, (n + 1) * H)
        return x @ w_ih[rows].T + h @ w_hh[rows].T + b_ih[rows] + b_hh[rows]

    outputs = []
    for x in xs:
        i = torch.sigmoid(gate(0, x, h) + p[0] * c)
        f = torch.sigmoid(gate(1, x, h) + p[1] * c)
        c = f * c + i * torch.tanh(gate(2, x, h))
        o = torch.sigmoid(gate(3, x, h) + p[2] * c)
        h = o * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs), h, c


def test_peephole_lstm_equals_gers_and_schmidhubers_equations():
    torch.manual_seed(0)
    cell, layer = LSTMCell(3, 4, peephole=True), LSTM(3, 4, peephole=True)
    with torch.no_grad():
        for module in (cell, layer):
            for param in module.parameters():
                param.normal_()  # peepholes, biases and weights all far from zero
        for ours, theirs in [("weight_ih", "weight_ih_l0"), ("weight_hh", "weight_hh_l0"),
                             ("bias_ih", "bias_ih_l0"), ("bias_hh", "bias_hh_l0"), ("peephole", "peephole_l0")]:
            getattr(cell, ours).copy_(getattr(layer, theirs))
    assert layer.peephole_l0.shape == (3, 4)  # p_i, p_f, p_o
    x, h, c = torch.randn(2, 5, 3), torch.randn(2, 4), torch.randn(2, 4)
    weights = [getattr(layer, f"{kind}_l0") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    outputs, h_n, c_n = peephole_lstm_reference(x.transpose(0, 1), h, c, *weights, layer.peephole_l0)
    for got, want in zip(cell(x[:, 0], (h, c)), peephole_lstm_reference(x[:, :1].transpose(0, 1), h, c,
                                                                        *weights, layer.peephole_l0)[1:]):
        torch.testing.assert_close(got, want)
    out, (h_last, c_last) = layer(x, state=(h[None], c[None]))
    torch.testing.assert_close(out, outputs.transpose(0, 1))
    torch.testing.assert_close(h_last[0], h_n)
    torch.testing.assert_close(c_last[0], c_n)


# --- initialisation ---------------------------------------------------------------------------------

def assert_uniform_within(values, bound):
    """Drawn from U(-bound, bound): inside it, and reaching close to both ends."""
    assert values.abs().max() <= bound
    assert values.min() < -0.9 * bound and values.max() > 0.9 * bound


@pytest.mark.parametrize("kind", sorted(OURS))
def test_default_initialisation_is_torchs_uniform_range(kind):
    # torch's RNN modules draw every weight and bias from U(-1/√H, 1/√H); so do our layers. Our cells
    # draw the weights from it and start the biases at zero.
    torch.manual_seed(0)
    ours_cls, ref_cls, cell_cls, _ = OURS[kind]
    H = 16
    layer = ours_cls(5, H, num_layers=2, bidirectional=True)
    for param in layer.parameters():
        assert param.abs().max() <= 1 / H ** 0.5
    assert_uniform_within(torch.cat([p.flatten() for p in layer.parameters()]), 1 / H ** 0.5)
    cell = cell_cls(5, H)
    assert_uniform_within(cell.weight_ih, 1 / H ** 0.5)
    assert_uniform_within(cell.weight_hh, 1 / H ** 0.5)
    assert cell.bias_ih.abs().sum() == 0 and cell.bias_hh.abs().sum() == 0
    # the defaults are torch's: one layer, one direction
    assert list(layer.__class__(5, H).state_dict()) == list(ref_cls(5, H).state_dict())


@pytest.mark.parametrize("make", [lambda: LSTM(64, 3), lambda: LSTMCell(64, 3), lambda: GRU(64, 3)],
                         ids=["lstm", "lstm-cell", "gru"])
def test_seed_004_initialisation_of_every_parameter(make):
    torch.manual_seed(0)
    module = init_recurrent(make(), forget_bias=2.5)
    lstm = isinstance(module, (LSTM, LSTMCell))
    for name, param in module.named_parameters():
        if name.startswith("weight_ih"):  # Glorot & Bengio (2010): U(±√(6 / (fan_in + fan_out)))
            assert_uniform_within(param, (6 / (param.size(0) + param.size(1))) ** 0.5)
        elif name.startswith("weight_hh"):  # each gate's (H, H) block orthogonal
            for block in param.split(3):
                torch.testing.assert_close(block @ block.T, torch.eye(3), atol=1e-5, rtol=1e-5)
        elif name.startswith("bias_ih") and lstm:  # i, f, g, o: only the forget gate's bias is set
            expected = torch.cat([torch.zeros(3), torch.full((3,), 2.5), torch.zeros(6)])
            torch.testing.assert_close(param.detach(), expected)
        else:
            assert param.abs().sum() == 0, name


# --- options -----------------------------------------------------------------------------------------

def test_invalid_options_are_refused_with_their_messages():
    with pytest.raises(ValueError, match=r"^peephole connections exist only in LSTMs$"):
        RNN(3, 4, peephole=True)
    with pytest.raises(ValueError, match=r"^torch's fused LSTM kernel has no peephole connections; use fused=False$"):
        LSTM(3, 4, peephole=True, fused=True)
    message = r"^num_layers must be at least 1 and dropout in \[0, 1\)$"
    for kwargs in ({"num_layers": 0}, {"dropout": 1.0}, {"dropout": -0.1}):
        with pytest.raises(ValueError, match=message):
            GRU(3, 4, **kwargs)
    GRU(3, 4, dropout=0.99)  # just below 1 is allowed


def test_fused_is_the_default_path_unless_peepholes_or_asked(monkeypatch):
    from seqlab.nn import recurrent

    calls = []
    real_step = recurrent.lstm_step
    monkeypatch.setattr(recurrent, "lstm_step", lambda *args: calls.append(1) or real_step(*args))
    x = torch.randn(2, 3, 3)
    for module, fused in [(LSTM(3, 4), True), (LSTM(3, 4, fused=True), True), (LSTM(3, 4, fused=False), False),
                          (LSTM(3, 4, peephole=True), False)]:
        calls.clear()
        module(x)
        assert module.fused is fused
        assert len(calls) == (0 if fused else 3)  # the step-wise path: one call a time step


@pytest.mark.parametrize("kind", sorted(OURS))
@pytest.mark.parametrize("fused", [True, False])
def test_lengths_in_any_order_and_all_shorter_than_the_padding(kind, fused):
    # The batch's sort order is no involution ([3, 6, 5, 1] sorts by [1, 2, 0, 3], undone by [2, 0, 1, 3]),
    # and every row is shorter than T = 8: the output keeps T steps, zero past each length.
    ours_cls, ref_cls, _, _ = OURS[kind]
    ref = ref_cls(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    ours = ours_cls(3, 4, num_layers=2, bidirectional=True, fused=fused)
    ours.load_state_dict(ref.state_dict())
    lengths = torch.tensor([3, 6, 5, 1])
    x = torch.randn(4, 8, 3) * (torch.arange(8)[None, :, None] < lengths[:, None, None])
    out, final = ours(x, lengths)
    ref_out, ref_final = torch_reference(ref, x, lengths, None)
    assert out.shape == (4, 8, 8)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(as_list(final), as_list(ref_final), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_lstm_without_lengths_returns_both_final_states(fused):
    ref = nn.LSTM(3, 4, batch_first=True)
    ours = LSTM(3, 4, fused=fused)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, 3)
    out, final = ours(x)
    ref_out, (h, c) = ref(x)
    assert isinstance(final, tuple) and len(final) == 2
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(final[0], h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(final[1], c, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(OURS))
def test_stepwise_dropout_between_layers_only_and_only_in_training(kind):
    """As torch's layers (and Zaremba et al. 2014): dropout with probability p on each layer's outputs
    except the last one's, in training mode only. The reference: torch's one-layer modules with the
    copied weights, and the same dropout draws (same seed) between them."""
    ours_cls, ref_cls, _, _ = OURS[kind]
    p, layers = 0.3, 3
    ours = ours_cls(3, 4, num_layers=layers, bidirectional=True, dropout=p, fused=False)
    x = torch.randn(2, 5, 3)
    singles = []
    for layer in range(layers):
        single = ref_cls(3 if layer == 0 else 8, 4, bidirectional=True, batch_first=True)
        single.load_state_dict({name.replace(f"_l{layer}", "_l0"): value for name, value in ours.state_dict().items()
                                if f"_l{layer}" in name})
        singles.append(single)

    torch.manual_seed(1)
    out, _ = ours.train()(x)
    torch.manual_seed(1)
    expected = x
    for layer, single in enumerate(singles):
        expected = single(expected)[0].contiguous()  # batch-first memory order, as the draws follow it
        if layer < layers - 1:
            expected = nn.functional.dropout(expected, p)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert (out != 0).all()  # the last layer's outputs are not dropped

    ref = ref_cls(3, 4, num_layers=layers, bidirectional=True, dropout=p, batch_first=True).eval()
    ref.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours.eval()(x)[0], ref(x)[0], atol=1e-5, rtol=1e-5)  # no dropout in eval


@pytest.mark.parametrize("lengths", [None, torch.tensor([5, 2])])
def test_stepwise_runs_on_the_inputs_device(lengths):
    # Meta tensors (shapes and devices, no data) stand in for an accelerator: every tensor the step-wise
    # path builds must be on x's device, lengths given on the CPU (as torch's packing wants them) included.
    module = LSTM(3, 4, bidirectional=True, fused=False).to("meta")
    out, (h, c) = module(torch.randn(2, 5, 3, device="meta"), lengths)
    assert out.device.type == h.device.type == c.device.type == "meta"
    assert out.shape == (2, 5, 8) and h.shape == c.shape == (2, 2, 4)
