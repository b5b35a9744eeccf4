"""DETR's set prediction loss (Carion et al., 2020, §3.1): the N predictions are matched one-to-one to
the ground-truth objects by the Hungarian algorithm (Kuhn, 1955) under a matching cost, and the loss is
computed on that matching; predictions left unmatched must say "no object".

    L_match(y_i, ŷ_σ(i)) = -class_weight · p̂_σ(i)(c_i) + l1_weight · ‖b_i - b̂_σ(i)‖₁ - giou_weight · GIoU(b_i, b̂_σ(i))

Boxes are normalised (cx, cy, w, h) in [0, 1]; GIoU is Rezatofighi et al. (CVPR 2019).

targets: a list, one per image, of {"labels": (n,) int64 in [0, n_classes), "boxes": (n, 4) float cxcywh};
n may be 0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _xyxy(boxes: Tensor) -> Tensor:
    """(…, 4) (cx, cy, w, h) -> (x0, y0, x1, y1)."""
    centre, size = boxes[..., :2], boxes[..., 2:]
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


def box_iou(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Intersection over union of every pair, and the union: a (n, 4), b (m, 4), both (x0, y0, x1, y1)
    -> (n, m) each."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])  # (n,)
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # (m,)
    top_left = torch.max(a[:, None, :2], b[None, :, :2])  # (n, m, 2)
    bottom_right = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)  # (n, m)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union, union


def generalized_box_iou(a: Tensor, b: Tensor) -> Tensor:
    """GIoU (Rezatofighi et al., CVPR 2019, Algorithm 1) of every pair: a (n, 4), b (m, 4), both
    (x0, y0, x1, y1) -> (n, m). IoU minus the part of the smallest enclosing box that neither box covers:
    1 for equal boxes, towards -1 for boxes far apart. Written out because torchvision's CPU build for
    this torch cannot be installed here; the IoU part is tested against pycocotools'."""
    iou, union = box_iou(a, b)
    enclosing = (torch.max(a[:, None, 2:], b[None, :, 2:]) - torch.min(a[:, None, :2], b[None, :, :2])).prod(-1)
    return iou - (enclosing - union) / enclosing


class HungarianMatcher:
    """The optimal one-to-one assignment of predictions to targets, per image (§3.1, eq. 1)."""

    def __init__(self, *, class_weight: float = 1.0, l1_weight: float = 5.0, giou_weight: float = 2.0) -> None:
        self.class_weight, self.l1_weight, self.giou_weight = class_weight, l1_weight, giou_weight

    def cost(self, logits: Tensor, boxes: Tensor, target: dict[str, Tensor]) -> Tensor:
        """One image: logits (Q, K + 1), boxes (Q, 4) -> the matching cost (Q, n)."""
        probability = logits.float().softmax(-1)[:, target["labels"]]  # (Q, n); -p̂ stands for -log p̂ (§3.1)
        l1 = torch.cdist(boxes.float(), target["boxes"].float(), p=1)  # (Q, n)
        giou = generalized_box_iou(_xyxy(boxes.float()), _xyxy(target["boxes"].float()))  # (Q, n)
        return -self.class_weight * probability + self.l1_weight * l1 - self.giou_weight * giou

    @torch.no_grad()
    def __call__(self, logits: Tensor, boxes: Tensor, targets: list[dict[str, Tensor]]) -> list[tuple[Tensor, Tensor]]:
        """logits (B, Q, K + 1), boxes (B, Q, 4) -> per image (query indices, target indices), both int64
        of length min(Q, n), sorted by query index."""
        from scipy.optimize import linear_sum_assignment  # here: importing SciPy would slow every start-up

        matches = []
        for image_logits, image_boxes, target in zip(logits, boxes, targets):
            if len(target["labels"]) == 0:
                empty = torch.zeros(0, dtype=torch.int64, device=logits.device)
                matches.append((empty, empty.clone()))
                continue
            rows, columns = linear_sum_assignment(self.cost(image_logits, image_boxes, target).cpu().numpy())
            matches.append((torch.as_tensor(rows, dtype=torch.int64, device=logits.device),
                            torch.as_tensor(columns, dtype=torch.int64, device=logits.device)))
        return matches


class SetCriterion(nn.Module):
    """The Hungarian loss (§3.1, eq. 2) of the last decoder layer plus that of every earlier one (the
    auxiliary decoding losses of §3.2): cross-entropy over all queries, with the "no object" class
    down-weighted by ``no_object_weight`` (the paper divides it by 10); L1 and 1 - GIoU over the matched pairs,
    both divided by the number of target boxes in the batch (at least 1)."""

    def __init__(self, n_classes: int, matcher: HungarianMatcher, *, no_object_weight: float = 0.1,
                 class_weight: float = 1.0, l1_weight: float = 5.0, giou_weight: float = 2.0) -> None:
        super().__init__()
        self.n_classes, self.matcher = n_classes, matcher
        self.class_weight, self.l1_weight, self.giou_weight = class_weight, l1_weight, giou_weight
        self.no_object_weight = no_object_weight

    def class_weight_sum(self, images: int, queries: int, matched: int) -> float:
        """The sum of the class weights over a batch's queries, what the weighted cross-entropy divides
        by: 1 for each query matched to an object, ``no_object_weight`` for each other."""
        return matched + (images * queries - matched) * self.no_object_weight

    def layer_losses(self, logits: Tensor, boxes: Tensor, targets: list[dict[str, Tensor]],
                     n_boxes: float, whole: tuple[int, int] | None = None) -> dict[str, Tensor]:
        """One decoder layer's predictions: logits (B, Q, K + 1), boxes (B, Q, 4) -> class, l1, giou.
        ``whole``: see :meth:`forward`."""
        matches = self.matcher(logits, boxes, targets)
        target_classes = logits.new_full(logits.shape[:2], self.n_classes, dtype=torch.int64)  # (B, Q)
        matched_boxes, wanted_boxes = [], []
        for b, ((queries, objects), target) in enumerate(zip(matches, targets)):
            target_classes[b, queries] = target["labels"][objects]
            matched_boxes.append(boxes[b, queries])
            wanted_boxes.append(target["boxes"][objects])
        # The weighted mean divides by the summed weights of the targets, as the paper's code does.
        scores = logits.float().transpose(1, 2)  # (B, K + 1, Q)
        class_weights = scores.new_ones(scores.size(1))  # (K + 1,), where the scores are
        class_weights[-1] = self.no_object_weight
        class_loss = F.cross_entropy(scores, target_classes, weight=class_weights)
        if whole is not None:  # this share's weighted sum, over the whole batch's summed weights
            B, Q = target_classes.shape
            mine = self.class_weight_sum(B, Q, sum(len(queries) for queries, _ in matches))
            class_loss = class_loss * (mine / self.class_weight_sum(whole[0], Q, whole[1]))
        predicted, wanted = torch.cat(matched_boxes).float(), torch.cat(wanted_boxes).float()
        l1 = (predicted - wanted).abs().sum() / n_boxes
        giou = generalized_box_iou(_xyxy(predicted), _xyxy(wanted)).diagonal()  # (n,); n may be 0
        return {"class": class_loss, "l1": l1, "giou": (1 - giou).sum() / n_boxes}

    def forward(self, outputs: dict[str, Any], targets: list[dict[str, Tensor]],
                whole: tuple[int, int] | None = None) -> dict[str, Tensor]:
        """outputs: the model's {"logits", "boxes", "aux"} -> {"loss": the weighted total over the last and
        the auxiliary layers, "class", "l1", "giou": each summed over those layers}.

        ``whole`` = (images, objects) of the whole batch when ``targets`` are only some of its images (a
        data-parallel rank's rows): the losses are then this share's part of the whole batch's loss —
        divided by the whole batch's object count and class weights — so that the shares' losses add up
        to the loss of the whole batch on one process. Every object is taken to be matched (DETR needs a
        query for each)."""
        objects = sum(len(t["labels"]) for t in targets) if whole is None else whole[1]
        n_boxes = max(float(objects), 1.0)
        totals: dict[str, Tensor] = {}
        for layer in [outputs, *outputs.get("aux", [])]:
            for name, value in self.layer_losses(layer["logits"], layer["boxes"], targets, n_boxes, whole).items():
                totals[name] = totals[name] + value if name in totals else value
        loss = (self.class_weight * totals["class"] + self.l1_weight * totals["l1"]
                + self.giou_weight * totals["giou"])
        return {"loss": loss, **totals}
