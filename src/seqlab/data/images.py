"""Images for classification: scikit-learn's bundled 8×8 digits, or a folder with one sub-folder per
class read with Pillow."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """1,797 grey 8×8 images scaled to [0, 1], shape (N, 1, 8, 8); labels 0-9."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    return images, digits.target.astype(np.int64), [str(d) for d in range(10)]


def read_image(path: Path, size: int, grey: bool) -> np.ndarray:
    """One image as (C, size, size) float32 in [0, 1]."""
    return read_image_and_size(path, size, grey)[0]


def read_image_and_size(path: Path, size: int, grey: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as (C, size, size) float32 in [0, 1], and its own (width, height) before resizing (a
    detector gives its boxes back in those pixels)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; any image over it is refused here,
            # before its pixels are decoded (a small file may declare 20,000 × 20,000: a decompression bomb).
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                own_size = image.size
                image = eight_bit(image).convert("L" if grey else "RGB").resize((size, size))
                array = np.asarray(image, dtype=np.float32) / 255.0
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        declared = re.search(r"\((\d+) pixels\)", str(error))
        declared = f"{int(declared[1]):,} pixels" if declared else "too many pixels"
        raise DataError(f"image {path} declares {declared}, more than the {Image.MAX_IMAGE_PIXELS:,} that are "
                        f"read (a decompression bomb?); shrink it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise DataError(f"cannot read image {path}: {error}") from None
    return (array[None] if grey else array.transpose(2, 0, 1)), own_size


SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # "I": how Pillow may open a 16-bit PNG


def eight_bit(image):
    """A 16-bit greyscale image scaled to 8 bits (0-65,535 to 0-255); any other image as it is. Pillow's
    own conversion to "L" clips instead, so every value above 255 would read as white."""
    from PIL import Image

    if image.mode not in SIXTEEN_BIT:
        return image
    values = np.asarray(image, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(values * (255 / 65535)), 0, 255).astype(np.uint8), "L")


def image_files(root: str | Path, min_classes: int = 2) -> dict[str, list[Path]]:
    """root/CLASS/*.png … -> {class name: its image files}, classes in sorted order, empty folders left out."""
    root = Path(root)
    if root.is_file():
        raise DataError(f"{root} is a file; give a folder with one sub-folder of images per class "
                        f"(root/CLASS/image.png)")
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {c: sorted(f for f in (root / c).iterdir() if f.suffix.lower() in EXTENSIONS) for c in classes}
    files = {c: paths for c, paths in files.items() if paths}
    if len(files) < min_classes:
        raise DataError(f"{root} needs at least {'two sub-folders' if min_classes > 1 else 'one sub-folder'} of "
                        f"images, one per class; found {len(files)} ({', '.join(files) or 'none'})")
    return files


def load_image_folder(root: str | Path, size: int, grey: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """root/CLASS/*.png … -> images (N, C, size, size), labels (N,), class names (sorted folder names)."""
    files = image_files(root)
    images, labels = [], []
    for label, paths in enumerate(files.values()):
        for path in paths:
            images.append(read_image(path, size, grey))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), list(files)
