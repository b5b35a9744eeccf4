"""NumPy LSTM (seqlab.scratch, hand-written BPTT) against torch.nn.LSTM, forward+backward, same shapes,
same run, interleaved repeats; float32 both.

    .venv/bin/python benchmarks/scratch_lstm.py [--batch 32 --length 64 --input 64 --hidden 128 --repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from seqlab.scratch import init_params, lstm_backward, lstm_forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--input", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    B, T, I, H = args.batch, args.length, args.input, args.hidden
    rng = np.random.default_rng(0)
    params = init_params("lstm", I, H, rng, dtype=np.float32)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    zeros = np.zeros((B, H), np.float32)
    d_out = rng.standard_normal((B, T, H)).astype(np.float32)

    reference = torch.nn.LSTM(I, H, batch_first=True)
    reference.load_state_dict({f"{k}_l0": torch.from_numpy(v) for k, v in params.items()})
    tx, t_grad = torch.from_numpy(x).requires_grad_(), torch.from_numpy(d_out)

    def numpy_step() -> None:
        hs, _, cache = lstm_forward(x, zeros, zeros, params)
        lstm_backward(d_out, zeros, zeros, cache)

    def torch_step() -> None:
        out, _ = reference(tx)
        out.backward(t_grad)

    times: dict[str, list[float]] = {"numpy": [], "torch": []}
    for repeat in range(args.repeats + 2):
        for name, step in (("numpy", numpy_step), ("torch", torch_step)):
            start = time.perf_counter()
            step()
            if repeat >= 2:
                times[name].append(time.perf_counter() - start)
    numpy_ms, torch_ms = (statistics.median(times[k]) * 1e3 for k in ("numpy", "torch"))
    print(f"LSTM forward+backward, B={B} T={T} I={I} H={H}, float32, {torch.get_num_threads()} torch threads, "
          f"median of {args.repeats}")
    print("| implementation | ms | ratio to torch |\n|---|---|---|")
    print(f"| seqlab.scratch (NumPy) | {numpy_ms:.2f} | {numpy_ms / torch_ms:.2f} |")
    print(f"| torch.nn.LSTM | {torch_ms:.2f} | 1.00 |")


if __name__ == "__main__":
    main()
