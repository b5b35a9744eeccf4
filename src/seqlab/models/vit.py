"""Vision Transformer (Dosovitskiy et al., 2021): an image is cut into P×P patches, each
flattened and projected to d_model — a sequence of "words" — with a learned [CLS] token in front and
learned positions added; the Transformer encoder of :mod:`seqlab.nn` reads it, and the [CLS] output
is classified.

    image (B, C, H, W) ─ patches (B, N, C·P·P) ─ Linear ─ [CLS] + positions ─ Encoder ─ LayerNorm ─ [CLS] ─ Linear
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..nn import LearnedPositionalEmbedding, encoder_layer
from . import pretrained


def patchify(images: Tensor, patch: int) -> Tensor:
    """(B, C, H, W) -> (B, N, C·P·P), patches in row-major order, N = (H/P)·(W/P)."""
    B, C, H, W = images.shape
    if H % patch or W % patch:
        raise ValueError(f"image size {H}×{W} is not a multiple of the patch size {patch}")
    x = images.unfold(2, patch, patch).unfold(3, patch, patch)  # (B, C, H/P, W/P, P, P)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(B, (H // patch) * (W // patch), C * patch * patch)


def unpatchify(patches: Tensor, patch: int, channels: int, height: int, width: int) -> Tensor:
    """The inverse of :func:`patchify`: (B, N, C·P·P) -> (B, C, H, W)."""
    B = patches.size(0)
    x = patches.reshape(B, height // patch, width // patch, channels, patch, patch)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(B, channels, height, width)


@dataclass
class VisionTransformerConfig:
    image_size: int  # square images: height = width
    n_classes: int
    channels: int = 1
    patch_size: int = 2
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 128
    dropout: float = 0.1
    attention_dropout: float | None = None  # None = dropout
    ff_dropout: float | None = None  # None = dropout


@pretrained.register
class VisionTransformer(pretrained.PretrainedModel):
    config_class = VisionTransformerConfig

    def __init__(self, config: VisionTransformerConfig) -> None:
        super().__init__()
        self.config = c = config
        image_size, channels, patch_size, d_model, dropout = c.image_size, c.channels, c.patch_size, c.d_model, c.dropout
        self.patch_size, self.channels, self.image_size = patch_size, channels, image_size
        n_patches = (image_size // patch_size) ** 2
        self.patch_embedding = nn.Linear(channels * patch_size**2, d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.position = LearnedPositionalEmbedding(n_patches + 1, d_model)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(encoder_layer(d_model, c.n_heads, c.d_ff, dropout, norm_first=True, activation="gelu",
                                                 attention_dropout=c.attention_dropout, ff_dropout=c.ff_dropout)
                                    for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, c.n_classes)
        nn.init.normal_(self.cls, std=0.02)

    def forward(self, images: Tensor, need_weights: bool = False):
        """images (B, C, H, W) -> class logits (B, n_classes); with ``need_weights``, (logits, per
        layer the (B, heads, 1 + N, 1 + N) self-attention weights), ready for :func:`attention_rollout`."""
        x = self.patch_embedding(patchify(images, self.patch_size))  # (B, N, D)
        x = torch.cat([self.cls.expand(x.size(0), -1, -1), x], dim=1)  # (B, 1 + N, D)
        x = self.dropout(self.position(x))
        maps = []
        for layer in self.layers:
            if need_weights:
                x, weights = layer(x, need_weights=True)
                maps.append(weights)
            else:
                x = layer(x)
        logits = self.head(self.norm(x)[:, 0])
        return (logits, maps) if need_weights else logits


def attention_rollout(maps: list[Tensor]) -> Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): average heads, add the residual path (identity) and
    renormalise, multiply through the layers; the [CLS] row says how much each patch reached the
    output. maps: per layer (B, H, T, T) -> (B, N) over the N patches."""
    rollout = None
    for weights in maps:
        a = weights.float().mean(dim=1)  # (B, T, T)
        a = a + torch.eye(a.size(-1), device=a.device)
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout[:, 0, 1:]
