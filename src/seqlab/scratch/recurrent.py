"""RNN, LSTM and GRU layers over a whole sequence, forward and backward (BPTT), in NumPy.

Shapes: x (B, T, I), h0 / c0 (B, H), outputs hs (B, T, H). Parameters are a dict with torch's names and
layouts: weight_ih (G·H, I), weight_hh (G·H, H), bias_ih, bias_hh (G·H,), gates in torch's order
(LSTM i, f, g, o; GRU r, z, n). Each forward returns a cache; the matching backward takes the
gradients of the loss with respect to every output and returns those of the inputs and parameters.
"""

from __future__ import annotations

import numpy as np

Params = dict[str, np.ndarray]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * a) + 1.0)  # the same function, without overflow for large |a|


def init_params(kind: str, input_size: int, hidden_size: int, rng: np.random.Generator,
                dtype=np.float64, forget_bias: float = 1.0) -> Params:
    """Seed 004's initialisation: Xavier input weights, orthogonal recurrent blocks, forget bias 1."""
    gates = GATES[kind]
    limit = np.sqrt(6.0 / (input_size + hidden_size))
    weight_hh = np.concatenate([np.linalg.qr(rng.standard_normal((hidden_size, hidden_size)))[0]
                                for _ in range(gates)])
    params = {"weight_ih": rng.uniform(-limit, limit, (gates * hidden_size, input_size)),
              "weight_hh": weight_hh,
              "bias_ih": np.zeros(gates * hidden_size), "bias_hh": np.zeros(gates * hidden_size)}
    if kind == "lstm":
        params["bias_ih"][hidden_size : 2 * hidden_size] = forget_bias
    return {k: v.astype(dtype) for k, v in params.items()}


def _zero_grads(params: Params) -> Params:
    return {k: np.zeros_like(v) for k, v in params.items()}


def _accumulate(grads: Params, x_t, h_prev, d_input, d_hidden) -> None:
    """Add one step's weight gradients: d_input/d_hidden are the gradients of the two projections."""
    grads["weight_ih"] += d_input.T @ x_t
    grads["bias_ih"] += d_input.sum(0)
    grads["weight_hh"] += d_hidden.T @ h_prev
    grads["bias_hh"] += d_hidden.sum(0)


# --- simple RNN ---------------------------------------------------------------------------------

def rnn_forward(x: np.ndarray, h0: np.ndarray, p: Params):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    hs, h = [], h0
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])
        hs.append(h)
    hs = np.stack(hs, 1)
    return hs, (x, h0, hs, p)


def rnn_backward(d_hs: np.ndarray, d_h_last: np.ndarray, cache):
    """d_hs: (B, T, H) gradient at every output; d_h_last: (B, H) at the final state."""
    x, h0, hs, p = cache
    grads, dx = _zero_grads(p), np.zeros_like(x)
    d_next = d_h_last.copy()
    for t in reversed(range(x.shape[1])):
        h_prev = hs[:, t - 1] if t > 0 else h0
        d_a = (d_hs[:, t] + d_next) * (1.0 - hs[:, t] ** 2)  # through tanh
        _accumulate(grads, x[:, t], h_prev, d_a, d_a)
        dx[:, t] = d_a @ p["weight_ih"]
        d_next = d_a @ p["weight_hh"]
    return dx, d_next, grads


# --- LSTM -----------------------------------------------------------------------------------------

def lstm_forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, p: Params):
    """c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)."""
    H = h0.shape[1]
    h, c = h0, c0
    hs, cs, gates = [], [], []
    for t in range(x.shape[1]):
        z = x[:, t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        i, f, o = sigmoid(z[:, :H]), sigmoid(z[:, H : 2 * H]), sigmoid(z[:, 3 * H :])
        g = np.tanh(z[:, 2 * H : 3 * H])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h), cs.append(c), gates.append((i, f, g, o))
    hs, cs = np.stack(hs, 1), np.stack(cs, 1)
    return hs, cs, (x, h0, c0, hs, cs, gates, p)


def lstm_backward(d_hs: np.ndarray, d_h_last: np.ndarray, d_c_last: np.ndarray, cache):
    x, h0, c0, hs, cs, gates, p = cache
    grads, dx = _zero_grads(p), np.zeros_like(x)
    d_h_next, d_c_next = d_h_last.copy(), d_c_last.copy()
    for t in reversed(range(x.shape[1])):
        i, f, g, o = gates[t]
        h_prev = hs[:, t - 1] if t > 0 else h0
        c_prev = cs[:, t - 1] if t > 0 else c0
        tanh_c = np.tanh(cs[:, t])
        d_h = d_hs[:, t] + d_h_next
        d_c = d_c_next + d_h * o * (1.0 - tanh_c**2)
        d_z = np.concatenate([d_c * g * i * (1 - i),          # input gate
                              d_c * c_prev * f * (1 - f),     # forget gate
                              d_c * i * (1 - g**2),           # candidate
                              d_h * tanh_c * o * (1 - o)], 1)  # output gate
        _accumulate(grads, x[:, t], h_prev, d_z, d_z)
        dx[:, t] = d_z @ p["weight_ih"]
        d_h_next, d_c_next = d_z @ p["weight_hh"], d_c * f
    return dx, d_h_next, d_c_next, grads


# --- GRU ------------------------------------------------------------------------------------------

def gru_forward(x: np.ndarray, h0: np.ndarray, p: Params):
    """r, z = σ(·), n = tanh(W_n x + b_in + r ⊙ (U_n h + b_hn)), h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}."""
    H = h0.shape[1]
    h, hs, steps = h0, [], []
    for t in range(x.shape[1]):
        gx = x[:, t] @ p["weight_ih"].T + p["bias_ih"]
        gh = h @ p["weight_hh"].T + p["bias_hh"]
        r = sigmoid(gx[:, :H] + gh[:, :H])
        z = sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])
        n = np.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1 - z) * n + z * h
        hs.append(h), steps.append((r, z, n, gh[:, 2 * H :]))
    hs = np.stack(hs, 1)
    return hs, (x, h0, hs, steps, p)


def gru_backward(d_hs: np.ndarray, d_h_last: np.ndarray, cache):
    x, h0, hs, steps, p = cache
    grads, dx = _zero_grads(p), np.zeros_like(x)
    d_next = d_h_last.copy()
    for t in reversed(range(x.shape[1])):
        r, z, n, hidden_n = steps[t]
        h_prev = hs[:, t - 1] if t > 0 else h0
        d_h = d_hs[:, t] + d_next
        d_n = d_h * (1 - z) * (1 - n**2)  # before tanh
        d_z = d_h * (h_prev - n) * z * (1 - z)
        d_r = d_n * hidden_n * r * (1 - r)
        d_input = np.concatenate([d_r, d_z, d_n], 1)
        d_hidden = np.concatenate([d_r, d_z, d_n * r], 1)
        _accumulate(grads, x[:, t], h_prev, d_input, d_hidden)
        dx[:, t] = d_input @ p["weight_ih"]
        d_next = d_h * z + d_hidden @ p["weight_hh"]
    return dx, d_next, grads
