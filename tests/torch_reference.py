"""seqlab's attention weights copied into torch's own ``nn.MultiheadAttention``, for the tests that compare
seqlab's blocks with torch's; not a test module."""

import torch
from torch import nn


def copy_attention(ours, theirs: nn.MultiheadAttention) -> nn.MultiheadAttention:
    """seqlab's ``MultiHeadAttention`` (separate w_q, w_k, w_v, w_o) into torch's (one in_proj for q, k, v)."""
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        theirs.out_proj.weight.copy_(ours.w_o.weight)
        if ours.w_q.bias is not None:
            theirs.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
            theirs.out_proj.bias.copy_(ours.w_o.bias)
    return theirs


def torch_attention(ours, n_heads: int) -> nn.MultiheadAttention:
    """A batch-first ``nn.MultiheadAttention`` holding ``ours``'s weights."""
    d_model = ours.w_q.in_features
    return copy_attention(ours, nn.MultiheadAttention(d_model, n_heads, bias=ours.w_q.bias is not None,
                                                      batch_first=True))
