"""COCO folders for object detection: read one into arrays, write detections as COCO results, and score
them with pycocotools' COCOeval (Lin et al. 2014, "Microsoft COCO: Common Objects in Context").

A COCO folder is ``DIR/images/`` (the image files) and its instances JSON: ``DIR/instances.json``, or
else the one file matching ``instances*.json`` in ``DIR`` or ``DIR/annotations/``. Each image's
``file_name`` is relative to ``images/``; each annotation's ``bbox`` is ``[x, y, w, h]`` in pixels.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from ..errors import DataError

IMAGES_DIR = "images"
ANNOTATION_FILE = "instances.json"
BORDER_TOLERANCE = 1.0  # pixels a box may overhang the image before it is refused (it is clipped)
METRICS = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large")  # COCOeval's stats[0:6]


@dataclass
class Detections:
    """A COCO folder read into memory.

    images: (N, C, S, S) float32 in [0, 1], each image resized to S × S (C = 1 grey, 3 RGB).
    targets: per image {"labels": int64 (n,) in [0, len(categories)), "boxes": float32 (n, 4)
        normalised (cx, cy, w, h) in [0, 1] of the original image}; crowd annotations left out.
    sizes: each image's original (width, height).
    categories: [{"id", "name"}] sorted by id; label i is categories[i].
    """

    images: np.ndarray
    targets: list[dict]
    image_ids: list[int]
    file_names: list[str]
    sizes: list[tuple[int, int]]
    categories: list[dict]
    annotation_file: Path
    # The checked annotations as COCO's API takes them (every annotation with its id, area and iscrowd,
    # boxes clipped): what ``evaluate`` scores against, whatever becomes of the file after reading.
    ground_truth: dict

    def subset(self, rows) -> "Detections":
        """The images at ``rows`` (their ground truth the same: score them with ``image_ids``)."""
        rows = [int(r) for r in rows]
        return Detections(self.images[rows], [self.targets[r] for r in rows], [self.image_ids[r] for r in rows],
                          [self.file_names[r] for r in rows], [self.sizes[r] for r in rows], self.categories,
                          self.annotation_file, self.ground_truth)


def find_annotation_file(folder: Path) -> Path:
    """``folder/instances.json``, or the one ``instances*.json`` in ``folder`` or ``folder/annotations``."""
    folder = Path(folder)
    if (folder / ANNOTATION_FILE).is_file():
        return folder / ANNOTATION_FILE
    found = sorted(p for d in (folder, folder / "annotations") if d.is_dir() for p in d.glob("instances*.json"))
    if not found:
        raise DataError(f"{folder} has no instances JSON (instances.json, or instances*.json in it or in "
                        f"its annotations/ folder)")
    if len(found) > 1:
        raise DataError(f"{folder} has {len(found)} instances JSON files, keep one: "
                        f"{', '.join(str(p) for p in found)}")
    return found[0]


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path} is not valid JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a COCO instances file: a JSON object is expected")
    missing = [key for key in ("images", "annotations", "categories") if not isinstance(data.get(key), list)]
    if missing:
        raise DataError(f"{path} is not a COCO instances file: no list {', '.join(repr(k) for k in missing)}")
    return data


def _finite_number(value) -> bool:
    """A JSON number (int or float, not true/false) that is neither NaN nor infinite."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) < 2 ** 1023  # within what a float holds (math.isfinite overflows past it)
    return isinstance(value, float) and math.isfinite(value)


def _fields(path: Path, kind: str, index: int, record, fields: dict[str, type | tuple]) -> dict:
    """``record``'s ``fields``, each of its type; a DataError naming the record otherwise."""
    name = f"{kind} {record.get('id', f'#{index}')}" if isinstance(record, dict) else f"{kind} #{index}"
    if not isinstance(record, dict):
        raise DataError(f"{path}: {name} is not a JSON object")
    for field, kinds in fields.items():
        value = record.get(field)
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise DataError(f"{path}: {name} has no valid {field!r} (got {value!r})")
    return record


def _categories(path: Path, data: dict, given: list[dict] | None) -> tuple[list[dict], dict[int, int]]:
    """The folder's categories sorted by id (or ``given``, which must hold them) and {category id: label}."""
    own = {}
    for index, record in enumerate(data["categories"]):
        record = _fields(path, "category", index, record, {"id": int, "name": str})
        if record["id"] in own:
            raise DataError(f"{path}: category id {record['id']} appears twice")
        if (other := next((i for i, name in own.items() if name == record["name"]), None)) is not None:
            raise DataError(f"{path}: categories {other} and {record['id']} are both named {record['name']!r}; "
                            f"predictions name a class by its name, so give each its own")
        own[record["id"]] = record["name"]
    if given is None:
        categories = [{"id": i, "name": own[i]} for i in sorted(own)]
    else:
        categories = [{"id": int(c["id"]), "name": str(c["name"])} for c in given]
        known = {c["id"]: c["name"] for c in categories}
        listed = ", ".join(f"{i}={name}" for i, name in known.items())
        for i, name in sorted(own.items()):
            if known.get(i) != name:
                raise DataError(f"{path}: category {i} ({name!r}) is not among the model's categories ({listed})")
    # an annotation's category must be one the file declares, also when the model knows more of them
    return categories, {c["id"]: label for label, c in enumerate(categories) if c["id"] in own}


def _image_path(images_dir: Path, path: Path, image_id: int, file_name: str) -> Path:
    parts = PurePosixPath(file_name.replace("\\", "/")).parts
    if not file_name or PurePosixPath(file_name).is_absolute() or PureWindowsPath(file_name).is_absolute() \
            or ".." in parts:
        raise DataError(f"{path}: image {image_id} file_name {file_name!r} must stay inside {images_dir}")
    return images_dir.joinpath(*parts)


def _read_image(file: Path, image_id: int, image_size: int, grey: bool) -> tuple[np.ndarray, tuple[int, int]]:
    from .images import read_image_and_size

    if not file.is_file():
        raise DataError(f"image {image_id}: file {file} is missing")
    return read_image_and_size(file, image_size, grey)  # refuses decompression bombs and unreadable files


def read_coco(folder: str | Path, *, image_size: int, grey: bool = True,
              categories: list[dict] | None = None) -> Detections:
    """A COCO folder as :class:`Detections`, each image resized to ``image_size`` square.

    categories: a trained model's list; the folder's categories must be among them (by id and name) and
    labels then index that list. An image without annotations has an empty target. A box may overhang
    its image by BORDER_TOLERANCE pixels; it is clipped to the image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is a file, not a COCO folder (images/ and an instances JSON)" if folder.exists()
                        else f"COCO folder not found: {folder}")
    images_dir = folder / IMAGES_DIR
    if not images_dir.is_dir():
        raise DataError(f"{folder} has no {IMAGES_DIR}/ folder")
    path = find_annotation_file(folder)
    data = _load_json(path)
    categories, label_of = _categories(path, data, categories)

    records = {}
    for index, record in enumerate(data["images"]):
        record = _fields(path, "image", index, record, {"id": int, "file_name": str})
        if record["id"] in records:
            raise DataError(f"{path}: image id {record['id']} appears twice")
        records[record["id"]] = record
    if not records:
        raise DataError(f"{path} lists no images")

    arrays, sizes, file_names = [], [], []
    listed: dict[Path, int] = {}  # file -> the first image id naming it
    for image_id, record in records.items():
        file = _image_path(images_dir, path, image_id, record["file_name"])
        if (first := listed.setdefault(file, image_id)) != image_id:
            raise DataError(f"{path}: images {first} and {image_id} are the same file {record['file_name']!r}; "
                            f"listed twice, it could be trained on and held out at once")
        array, (width, height) = _read_image(file, image_id, image_size, grey)
        given = record.get("width", width), record.get("height", height)
        if not all(_finite_number(v) and v == int(v) for v in given):  # 640.0 is fine
            raise DataError(f"{path}: image {image_id}'s width and height must be whole numbers; got "
                            f"{record.get('width')!r} and {record.get('height')!r}")
        if given != (width, height):
            raise DataError(f"{path}: image {image_id} is {record.get('width')}×{record.get('height')} in the "
                            f"JSON but {file} is {width}×{height}")
        arrays.append(array)
        sizes.append((width, height))
        file_names.append(record["file_name"])

    size_of = dict(zip(records, sizes))
    boxes: dict[int, list[list[float]]] = {i: [] for i in records}
    labels: dict[int, list[int]] = {i: [] for i in records}
    truth: list[dict] = []
    given_ids = [a.get("id") for a in data["annotations"] if isinstance(a, dict) and isinstance(a.get("id"), int)]
    fresh_id = max(given_ids, default=0)
    seen_ids: set[int] = set()
    for index, record in enumerate(data["annotations"]):
        record = _fields(path, "annotation", index, record, {"image_id": int, "category_id": int, "bbox": list})
        name = f"{path}: annotation {record.get('id', f'#{index}')}"
        if record["image_id"] not in records:
            raise DataError(f"{name}: image_id {record['image_id']} is not among the images")
        if record["category_id"] not in label_of:
            raise DataError(f"{name}: category_id {record['category_id']} is not among the categories")
        box = _clipped_box(name, record["bbox"], size_of[record["image_id"]])
        annotation_id = record.get("id")
        if not isinstance(annotation_id, int) or isinstance(annotation_id, bool):
            if annotation_id is not None:
                raise DataError(f"{name}: id {annotation_id!r} is not a whole number")
            fresh_id += 1  # COCO's evaluation needs an id for every annotation: one no other has
            annotation_id = fresh_id
        elif annotation_id in seen_ids:
            raise DataError(f"{path}: annotation id {annotation_id} appears twice")
        seen_ids.add(annotation_id)
        area = record.get("area", box[2] * box[3])
        if not _finite_number(area) or area < 0:
            raise DataError(f"{name}: area {area!r} is not a number of pixels")
        crowd = record.get("iscrowd", 0)
        if isinstance(crowd, str) or crowd not in (0, 1):  # 0, 1, 0.0, 1.0, false, true
            raise DataError(f"{name}: iscrowd {crowd!r} is neither 0 nor 1")
        truth.append({"id": annotation_id, "image_id": record["image_id"], "category_id": record["category_id"],
                      "bbox": box, "area": float(area), "iscrowd": int(crowd)})
        if crowd:
            continue  # a crowd region is no object to find; COCOeval ignores detections on it
        boxes[record["image_id"]].append(box)
        labels[record["image_id"]].append(label_of[record["category_id"]])
    if not any(boxes.values()):  # mAP would be -1 (undefined) and training would learn "no object" only
        raise DataError(f"{path}: no object is annotated (crowd regions left out); a detector learns and is "
                        f"scored on annotated boxes")

    targets = []
    for image_id, (width, height) in zip(records, sizes):
        xywh = np.asarray(boxes[image_id], dtype=np.float64).reshape(-1, 4)
        centres = xywh[:, :2] + xywh[:, 2:] / 2
        normalised = np.concatenate([centres, xywh[:, 2:]], axis=1) / [width, height, width, height]
        targets.append({"labels": np.asarray(labels[image_id], dtype=np.int64),
                        "boxes": normalised.astype(np.float32)})
    ground_truth = {"images": [{"id": i, "file_name": f, "width": w, "height": h}
                               for i, f, (w, h) in zip(records, file_names, sizes)],
                    "annotations": truth,
                    "categories": [{"id": int(c["id"]), "name": str(c["name"])} for c in data["categories"]]}
    return Detections(np.stack(arrays), targets, list(records), file_names, sizes, categories, path, ground_truth)


def _clipped_box(name: str, bbox: list, size: tuple[int, int]) -> list[float]:
    """``bbox`` [x, y, w, h] clipped to the image; refused when w or h ≤ 0 or it overhangs by more than
    BORDER_TOLERANCE."""
    width, height = size
    if len(bbox) != 4 or not all(_finite_number(v) for v in bbox):
        raise DataError(f"{name}: bbox {bbox!r} is not four numbers [x, y, w, h]")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise DataError(f"{name}: bbox {bbox!r} has a width or height ≤ 0")
    if x < -BORDER_TOLERANCE or y < -BORDER_TOLERANCE or x + w > width + BORDER_TOLERANCE \
            or y + h > height + BORDER_TOLERANCE:
        raise DataError(f"{name}: bbox {bbox!r} lies outside its {width}×{height} image")
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        raise DataError(f"{name}: bbox {bbox!r} lies outside its {width}×{height} image")
    return [x0, y0, x1 - x0, y1 - y0]


def to_pixel_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Normalised (cx, cy, w, h), shape (n, 4), as COCO's [x, y, w, h] in pixels of a (width, height) image,
    clipped to the image (as the ground truth is: a predicted box may overhang it)."""
    width, height = size
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * [width, height, width, height]
    top_left = np.clip(boxes[:, :2] - boxes[:, 2:] / 2, 0, [width, height])
    bottom_right = np.clip(boxes[:, :2] + boxes[:, 2:] / 2, 0, [width, height])
    return np.concatenate([top_left, bottom_right - top_left], axis=1)


def to_coco_results(boxes: list[np.ndarray], scores: list[np.ndarray], labels: list[np.ndarray],
                    image_ids: list[int], categories: list[dict]) -> list[dict]:
    """Detections, one entry per image (boxes (n, 4) [x, y, w, h] in pixels, scores (n,), labels (n,)
    indexing ``categories``), as COCO results: [{"image_id", "category_id", "bbox", "score"}]."""
    results = []
    for image_boxes, image_scores, image_labels, image_id in zip(boxes, scores, labels, image_ids, strict=True):
        for box, score, label in zip(np.asarray(image_boxes).reshape(-1, 4), np.asarray(image_scores).reshape(-1),
                                     np.asarray(image_labels).reshape(-1), strict=True):
            results.append({"image_id": int(image_id), "category_id": int(categories[int(label)]["id"]),
                            "bbox": [round(float(v), 3) for v in box], "score": round(float(score), 5)})
    return results


def write_results(path: str | Path, results: list[dict]) -> None:
    """COCO results as a JSON file, written atomically."""
    from ..io import write_json

    write_json(Path(path), results)


def evaluate(annotation_file: str | Path | dict, results: list[dict],
             image_ids: list[int] | None = None) -> dict[str, float]:
    """COCO's box metrics of ``results`` against ``annotation_file`` (or a ground truth already read,
    :attr:`Detections.ground_truth`): {"map": AP@[.5:.95], "map_50",
    "map_75", "map_small", "map_medium", "map_large"} (COCOeval's first six stats), over the images
    ``image_ids`` (default: every image the file lists).

    A metric is -1.0 where pycocotools has nothing to average, e.g. map_large when no object is large.
    No results at all score 0 (and -1 where there are no such objects), without calling loadRes, which
    cannot take an empty list.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(annotation_file, dict):
            truth = COCO()
            truth.dataset = copy.deepcopy(annotation_file)  # COCO's loadRes adds keys to what it is given
            truth.createIndex()
        else:
            truth = COCO(str(annotation_file))
        if results:
            unknown = sorted({r["image_id"] for r in results} - set(truth.getImgIds()))
            if unknown:
                source = "the ground truth" if isinstance(annotation_file, dict) else annotation_file
                raise DataError(f"results name images {unknown[:5]} that {source} does not list")
            detections = truth.loadRes([dict(r, bbox=list(r["bbox"])) for r in results])  # it adds keys
        else:
            detections = COCO()  # COCOeval asks the detections for their annotations only
            detections.dataset = {"annotations": []}
            detections.createIndex()
        evaluation = COCOeval(truth, detections, "bbox")
        if image_ids is not None:
            evaluation.params.imgIds = sorted(int(i) for i in image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: float(value) for name, value in zip(METRICS, evaluation.stats)}  # zip stops after METRICS: stats[0:6]
