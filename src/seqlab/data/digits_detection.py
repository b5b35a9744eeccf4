"""The built-in detection data set: scikit-learn's 8×8 digits, upscaled and scattered over a dark canvas,
made at run time (no download) as three COCO folders (see coco.py).

Each image is a ``size × size`` grey canvas holding 1–5 digits, each upscaled bilinearly to a square of
16–32 pixels and pasted fully inside the canvas, no two boxes overlapping by an IoU above 0.1, over
light Gaussian noise (σ = 0.05, clipped to [0, 1]). A box is the pasted square, ``[x, y, w, h]`` in
pixels; category ``d + 1`` is the digit ``d`` (COCO's ids start at 1). The training, validation and test
images are drawn from disjoint sets of source digits (:func:`source_indices`), so a test score is never
a score on a digit seen in training. Same seed, same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import DataError
from .coco import ANNOTATION_FILE, IMAGES_DIR

SPLITS = ("train", "valid", "test")
FRACTIONS = (0.7, 0.1, 0.2)  # of each digit class's source images, in SPLITS' order
MIN_SIDE, MAX_SIDE = 16, 32
MAX_DIGITS = 5
MAX_OVERLAP = 0.1  # the largest IoU two boxes of one image may share
PLACEMENT_TRIES = 50  # a digit that finds no free place in this many draws is left out
NOISE = 0.05
GENERATOR = "seqlab digits_detection v1"


def source_indices(seed: int = 0) -> dict[str, np.ndarray]:
    """{split: sorted indices into scikit-learn's 1,797 digits}: each class cut 70/10/20 by a permutation
    drawn from ``seed``, so the three sets are disjoint and every digit appears in each."""
    from .images import load_digits

    _, labels, _ = load_digits()
    rng = np.random.default_rng([seed, 1797])
    parts: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        cuts = np.round(np.cumsum(FRACTIONS)[:-1] * len(members)).astype(int)
        for split, chunk in zip(SPLITS, np.split(members, cuts)):
            parts[split].append(chunk)
    return {split: np.sort(np.concatenate(chunks)) for split, chunks in parts.items()}


def upscale(digit: np.ndarray, side: int) -> np.ndarray:
    """An (8, 8) float image in [0, 1] as (side, side), bilinear (Pillow's resampling)."""
    from PIL import Image

    return np.asarray(Image.fromarray(digit.astype(np.float32)).resize((side, side), Image.BILINEAR))


def _place(rng: np.random.Generator, boxes: list[list[int]], side: int, size: int) -> list[int] | None:
    """A free square ``[x, y, side, side]`` fully inside the canvas, or None after PLACEMENT_TRIES draws."""
    from pycocotools import mask

    taken = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for _ in range(PLACEMENT_TRIES):
        x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        box = [x, y, side, side]
        if not len(taken) or mask.iou(np.asarray([box], np.float64), taken, [0] * len(taken)).max() <= MAX_OVERLAP:
            return box
    return None


def _generate(folder: Path, sources: np.ndarray, n_images: int, rng: np.random.Generator, size: int,
              info: dict) -> None:
    from PIL import Image

    from .images import load_digits

    digits, labels, names = load_digits()
    (folder / IMAGES_DIR).mkdir(parents=True)
    images, annotations = [], []
    for image_id in range(1, n_images + 1):
        canvas = np.zeros((size, size), dtype=np.float32)
        boxes: list[list[int]] = []
        for _ in range(int(rng.integers(1, MAX_DIGITS + 1))):
            index = int(rng.choice(sources))
            side = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
            box = _place(rng, boxes, side, size)
            if box is None:
                continue
            x, y = box[:2]
            # np.maximum: where two boxes touch (IoU ≤ 0.1), the brighter stroke wins, as light adds up.
            canvas[y:y + side, x:x + side] = np.maximum(canvas[y:y + side, x:x + side], upscale(digits[index, 0], side))
            boxes.append(box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": int(labels[index]) + 1, "bbox": box, "area": side * side,
                                "iscrowd": 0, "source_index": index})
        canvas = np.clip(canvas + rng.normal(0.0, NOISE, canvas.shape), 0.0, 1.0)
        file_name = f"{image_id:06d}.png"
        Image.fromarray(np.round(canvas * 255).astype(np.uint8)).save(folder / IMAGES_DIR / file_name)
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
    coco = {"info": info, "images": images, "annotations": annotations,
            "categories": [{"id": d + 1, "name": name} for d, name in enumerate(names)]}
    # Written last: its presence marks the folder complete.
    (folder / ANNOTATION_FILE).write_text(json.dumps(coco) + "\n", encoding="utf-8")


def write_digits_detection(root: Path, *, n_train: int = 2000, n_valid: int = 300, n_test: int = 500,
                           seed: int = 0, size: int = 96) -> dict[str, Path]:
    """root/train, root/valid, root/test — each a COCO folder (see coco.py) — and returns them.

    A split whose folder is already complete (its instances.json present, made with the same settings) is
    reused: generation is a cache. Each split is made in a hidden sibling folder and renamed into place,
    so an interrupted generation leaves no half-made split behind.
    """
    if size < MAX_SIDE:
        raise DataError(f"digits detection needs images of at least {MAX_SIDE} pixels a side; got {size}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    indices = source_indices(seed)
    folders = {}
    for number, (split, n_images) in enumerate(zip(SPLITS, (n_train, n_valid, n_test))):
        folder = folders[split] = root / split
        info = {"description": GENERATOR, "split": split, "images": n_images, "seed": seed, "size": size}
        if folder.exists():
            _check_cached(folder, info)
            continue
        tmp = root / f".{split}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _generate(tmp, indices[split], n_images, np.random.default_rng([seed, number]), size, info)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folders


def _check_cached(folder: Path, info: dict) -> None:
    """A folder already in place must be one this generator made with the same settings."""
    try:
        found = json.loads((folder / ANNOTATION_FILE).read_text(encoding="utf-8")).get("info")
    except (OSError, ValueError, AttributeError):
        found = None
    if found != info:
        raise DataError(f"{folder} exists but is not digits-detection data made with {info}; delete it or "
                        f"choose another folder")
