"""Recurrent cells and layers: the models attention replaced (Elman 1990; Hochreiter & Schmidhuber 1997; Cho et al. 2014), gate by gate.

Parameter names and shapes are torch's (``weight_ih_l0``, ``weight_hh_l0_reverse``, gates stacked in
torch's order: LSTM i, f, g, o; GRU r, z, n), so a ``state_dict`` loads both ways between these layers
and ``torch.nn.RNN`` / ``LSTM`` / ``GRU``. Without custom features the layers run through torch's fused
kernels; ``fused=False`` runs the same equations step by step in Python (slower, inspectable), and is
the only path for peephole LSTMs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

GATES = {"RNN_TANH": 1, "LSTM": 4, "GRU": 3}


# --- one time step, as in the equations ---------------------------------------------------------

def rnn_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> Tensor:
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).  x: (B, I), h: (B, H)."""
    return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)


def lstm_step(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
              peephole: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """i = σ(W_i x + U_i h + b_i), f = σ(…), c̃ = tanh(…), o = σ(…);
    c_t = f ⊙ c_{t-1} + i ⊙ c̃, h_t = o ⊙ tanh(c_t).
    Peephole (Gers & Schmidhuber, 2000): i and f also see c_{t-1}, o sees c_t; peephole: (3, H)."""
    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh  # (B, 4H): i, f, g, o
    i, f, g, o = gates.chunk(4, dim=-1)
    if peephole is not None:
        i, f = i + peephole[0] * c, f + peephole[1] * c
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    if peephole is not None:
        o = o + peephole[2] * c_next
    return torch.sigmoid(o) * torch.tanh(c_next), c_next


def gru_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> Tensor:
    """r = σ(W_r x + U_r h), z = σ(W_z x + U_z h), h̃ = tanh(W_n x + r ⊙ (U_n h + b_hn)),
    h_t = (1 − z) ⊙ h̃ + z ⊙ h_{t-1}."""
    x_r, x_z, x_n = (x @ w_ih.T + b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    candidate = torch.tanh(x_n + r * h_n)
    return (1 - z) * candidate + z * h


# --- cells ------------------------------------------------------------------------------------

class _Cell(nn.Module):
    """One step of a recurrent layer; an unbatched x (I,) with state (H,) works as in torch's cells."""

    def __init__(self, input_size: int, hidden_size: int, gates: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.zeros(gates * hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(gates * hidden_size))
        bound = 1 / math.sqrt(hidden_size)
        for weight in (self.weight_ih, self.weight_hh):
            nn.init.uniform_(weight, -bound, bound)

    def _zeros(self, x: Tensor) -> Tensor:
        """The initial state: zeros (B, H), or (H,) for an unbatched x (I,) as torch's cells take."""
        return x.new_zeros(*x.shape[:-1], self.hidden_size)


class RNNCell(_Cell):
    """Elman's simple recurrent cell. forward(x (B, I), h (B, H) | None) -> h (B, H)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size, 1)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        h = self._zeros(x) if h is None else h
        return rnn_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class LSTMCell(_Cell):
    """forward(x (B, I), (h, c) | None) -> (h, c), each (B, H)."""

    def __init__(self, input_size: int, hidden_size: int, peephole: bool = False) -> None:
        super().__init__(input_size, hidden_size, 4)
        self.peephole = nn.Parameter(torch.zeros(3, hidden_size)) if peephole else None

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        h, c = state if state is not None else (self._zeros(x), self._zeros(x))
        return lstm_step(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.peephole)


class GRUCell(_Cell):
    """forward(x (B, I), h (B, H) | None) -> h (B, H)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size, 3)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        h = self._zeros(x) if h is None else h
        return gru_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


# --- layers -----------------------------------------------------------------------------------

class _Recurrent(nn.Module):
    """Stacked, optionally bidirectional recurrent layer over batch-first (B, T, I) input."""

    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, fused: bool | None = None, peephole: bool = False) -> None:
        super().__init__()
        if peephole and self.mode != "LSTM":
            raise ValueError("peephole connections exist only in LSTMs")
        if peephole and fused:
            raise ValueError("torch's fused LSTM kernel has no peephole connections; use fused=False")
        if num_layers < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError("num_layers must be at least 1 and dropout in [0, 1)")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout = bidirectional, dropout
        self.fused = not peephole if fused is None else fused
        self.directions = 2 if bidirectional else 1
        gates = GATES[self.mode]
        bound = 1 / math.sqrt(hidden_size)
        self._weight_names: list[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.directions
            for suffix in ("", "_reverse")[: self.directions]:
                shapes = {"weight_ih": (gates * hidden_size, layer_input),
                          "weight_hh": (gates * hidden_size, hidden_size),
                          "bias_ih": (gates * hidden_size,), "bias_hh": (gates * hidden_size,)}
                for kind, shape in shapes.items():
                    name = f"{kind}_l{layer}{suffix}"
                    self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))
                    self._weight_names.append(name)
                if peephole:
                    self.register_parameter(f"peephole_l{layer}{suffix}", nn.Parameter(torch.zeros(3, hidden_size)))
        self.peephole = peephole

    def _weights(self, layer: int, suffix: str) -> list[Tensor]:
        return [getattr(self, f"{kind}_l{layer}{suffix}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def forward(self, x: Tensor, lengths: Tensor | None = None, state=None):
        """x: (B, T, I); lengths: (B,) real lengths (padding after them is ignored);
        state: h0 (L·dirs, B, H), or (h0, c0) for LSTM.
        Returns output (B, T, dirs·H), zero past each length, and the final state at each length."""
        B, T, _ = x.shape
        shape = (self.num_layers * self.directions, B, self.hidden_size)
        if state is None:
            zeros = x.new_zeros(shape)
            state = (zeros, zeros) if self.mode == "LSTM" else zeros
        if self.fused:
            return self._fused(x, lengths, state)
        return self._stepwise(x, lengths, state)

    def _fused(self, x: Tensor, lengths: Tensor | None, state):
        kernel = {"RNN_TANH": torch._VF.rnn_tanh, "LSTM": torch._VF.lstm, "GRU": torch._VF.gru}[self.mode]
        weights = [getattr(self, name) for name in self._weight_names]
        if lengths is None:
            result = kernel(x, state, weights, True, self.num_layers, self.dropout, self.training,
                            self.bidirectional, True)
            return result[0], (result[1], result[2]) if self.mode == "LSTM" else result[1]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        order = packed.sorted_indices
        hx = tuple(s.index_select(1, order) for s in state) if self.mode == "LSTM" else state.index_select(1, order)
        result = kernel(packed.data, packed.batch_sizes, hx, weights, True, self.num_layers, self.dropout,
                        self.training, self.bidirectional)
        out = PackedSequence(result[0], packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        output, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        restore = packed.unsorted_indices
        if self.mode == "LSTM":
            return output, (result[1].index_select(1, restore), result[2].index_select(1, restore))
        return output, result[1].index_select(1, restore)

    def _stepwise(self, x: Tensor, lengths: Tensor | None, state):
        B, T, _ = x.shape
        lengths = torch.full((B,), T, device=x.device) if lengths is None else lengths.to(x.device)
        steps = torch.arange(T, device=x.device)
        valid = steps[None, :] < lengths[:, None]  # (B, T)
        # Reading a row backwards within its own length: position t <-> length-1-t (an involution).
        reverse_index = torch.where(valid, lengths[:, None] - 1 - steps, steps)
        h0, c0 = state if self.mode == "LSTM" else (state, None)
        finals_h, finals_c = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(("", "_reverse")[: self.directions]):
                index = layer * self.directions + direction
                seq = layer_input
                if direction == 1:
                    seq = seq.gather(1, reverse_index[..., None].expand_as(seq))
                out, h, c = self._run(seq, valid, h0[index], None if c0 is None else c0[index], layer, suffix)
                if direction == 1:
                    out = out.gather(1, reverse_index[..., None].expand_as(out))
                outputs.append(out)
                finals_h.append(h)
                finals_c.append(c)
            layer_input = torch.cat(outputs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = nn.functional.dropout(layer_input, self.dropout)
        h_n = torch.stack(finals_h)
        return layer_input, ((h_n, torch.stack(finals_c)) if self.mode == "LSTM" else h_n)

    def _run(self, seq: Tensor, valid: Tensor, h: Tensor, c: Tensor | None, layer: int, suffix: str):
        weights = self._weights(layer, suffix)
        peephole = getattr(self, f"peephole_l{layer}{suffix}") if self.peephole else None
        outputs = []
        for t in range(seq.size(1)):
            keep = valid[:, t : t + 1]  # past a row's length its state stays as it was
            if self.mode == "LSTM":
                h_new, c_new = lstm_step(seq[:, t], h, c, *weights, peephole)
                c = torch.where(keep, c_new, c)
            elif self.mode == "GRU":
                h_new = gru_step(seq[:, t], h, *weights)
            else:
                h_new = rnn_step(seq[:, t], h, *weights)
            h = torch.where(keep, h_new, h)
            outputs.append(torch.where(keep, h_new, torch.zeros_like(h_new)))
        return torch.stack(outputs, dim=1), h, c


class RNN(_Recurrent):
    """Simple (Elman) recurrent layer with tanh."""

    mode = "RNN_TANH"


class LSTM(_Recurrent):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997); ``peephole=True`` for Gers' variant."""

    mode = "LSTM"


class GRU(_Recurrent):
    """Gated recurrent unit (Cho et al., 2014)."""

    mode = "GRU"


def init_recurrent(module: nn.Module, forget_bias: float = 1.0) -> nn.Module:
    """Seed 004's initialisation: Xavier for input weights, orthogonal recurrent weights (each gate's
    block separately, so repeated products neither explode nor vanish), zero biases, and the LSTM
    forget-gate bias at ``forget_bias`` so that memory is kept by default early in training."""
    for name, param in module.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(param)
        elif name.startswith("weight_hh"):
            hidden = param.size(1)
            for block in param.data.split(hidden, dim=0):
                nn.init.orthogonal_(block)
        elif name.startswith("bias"):
            nn.init.zeros_(param)
            lstm = isinstance(module, (LSTM, LSTMCell))
            if lstm and name.startswith("bias_ih"):
                hidden = param.size(0) // 4
                param.data[hidden : 2 * hidden] = forget_bias
    return module
