"""Confusion matrices and, for Vision Transformers, where the model looked."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str = "confusion matrix") -> None:
    """matrix[i, j]: examples of true class i predicted as j -> PNG with counts in the cells and a colour
    bar from the matrix's smallest to its largest count."""
    size = max(3.5, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    low, high = (matrix.min(), matrix.max()) if matrix.size else (0, 1)
    image = ax.imshow(matrix, cmap="Blues", vmin=low, vmax=high)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    limit = (low + high) / 2  # dark cells (the upper half of the colour scale) get white text
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > limit else "black", fontsize=8)
    fig.colorbar(image, ax=ax, label="examples", fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_patch_attention(images: np.ndarray, maps: np.ndarray, titles: list[str], path: Path,
                         title: str = "attention rollout") -> None:
    """images (K, H, W[, 3]) and maps (K, h, w) over the patch grid -> PNG: each image beside its map,
    the map stretched over the image."""
    k = len(images)
    cols = min(k, 4)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(4.2 * cols, 2.2 * rows), squeeze=False)
    for i in range(rows * cols):
        image_ax, map_ax = axes[i // cols][2 * (i % cols)], axes[i // cols][2 * (i % cols) + 1]
        image_ax.axis("off")
        map_ax.axis("off")
        if i >= k:
            continue
        image_ax.imshow(images[i], cmap="gray" if images[i].ndim == 2 else None)
        image_ax.set_title(titles[i], fontsize=8)
        heat = map_ax.imshow(maps[i], cmap="inferno")  # each map on its own scale: its own min to max
        map_ax.set_title("attention", fontsize=8)
        fig.colorbar(heat, ax=map_ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
