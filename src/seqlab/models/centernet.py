"""CenterNet: "Objects as Points" (Zhou, Wang and Krähenbühl, 2019) — the conventional baseline for DETR.

Each object is the peak of a per-class heatmap at its box centre; at that point two more maps give
the box's size and the sub-cell offset of the centre lost to the output stride (§3). Training splats a
Gaussian around every centre and uses a penalty-reduced focal loss on the heatmap (eq. 1) plus L1 on
size and offset at the centres only (eqs. 2–3); decoding takes the local maxima of the heatmap (a 3×3
max-pool, no NMS) and keeps the top k (§4).

    image (B, C, H, W) ─ Backbone (DETR's) ─ (B, F, h, w) ─┬ 3×3 conv, ReLU, 1×1 conv ─ heatmap (B, K, h, w)
                                                          ├ 3×3 conv, ReLU, 1×1 conv ─ size    (B, 2, h, w)
                                                          └ 3×3 conv, ReLU, 1×1 conv ─ offset  (B, 2, h, w)

The backbone is :class:`seqlab.models.detr.Backbone`, the same class DETR uses, its final 1×1
projection giving ``head_width`` channels; with ``backbone_stride=4`` its map is already at the
paper's output stride R = 4, so there is no upsampling. Sizes and offsets are in output cells (so the
paper's λ_size = 0.1 keeps its scale); the boxes :func:`decode` returns are normalised (cx, cy, w, h).
The Gaussian's radius is CornerNet's (Law and Deng, ECCV 2018, §3.2) as the CenterNet code computes
it, σ = (2r + 1) / 6.

targets: a list, one per image, of {"labels": (n,) int64 in [0, n_classes), "boxes": (n, 4) float
normalised cxcywh}; n may be 0 (as in :mod:`seqlab.models.set_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import pretrained
from .detr import Backbone, check_sizes

HEATMAP_PRIOR_BIAS = -2.19  # -log((1 - 0.1) / 0.1): every heatmap cell starts at p ≈ 0.1 (§4, implementation)


@dataclass
class CenterNetConfig:
    n_classes: int
    channels: int = 1
    image_size: int = 96  # square input
    backbone_width: int = 16  # channels of the stem; doubled at each stride-2 stage (as DETR's)
    backbone_stride: int = 4  # the output stride R: the maps are image_size / R on a side (the paper's R = 4)
    head_width: int = 64  # the backbone's output channels and the hidden width of each head

    def __post_init__(self) -> None:
        check_sizes(self, ("n_classes", "channels", "image_size", "backbone_width", "head_width"))


def _head(width: int, out: int) -> nn.Sequential:
    """One output head of §4 ("a separate 3×3 convolution, ReLU and another 1×1 convolution")."""
    return nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, out, 1))


@pretrained.register
class CenterNet(pretrained.PretrainedModel):
    config_class = CenterNetConfig

    def __init__(self, config: CenterNetConfig) -> None:
        super().__init__()
        self.config = c = config
        self.backbone = Backbone(c.channels, c.backbone_width, c.backbone_stride, c.head_width)
        self.heatmap_head = _head(c.head_width, c.n_classes)
        self.size_head = _head(c.head_width, 2)
        self.offset_head = _head(c.head_width, 2)
        nn.init.constant_(self.heatmap_head[-1].bias, HEATMAP_PRIOR_BIAS)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """images (B, C, H, W) in [0, 1] -> {"heatmap": (B, K, h, w) logits, "size": (B, 2, h, w) box (w, h)
        in output cells, "offset": (B, 2, h, w) centre (x, y) minus its cell, in cells}; h = H / stride."""
        features = self.backbone(images)  # (B, F, h, w)
        return {"heatmap": self.heatmap_head(features), "size": self.size_head(features),
                "offset": self.offset_head(features)}


def gaussian_radius(height: Tensor, width: Tensor, min_overlap: float = 0.7) -> Tensor:
    """CornerNet's radius (Law and Deng, 2018, §3.2, as in the CenterNet code): the largest r such that a
    box whose corners move by r still has IoU ≥ min_overlap with the true one — the smallest of the three
    cases' roots. height, width (n,) in cells -> (n,)."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + torch.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def centre_cells(boxes: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Normalised cxcywh (n, 4) -> the integer cell of each centre (n, 2) as (x, y), and the centre in
    cells (n, 2) (x, y) — their difference is the offset target (eq. 2's p/R - p̃)."""
    centre = boxes[:, :2] * boxes.new_tensor([w, h])  # (n, 2) in cells
    cell = centre.floor().long()
    cell[:, 0].clamp_(0, w - 1)
    cell[:, 1].clamp_(0, h - 1)
    return cell, centre


def gaussian_heatmap(target: dict[str, Tensor], n_classes: int, h: int, w: int) -> Tensor:
    """One image's ground-truth heatmap Y (K, h, w) (§3): for each object a Gaussian exp(-‖q - p̃‖² / 2σ²)
    on its class's map, exactly 1 at its centre cell p̃, cut to the (2r + 1)² square; where two
    overlap, the element-wise maximum."""
    boxes, labels = target["boxes"].float(), target["labels"]
    heatmap = torch.zeros(n_classes, h, w, device=boxes.device)
    if len(labels) == 0:
        return heatmap
    cell, _ = centre_cells(boxes, h, w)
    radius = gaussian_radius(boxes[:, 3] * h, boxes[:, 2] * w).floor().clamp(min=0)  # (n,), integers
    sigma = (2 * radius + 1) / 6
    ys = torch.arange(h, device=boxes.device)[None, :, None] - cell[:, 1, None, None]  # (n, h, 1)
    xs = torch.arange(w, device=boxes.device)[None, None, :] - cell[:, 0, None, None]  # (n, 1, w)
    inside = (ys.abs() <= radius[:, None, None]) & (xs.abs() <= radius[:, None, None])  # (n, h, w)
    gaussian = torch.exp(-(xs ** 2 + ys ** 2) / (2 * sigma[:, None, None] ** 2)) * inside  # (n, h, w)
    for label, g in zip(labels.tolist(), gaussian):
        heatmap[label] = torch.maximum(heatmap[label], g)
    return heatmap


def focal_loss(logits: Tensor, target: Tensor, alpha: float = 2.0, beta: float = 4.0) -> Tensor:
    """The penalty-reduced pixel-wise focal loss (eq. 1), summed and divided by N, the number of cells
    where Y = 1 (at least 1): -1/N Σ (1 - Ŷ)^α log Ŷ where Y = 1, (1 - Y)^β Ŷ^α log(1 - Ŷ) elsewhere.
    log Ŷ and log(1 - Ŷ) are computed as logsigmoid(±logits) (the paper's code clamps Ŷ instead)."""
    logits, target = logits.float(), target.float()
    p = logits.sigmoid()
    positive = target == 1
    positive_loss = (1 - p) ** alpha * F.logsigmoid(logits)
    negative_loss = (1 - target) ** beta * p ** alpha * F.logsigmoid(-logits)
    loss = torch.where(positive, positive_loss, negative_loss).sum()
    return -loss / positive.sum().clamp(min=1)


def centernet_loss(outputs: dict[str, Tensor], targets: list[dict[str, Tensor]], *, size_weight: float = 0.1,
                   offset_weight: float = 1.0) -> dict[str, Tensor]:
    """L_det = L_k + λ_size L_size + λ_off L_off (eq. 3): focal loss on the heatmap, and L1 on size and
    offset read at each object's centre cell (eq. 2), summed over the two coordinates and divided by the
    number of objects. -> {"loss", "heatmap", "size", "offset"}."""
    heat = outputs["heatmap"]
    B, K, h, w = heat.shape
    target_heat = torch.stack([gaussian_heatmap(t, K, h, w) for t in targets])  # (B, K, h, w)
    batch, cells, centres, sizes = [], [], [], []
    for b, t in enumerate(targets):
        boxes = t["boxes"].float()
        cell, centre = centre_cells(boxes, h, w)
        batch.append(torch.full((len(boxes),), b, dtype=torch.long, device=heat.device))
        cells.append(cell)
        centres.append(centre)
        sizes.append(boxes[:, 2:] * boxes.new_tensor([w, h]))
    batch_index, cell = torch.cat(batch), torch.cat(cells)  # (n,), (n, 2)
    n_objects = max(len(batch_index), 1)
    size = outputs["size"][batch_index, :, cell[:, 1], cell[:, 0]].float()  # (n, 2)
    offset = outputs["offset"][batch_index, :, cell[:, 1], cell[:, 0]].float()  # (n, 2)
    size_loss = (size - torch.cat(sizes)).abs().sum() / n_objects
    offset_loss = (offset - (torch.cat(centres) - cell)).abs().sum() / n_objects
    heat_loss = focal_loss(heat, target_heat)
    return {"loss": heat_loss + size_weight * size_loss + offset_weight * offset_loss, "heatmap": heat_loss,
            "size": size_loss, "offset": offset_loss}


@torch.no_grad()
def decode(outputs: dict[str, Tensor], k: int = 20) -> list[dict[str, Tensor]]:
    """The NMS-free decoding of §4: the cells whose value is the maximum of their 3×3 neighbourhood (a
    max-pool) are the peaks; the k highest over all classes become boxes, each its cell plus the offset
    as centre and the size at that cell. -> per image {"scores": (k,) sigmoid of the peak, "labels": (k,),
    "boxes": (k, 4) normalised cxcywh}, highest score first (k is at most K·h·w)."""
    heat = outputs["heatmap"].float().sigmoid()  # (B, K, h, w)
    B, K, h, w = heat.shape
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    scores, index = peaks.flatten(1).topk(min(k, K * h * w), dim=1)  # (B, k)
    labels, cell = index // (h * w), index % (h * w)
    y, x = cell // w, cell % w
    size = outputs["size"].float().flatten(2).gather(2, cell[:, None].expand(-1, 2, -1))  # (B, 2, k)
    offset = outputs["offset"].float().flatten(2).gather(2, cell[:, None].expand(-1, 2, -1))  # (B, 2, k)
    scale = heat.new_tensor([w, h])[None, :, None]
    centre = (torch.stack([x, y], dim=1) + offset) / scale  # (B, 2, k)
    boxes = torch.cat([centre, size / scale], dim=1).transpose(1, 2)  # (B, k, 4)
    return [{"scores": scores[b], "labels": labels[b], "boxes": boxes[b]} for b in range(B)]
