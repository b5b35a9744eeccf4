"""Tensor-parallel plans: which modules of a model are split by columns or rows (Megatron-LM's scheme,
Shoeybi et al., 2019), kept apart from the model itself.

Attention: W_Q, W_K, W_V split by output columns, so each rank holds whole heads; W_O split by input
rows, so each rank's partial output is summed by one all-reduce. Feed-forward: W1 by columns, W2 by
rows — one all-reduce per sub-layer in the forward pass and one in the backward.
"""

from __future__ import annotations

from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

# Module names of seqlab.models.TransformerLM (fnmatch patterns, as parallelize_module accepts them).
LM_TENSOR_PLAN = {
    "layers.*.self_attn.w_q": ColwiseParallel(),
    "layers.*.self_attn.w_k": ColwiseParallel(),
    "layers.*.self_attn.w_v": ColwiseParallel(),
    "layers.*.self_attn.w_o": RowwiseParallel(),
    "layers.*.ff.linear1": ColwiseParallel(),
    "layers.*.ff.linear2": RowwiseParallel(),
}
