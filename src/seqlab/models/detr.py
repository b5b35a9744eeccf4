"""DETR: End-to-End Object Detection with Transformers (Carion et al., ECCV 2020).

A CNN backbone turns the image into an h×w map of features, projected to d_model; the Transformer
encoder reads the h·w positions with 2-D sine positions added in every layer; the decoder turns N object
queries into N slot embeddings, in parallel, attending to the image; heads give each slot a class
(or "no object") and a box. Training matches slots to the ground-truth boxes one-to-one (the Hungarian
matching of :mod:`seqlab.models.set_loss`), so no anchors or non-maximum suppression are needed.

    image (B, C, H, W) ─ backbone ─ 1×1 conv ─ (B, h·w, D) ─ Encoder (+ positions) ─ memory
    object queries (B, N, D) ─ Decoder (memory) ─ per layer: LayerNorm ─ class head, box head

``queries="anchor"`` is DAB-DETR (Liu et al., "DAB-DETR: Dynamic Anchor Boxes are Better Queries for
DETR", ICLR 2022, §4): each query is a 4-D anchor box; its positional query is an MLP of the box's sine
encoding (§4.1), and every decoder layer refines the box, which the next layer uses as its anchor
(§4.2, detached). Kept to these two ideas: the width/height-modulated attention of §4.3 and the
conditional spatial query of Conditional DETR are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..nn import MultiHeadAttention, PositionwiseFeedForward
from . import pretrained
from .detr_layers import DETRDecoderLayer, DETREncoderLayer, grid_positions, sine_encoding


def check_sizes(config: Any, positive: tuple[str, ...]) -> None:
    """Shared by the detectors' configs: each field named in ``positive`` at least 1, and a backbone stride
    that is a power of two dividing the image size."""
    for name in positive:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
    stride = config.backbone_stride
    if stride < 2 or stride & (stride - 1):
        raise ValueError(f"backbone_stride must be a power of two (4, 8 or 16), got {stride}")
    if config.image_size % stride:
        raise ValueError(f"image_size ({config.image_size}) must be divisible by backbone_stride ({stride})")


@dataclass
class DETRConfig:
    n_classes: int  # real classes; logits have n_classes + 1 columns, the last = "no object"
    channels: int = 1
    image_size: int = 96  # square input
    backbone_width: int = 32  # channels of the stem; doubled at each stride-2 stage
    backbone_stride: int = 8  # a power of two (8 or 16): the feature map is image_size / stride on a side
    d_model: int = 128
    n_heads: int = 8
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    d_ff: int = 512
    dropout: float = 0.1
    n_queries: int = 20
    queries: Literal["learned", "anchor"] = "learned"  # "learned": the paper's object queries; "anchor": DAB-DETR's

    def __post_init__(self) -> None:
        positive = ("n_classes", "channels", "image_size", "backbone_width", "d_model", "n_heads",
                    "n_encoder_layers", "n_decoder_layers", "d_ff", "n_queries")
        check_sizes(self, positive)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.d_model % 4:  # half the features for y, half for x, each sin/cos pairs (and 4 box coordinates)
            raise ValueError(f"d_model must be a multiple of 4 for the sine positions, got {self.d_model}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.queries not in ("learned", "anchor"):
            raise ValueError(f"queries must be 'learned' or 'anchor', got {self.queries!r}")


class BasicBlock(nn.Module):
    """ResNet's basic block (He et al., CVPR 2016, Figure 2 left): two 3×3 convolutions with batch norm,
    the input added back — through a 1×1 convolution (``downsample``) where the stride or width changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + shortcut)


class Backbone(nn.Sequential):
    """A small ResNet (He et al., 2016) for small images: a 3×3 stem at full resolution, then one
    BasicBlock per stride-2 stage, the width doubling at each, until the map is 1/stride of the image;
    a 1×1 convolution projects it to d_model (DETR §3.2, "the input projection"). Randomly initialised.
    (B, C, H, W) -> (B, d_model, H/stride, W/stride)."""

    def __init__(self, channels: int, width: int, stride: int, d_model: int) -> None:
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(inplace=True)]
        for _ in range(stride.bit_length() - 1):  # log2(stride) stages
            downsample = nn.Sequential(nn.Conv2d(width, 2 * width, 1, stride=2, bias=False), nn.BatchNorm2d(2 * width))
            layers.append(BasicBlock(width, 2 * width, stride=2, downsample=downsample))
            width *= 2
        layers.append(nn.Conv2d(width, d_model, 1))
        super().__init__(*layers)


class BoxHead(nn.Sequential):
    """The box FFN of §3.2: a 3-layer perceptron with ReLU; the caller applies the sigmoid (DAB-DETR
    adds the anchor in inverse-sigmoid space first). The last layer starts at zero."""

    def __init__(self, d_model: int) -> None:
        super().__init__(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, d_model), nn.ReLU(),
                         nn.Linear(d_model, 4))
        nn.init.zeros_(self[-1].weight)
        nn.init.zeros_(self[-1].bias)


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


def initial_anchors(n: int) -> Tensor:
    """DAB-DETR's anchors before training: centres spread over the image by the first n points (after
    the origin) of the unscrambled 2-D Sobol sequence — (1/2, 1/2), (3/4, 1/4), (1/4, 3/4), … — the
    same for every seed; width = height = 0.1. -> (n, 4) cxcywh in [0, 1]."""
    sobol = torch.quasirandom.SobolEngine(2, scramble=False)
    sobol.fast_forward(1)
    centres = sobol.draw(n)  # (n, 2)
    return torch.cat([centres, torch.full((n, 2), 0.1)], dim=1)


@pretrained.register
class DETR(pretrained.PretrainedModel):
    config_class = DETRConfig

    def __init__(self, config: DETRConfig) -> None:
        super().__init__()
        self.config = c = config
        D = c.d_model
        self.backbone = Backbone(c.channels, c.backbone_width, c.backbone_stride, D)
        self.encoder = nn.ModuleList(
            DETREncoderLayer(MultiHeadAttention(D, c.n_heads, c.dropout), PositionwiseFeedForward(D, c.d_ff, c.dropout),
                             nn.LayerNorm(D), nn.LayerNorm(D), c.dropout)
            for _ in range(c.n_encoder_layers))
        self.decoder = nn.ModuleList(
            DETRDecoderLayer(MultiHeadAttention(D, c.n_heads, c.dropout), MultiHeadAttention(D, c.n_heads, c.dropout),
                             PositionwiseFeedForward(D, c.d_ff, c.dropout), nn.LayerNorm(D), nn.LayerNorm(D),
                             nn.LayerNorm(D), c.dropout)
            for _ in range(c.n_decoder_layers))
        self.decoder_norm = nn.LayerNorm(D)  # shared by every decoder layer's output (auxiliary losses, §3.2)
        if c.queries == "learned":
            self.query_position = nn.Parameter(torch.randn(c.n_queries, D))  # the N learned object queries
        else:
            # DAB-DETR §4.1: learnable anchors (inverse-sigmoid space); positional query = MLP(sine(anchor)).
            self.anchors = nn.Parameter(inverse_sigmoid(initial_anchors(c.n_queries)))
            self.anchor_projection = nn.Sequential(nn.Linear(2 * D, D), nn.ReLU(), nn.Linear(D, D))
        self.class_head = nn.Linear(D, c.n_classes + 1)
        self.box_head = BoxHead(D)

    def forward(self, images: Tensor, need_weights: bool = False) -> dict[str, Any]:
        """images (B, C, H, W) in [0, 1] -> {"logits": (B, Q, n_classes + 1), "boxes": (B, Q, 4) normalised
        (cx, cy, w, h) in [0, 1], "aux": [{"logits", "boxes"} for each decoder layer before the last]};
        with ``need_weights`` also "encoder_attention": per encoder layer (B, H, S, S),
        "cross_attention": per decoder layer (B, H, Q, S), "feature_size": (h, w) with S = h·w (row-major)."""
        c = self.config
        features = self.backbone(images)  # (B, D, h, w)
        B, D, h, w = features.shape
        memory = features.flatten(2).transpose(1, 2)  # (B, S, D), S = h·w row-major
        position = grid_positions(h, w, D, features.device).to(memory.dtype)  # (S, D)
        encoder_maps, cross_maps = [], []
        for layer in self.encoder:
            memory, weights = layer(memory, position, need_weights)
            encoder_maps.append(weights)

        x = memory.new_zeros(B, c.n_queries, D)  # the decoder's content starts empty (the paper's code)
        if c.queries == "learned":
            query_position = self.query_position.expand(B, -1, -1)  # (B, Q, D)
        else:
            anchors = self.anchors.sigmoid().expand(B, -1, -1)  # (B, Q, 4)
        predictions = []
        for layer in self.decoder:
            if c.queries == "anchor":
                query_position = self.anchor_projection(sine_encoding(anchors, D // 2).to(x.dtype))  # (B, Q, D)
            x, weights = layer(x, memory, query_position, position, need_weights)
            cross_maps.append(weights)
            out = self.decoder_norm(x)
            delta = self.box_head(out)  # (B, Q, 4)
            if c.queries == "learned":
                boxes = delta.sigmoid()
            else:  # DAB-DETR §4.2: refine the anchor; the next layer starts from it, without its gradient
                boxes = (inverse_sigmoid(anchors) + delta).sigmoid()
                anchors = boxes.detach()
            predictions.append({"logits": self.class_head(out), "boxes": boxes})

        result: dict[str, Any] = {**predictions[-1], "aux": predictions[:-1]}
        if need_weights:
            result.update(encoder_attention=encoder_maps, cross_attention=cross_maps, feature_size=(h, w))
        return result
