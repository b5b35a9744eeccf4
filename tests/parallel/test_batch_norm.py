"""WholeBatchNorm2d on 2 gloo ranks, each holding some rows of a batch, against torch's nn.BatchNorm2d on
the whole batch in one process: the same outputs, the same gradients (of the input rows, and of the
weight and bias summed over the ranks, as data parallel sums them), the same running statistics — for
an even split, an uneven one, a rank whose rows are a stand-in that must not count, the cumulative
average (momentum None), and bf16 input (what autocast gives it), whose statistics are still summed in
fp32. Outside a process group, and in evaluation, it is nn.BatchNorm2d."""

import os

import pytest
import torch
import torch.distributed as dist
from torch import nn

from seqlab.parallel.batch_norm import WholeBatchNorm2d, whole_batch_norm
from two_ranks import run_two_ranks

C = 3
DEADLINE_S = 90
# name: (rows of rank 0, rows of rank 1, whether rank 1's rows count, momentum)
CASES = {"even": (4, 4, True, 0.1), "uneven": (5, 2, True, 0.1), "stand-in": (3, 1, False, 0.1),
         "cumulative": (2, 3, True, None), "bf16": (3, 2, True, 1.0)}
# bf16: 5 × 15 × 15 = 1,125 values a channel, a count bf16 cannot hold (it rounds to 1,120); momentum 1.0
# makes the running mean and variance the batch's own, to compare at fp32's precision.


def shape(case: str) -> tuple[int, int]:
    return (15, 15) if case == "bf16" else (4, 5)


def inputs(case: str):
    """The batch (B, C, H, W) with a non-zero mean (a large mean is where E[x²] - E[x]² loses digits),
    the loss's weights for each output, the starting parameters and buffers."""
    g = torch.Generator().manual_seed(len(case))
    first, second, _, _ = CASES[case]
    x = 3.0 + 2.0 * torch.randn(first + second, C, *shape(case), generator=g, dtype=torch.float64)
    r = torch.randn(x.shape, generator=g, dtype=torch.float64)
    state = {"weight": 1 + torch.rand(C, generator=g, dtype=torch.float64),
             "bias": torch.randn(C, generator=g, dtype=torch.float64),
             "running_mean": torch.randn(C, generator=g, dtype=torch.float64),
             "running_var": 1 + torch.rand(C, generator=g, dtype=torch.float64),
             "num_batches_tracked": torch.tensor(2)}
    return x, r, state


def torch_reference(case: str):
    """nn.BatchNorm2d on the rows that count, in one process: outputs, gradients, buffers after."""
    first, second, counts, momentum = CASES[case]
    x, r, state = inputs(case)
    rows = first + second if counts else first
    norm = nn.BatchNorm2d(C, momentum=momentum, dtype=torch.float64)
    norm.load_state_dict(state)
    if case == "bf16":  # the reference: the same bf16 values, computed in fp64
        x = x.to(torch.bfloat16).double()
    x = x[:rows].clone().requires_grad_()
    y = norm(x)
    (y * r[:rows]).sum().backward()
    return {"y": y.detach(), "x_grad": x.grad, "weight_grad": norm.weight.grad, "bias_grad": norm.bias.grad,
            **{name: value for name, value in norm.state_dict().items() if "running" in name or "tracked" in name}}


def worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    results = {}
    for case, (first, second, counts, momentum) in CASES.items():
        x, r, state = inputs(case)
        mine = slice(0, first) if rank == 0 else slice(first, first + second)
        counted = rank == 0 or counts
        model = whole_batch_norm(nn.Sequential(nn.BatchNorm2d(C, momentum=momentum, dtype=torch.float64)),
                                 counted=lambda: counted)
        norm = model[0]
        norm.load_state_dict(state)
        if case == "bf16":
            norm.float()  # parameters in fp32, as under autocast
            x = x.to(torch.bfloat16)
        x = x[mine].clone().requires_grad_()
        y = norm(x)
        ((y * r[mine]).sum() * (1.0 if counted else 0.0)).backward()  # a stand-in share has weight 0
        for p in (norm.weight, norm.bias):  # what data parallel does with the ranks' gradients (a sum here)
            dist.all_reduce(p.grad)
        results[case] = {"type": type(norm).__name__, "y": y.detach(), "x_grad": x.grad,
                         "weight_grad": norm.weight.grad, "bias_grad": norm.bias.grad,
                         **{name: value for name, value in norm.state_dict().items()
                            if "running" in name or "tracked" in name}}
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)  # as in test_parallel.py: no interpreter teardown under gloo's threads


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch_norm")
    run_two_ranks(worker, (str(tmp / "init"), str(tmp)), "WholeBatchNorm2d", DEADLINE_S)
    return [torch.load(tmp / f"rank{r}.pt") for r in range(2)]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_normalise_like_one_process_over_the_whole_batch(case, ranks):
    first, second, counts, _ = CASES[case]
    want = torch_reference(case)
    got = [ranks[0][case], ranks[1][case]]
    assert got[0]["type"] == "WholeBatchNorm2d"
    rows = [got[0]] + ([got[1]] if counts else [])
    if case == "bf16":
        assert got[0]["y"].dtype == torch.bfloat16
        for key in ("running_mean", "running_var"):  # the batch's statistics: fp32's precision, not bf16's
            for g in got:
                torch.testing.assert_close(g[key].double(), want[key], rtol=1e-5, atol=1e-6, msg=key)
        y = torch.cat([g["y"] for g in rows]).double()
        torch.testing.assert_close(y, want["y"], rtol=1e-2, atol=1e-2)  # rounded to bf16
        return
    for key in ("y", "x_grad"):
        torch.testing.assert_close(torch.cat([g[key] for g in rows]), want[key], rtol=1e-10, atol=1e-12, msg=key)
    for key in ("weight_grad", "bias_grad", "running_mean", "running_var", "num_batches_tracked"):
        for g in got:  # every rank holds the same
            torch.testing.assert_close(g[key], want[key], rtol=1e-10, atol=1e-12, msg=key)
    if not counts:  # the stand-in rank's gradient is 0: it only took part
        assert torch.count_nonzero(got[1]["x_grad"]) == 0


def test_outside_a_process_group_and_in_evaluation_it_is_torch_batch_norm():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(2, C, 1), nn.BatchNorm2d(C), nn.Sequential(nn.BatchNorm2d(C)))
    with torch.no_grad():
        for name, buffer in plain.named_buffers():
            if "running" in name:
                buffer.uniform_(0.5, 1.5)
    swapped = whole_batch_norm(nn.Sequential(nn.Conv2d(2, C, 1), nn.BatchNorm2d(C), nn.Sequential(nn.BatchNorm2d(C))))
    swapped.load_state_dict(plain.state_dict())  # the same keys
    assert [type(m) for m in swapped.modules()].count(WholeBatchNorm2d) == 2
    x = torch.randn(4, 2, 3, 3)
    for mode in (True, False):
        plain.train(mode), swapped.train(mode)
        torch.testing.assert_close(swapped(x), plain(x), rtol=0, atol=0)
    for (name, want), (_, got) in zip(plain.state_dict().items(), swapped.state_dict().items(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)
