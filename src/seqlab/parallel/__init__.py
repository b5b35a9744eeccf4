"""Scale-out on torch.distributed, applied to a plain model from outside (as torchtitan does): data
parallel (DDP, FSDP2), tensor parallel (a module-name -> style plan) and pipeline parallel (stages cut by
layer index). Launched by ``torchrun``; gloo on CPU, NCCL on CUDA."""

from .apply import data_parallel, lm_pipeline_stage, tensor_parallel
from .plans import LM_TENSOR_PLAN

__all__ = ["data_parallel", "tensor_parallel", "lm_pipeline_stage", "LM_TENSOR_PLAN"]
