"""Scale-out on torch.distributed, applied to a plain model from outside (as torchtitan does): data
parallel (DDP, FSDP2), tensor parallel (a module-name -> style plan) and pipeline parallel (stages cut by
layer index). Launched by ``torchrun``; gloo on CPU, NCCL on CUDA.

The names below load on first use: DTensor's import costs half a second that a one-process run skips."""

from importlib import import_module

_HOMES = {"data_parallel": "apply", "tensor_parallel": "apply", "lm_pipeline_stage": "apply",
          "pipeline_schedule": "apply", "LM_TENSOR_PLAN": "plans", "ParallelConfig": "config"}

__all__ = list(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
