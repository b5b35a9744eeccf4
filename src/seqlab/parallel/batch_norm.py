"""Batch normalisation over the whole batch when data-parallel ranks each hold some of its rows.

Batch norm in training normalises with the mean and variance of the batch (Ioffe & Szegedy, 2015,
Algorithm 1). Under data parallel each rank sees only its rows, so plain ``nn.BatchNorm2d`` would use
each rank's own statistics, and the run would no longer follow the one-process run. torch's
``nn.SyncBatchNorm`` computes the whole batch's statistics but runs on GPUs only; this one runs
wherever ``torch.distributed`` does (gloo on CPU included). The sums go through a differentiable
all-reduce (:class:`SumOverRanks`), so backward carries every rank's share of the gradient through the
statistics, as one process's autograd does.

Two passes, as one process computes them: the mean first, then the mean squared deviation from it
(not E[x²] - E[x]², which loses digits when the mean is large).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


class SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over the group's ranks; its gradient is the sum of the ranks' gradients (each
    rank's input reaches every rank's output). ``torch.distributed.nn.functional.all_reduce`` is this,
    deprecated without a differentiable successor."""

    @staticmethod
    def forward(ctx, tensor: Tensor, group) -> Tensor:
        import torch.distributed as dist

        ctx.group = group
        total = tensor.clone()
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        import torch.distributed as dist

        total = grad.clone()
        dist.all_reduce(total, group=ctx.group)
        return total, None


class WholeBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics are those of the whole batch over ``group``'s ranks.
    ``counted()`` says whether this rank's rows belong to the batch (False: a rank left without rows,
    which runs a stand-in row at weight 0; its rows then add nothing to the statistics). In evaluation
    mode, or outside a process group, it is ``nn.BatchNorm2d``."""

    def __init__(self, num_features: int, *, group=None, counted: Callable[[], bool] = lambda: True,
                 **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.group, self.counted = group, counted

    def forward(self, x: Tensor) -> Tensor:  # x (B, C, H, W)
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        share = 1.0 if self.counted() else 0.0
        dims = (0, 2, 3)
        # Sums in at least fp32: under bf16 autocast the input is bf16, whose 8 bits of mantissa can
        # neither hold a count like 16 × 48 × 48 nor add up thousands of values.
        wide = x.to(torch.promote_types(x.dtype, torch.float32))
        count = SumOverRanks.apply(wide.new_tensor([share * x.numel() / x.size(1)]), self.group)  # rows × H × W
        mean = SumOverRanks.apply(wide.sum(dims) * share, self.group) / count  # (C,)
        centred = wide - mean[None, :, None, None]
        variance = SumOverRanks.apply((centred * centred).sum(dims) * share, self.group) / count  # (C,), biased
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), variance.detach(), count.item())
        y = centred * torch.rsqrt(variance + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, variance: Tensor, count: float) -> None:
        """As ``F.batch_norm`` does: an exponential average with ``momentum`` (a cumulative one when it is
        None), of the unbiased variance."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(variance * (count / max(count - 1, 1.0)), alpha=factor)


def whole_batch_norm(model: nn.Module, *, group=None, counted: Callable[[], bool] = lambda: True) -> nn.Module:
    """Swap every ``nn.BatchNorm2d`` of ``model`` for a :class:`WholeBatchNorm2d` with the same
    parameters and buffers (the state dict keeps its keys); -> ``model``."""
    for name, child in list(model.named_children()):
        if type(child) is nn.BatchNorm2d:
            like = next((t for t in child.state_dict().values() if t.is_floating_point()), torch.empty(0))
            whole = WholeBatchNorm2d(child.num_features, group=group, counted=counted, eps=child.eps,
                                     momentum=child.momentum, affine=child.affine,
                                     track_running_stats=child.track_running_stats, device=like.device,
                                     dtype=like.dtype)
            whole.load_state_dict(child.state_dict())
            setattr(model, name, whole.train(child.training))
        else:
            whole_batch_norm(child, group=group, counted=counted)
    return model
