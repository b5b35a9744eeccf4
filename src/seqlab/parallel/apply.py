"""Applying a parallel mode to a built model. The model is never edited for it: data parallel wraps it,
tensor parallel swaps parameters for sharded DTensors by a plan, pipeline parallel builds each rank's
stage from the model's pieces. (Batch norm is the one swap: under data parallel its layers take the
whole batch's statistics, ``seqlab.parallel.batch_norm``, with the same parameters and state dict.)"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.distributed.device_mesh import DeviceMesh


def data_parallel(model: nn.Module, mode: Literal["ddp", "fsdp"], mesh: DeviceMesh | None = None) -> nn.Module:
    """DDP: every rank a full replica, gradients all-reduced (averaged) in buckets during backward.
    FSDP2: parameters, gradients and optimizer state sharded across ranks; each layer's parameters are
    all-gathered just before it runs and freed after."""
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        # static_graph: the same parameters take part in every step, and some may take part in none (a
        # classifier's [CLS] vector under mean pooling); DDP learns which in the first step.
        return DistributedDataParallel(model, static_graph=True)
    from torch.distributed.fsdp import fully_shard

    for layer in getattr(model, "layers", []):
        fully_shard(layer, mesh=mesh)  # one all-gather per layer, overlapping the previous layer's compute
    fully_shard(model, mesh=mesh)
    return model


def tensor_parallel(model: nn.Module, mesh: DeviceMesh, plan: dict) -> nn.Module:
    """Shard the planned Linear layers across ``mesh``. Attention splits its heads between ranks: the
    model reshapes with -1 heads, so it runs unchanged on the local head count."""
    from torch.distributed.tensor.parallel import parallelize_module

    heads = {m.n_heads for m in model.modules() if hasattr(m, "n_heads") and hasattr(m, "w_q")}
    if any(h % mesh.size() for h in heads):
        raise ValueError(f"tensor parallel over {mesh.size()} ranks needs a head count divisible by it; got {heads}")
    return parallelize_module(model, mesh, plan)


class LMStage(nn.Module):
    """One pipeline stage of a TransformerLM: the embedding on the first stage, a run of its layers, and
    the final norm and output layer on the last. Holds references to the model's own modules, under
    the model's own names (``layers.3.ff.linear1`` stays ``layers.3.ff.linear1``), so that a stage's
    state dict is a slice of the model's and checkpoints reshard across any number of stages."""

    def __init__(self, model: nn.Module, first: int, last: int, is_first: bool, is_last: bool) -> None:
        super().__init__()
        self.embedding = model.embedding if is_first else None
        self.position = model.position if is_first else None
        self.dropout = model.dropout if is_first else None
        self.layers = nn.ModuleDict({str(i): model.layers[i] for i in range(first, last)})
        self.norm = model.norm if is_last else None
        self.lm_head = model.lm_head if is_last else None
        if is_last and not is_first and model.lm_head.weight is model.embedding.weight:
            raise ValueError("a tied embedding and output layer cannot live on two pipeline stages; "
                             "build the model with tie_weights=False")

    def forward(self, x: Tensor) -> Tensor:
        if self.embedding is not None:  # ids (B, T) -> (B, T, D)
            x = self.embedding(x)
            if self.position is not None:
                x = self.position(x)
            x = self.dropout(x)
        for layer in self.layers.values():
            x = layer(x, is_causal=True)
        if self.lm_head is not None:
            x = self.lm_head(self.norm(x))  # (B, T, V)
        return x


def lm_pipeline_stage(model: nn.Module, stage: int, n_stages: int) -> LMStage:
    """Stage ``stage`` of ``n_stages``, the layers cut into equal consecutive runs."""
    n = len(model.layers)
    if n % n_stages:
        raise ValueError(f"{n} layers cannot be cut into {n_stages} equal pipeline stages")
    per = n // n_stages
    return LMStage(model, stage * per, (stage + 1) * per, stage == 0, stage == n_stages - 1)


def pipeline_schedule(stage_module: nn.Module, stage: int, n_stages: int, microbatches: int, loss_fn,
                      schedule: Literal["gpipe", "1f1b"] = "gpipe", device: torch.device | None = None):
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

    pipeline = PipelineStage(stage_module, stage, n_stages, device or torch.device("cpu"))
    kind = ScheduleGPipe if schedule == "gpipe" else Schedule1F1B
    return kind(pipeline, microbatches, loss_fn=loss_fn)
