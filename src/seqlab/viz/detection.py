"""Pictures of a detector: boxes on images, and where DETR looked — each detected object's query over
the image in the decoder's cross-attention (Carion et al. 2020, Figure 6) and the encoder's
self-attention from a few points of the image (Figure 3)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ..io import atomic_write  # noqa: E402

PREDICTED, TRUE = "#ff7f0e", "#2ca02c"


def _box(ax, cx: float, cy: float, w: float, h: float, side_x: float, side_y: float, colour: str,
         label: str = "", dashed: bool = False) -> None:
    """A normalised (cx, cy, w, h) box on an axis showing a side_x × side_y image."""
    x0, y0 = (cx - w / 2) * side_x - 0.5, (cy - h / 2) * side_y - 0.5
    ax.add_patch(Rectangle((x0, y0), w * side_x, h * side_y, fill=False, edgecolor=colour, linewidth=1.2,
                           linestyle="--" if dashed else "-"))
    if label:
        ax.text(x0, y0 - 1, label, color=colour, fontsize=7, va="bottom")


def _show(ax, picture: np.ndarray) -> None:
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
    ax.axis("off")


def plot_detections(pictures: np.ndarray, predictions: list, truth: list[dict[str, Any]], names: list[str],
                    threshold: float, path: Path) -> None:
    """pictures (K, S, S[, 3]); per picture (scores (Q,), classes (Q,), boxes (Q, 4)) and its true
    ``{"labels", "boxes"}`` -> PNG: true boxes dashed green, predicted ones (score ≥ threshold) orange."""
    k = len(pictures)
    cols = min(k, 4)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.9 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= k:
            continue
        _show(ax, pictures[i])
        side_y, side_x = pictures[i].shape[:2]
        for label, box in zip(truth[i]["labels"], truth[i]["boxes"]):
            _box(ax, *map(float, box), side_x, side_y, TRUE, dashed=True)
        scores, classes, boxes = predictions[i]
        for score, label, box in zip(scores.tolist(), classes.tolist(), boxes.tolist()):
            if score >= threshold:
                _box(ax, *box, side_x, side_y, PREDICTED, f"{names[label]} {score:.2f}")
    fig.suptitle(f"predicted (orange, score ≥ {threshold:g}) and true boxes (dashed green)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_decoder_attention(picture: np.ndarray, outputs: dict[str, Any], scores, classes, boxes,
                           names: list[str], threshold: float, path: Path, most: int = 6) -> None:
    """For each detected object (at most ``most``), its query's cross-attention in the last decoder
    layer, averaged over heads and stretched over the image, with its box (the paper's Figure 6)."""
    h, w = outputs["feature_size"]
    weights = outputs["cross_attention"][-1][0].float().mean(0)  # (Q, h·w), heads averaged
    kept = [q for q in scores.argsort(descending=True).tolist() if scores[q] >= threshold][:most]
    side_y, side_x = picture.shape[:2]
    fig, axes = plt.subplots(1, len(kept) + 1, figsize=(2.6 * (len(kept) + 1), 2.9), squeeze=False)
    _show(axes[0][0], picture)
    axes[0][0].set_title("image", fontsize=8)
    for ax, q in zip(axes[0][1:], kept):
        heat = weights[q].reshape(h, w).cpu().numpy()
        ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
        ax.imshow(heat, cmap="inferno", alpha=0.6, extent=(-0.5, side_x - 0.5, side_y - 0.5, -0.5))
        ax.axis("off")
        _box(ax, *boxes[q].tolist(), side_x, side_y, PREDICTED)
        ax.set_title(f"query {q}: {names[int(classes[q])]} {float(scores[q]):.2f}", fontsize=8)
    fig.suptitle("each detected object's query: cross-attention of the last decoder layer (heads averaged)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_encoder_attention(picture: np.ndarray, outputs: dict[str, Any], path: Path,
                           centres: list[tuple[float, float]] = ()) -> None:
    """The last encoder layer's self-attention (heads averaged) from up to four reference points of the
    feature map — where each point looks, over the image (the paper's Figure 3): the cells under the
    ``centres`` given (normalised (cx, cy), e.g. of detected objects), else four points spread evenly."""
    h, w = outputs["feature_size"]
    weights = outputs["encoder_attention"][-1][0].float().mean(0)  # (h·w, h·w)
    points = [(min(int(cy * h), h - 1), min(int(cx * w), w - 1)) for cx, cy in centres][:4]
    points = points or [(h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4), (3 * h // 4, 3 * w // 4)]
    side_y, side_x = picture.shape[:2]
    fig, axes = plt.subplots(1, len(points) + 1, figsize=(2.6 * (len(points) + 1), 2.9), squeeze=False)
    _show(axes[0][0], picture)
    axes[0][0].set_title("image and the points", fontsize=8)
    for ax, (r, c) in zip(axes[0][1:], points):
        x, y = (c + 0.5) * side_x / w - 0.5, (r + 0.5) * side_y / h - 0.5
        axes[0][0].plot(x, y, "o", color=PREDICTED, markersize=4)
        ax.imshow(weights[r * w + c].reshape(h, w).cpu().numpy(), cmap="inferno",
                  extent=(-0.5, side_x - 0.5, side_y - 0.5, -0.5))
        ax.plot(x, y, "o", color=PREDICTED, markersize=4)
        ax.axis("off")
        ax.set_title(f"from row {r}, column {c}", fontsize=8)
    fig.suptitle(f"self-attention of the last encoder layer from {len(points)} points (heads averaged)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_boxes(image_file: Path, results: list[dict[str, Any]], names: dict[int, str], path: Path) -> None:
    """An image file with COCO results' boxes (pixels) drawn on it, at its own size, -> PNG."""
    from PIL import Image, ImageDraw

    from ..data.images import eight_bit

    with Image.open(image_file) as source:
        image = eight_bit(source).convert("RGB")
    draw = ImageDraw.Draw(image)
    for r in results:
        x, y, w, h = r["bbox"]
        draw.rectangle([x, y, x + w, y + h], outline=PREDICTED, width=max(1, round(min(image.size) / 200)))
        draw.text((x + 2, y + 1), f"{names.get(int(r['category_id']), r['category_id'])} {r['score']:.2f}",
                  fill=PREDICTED)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
