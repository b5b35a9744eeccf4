import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

import seqlab.data.digits_detection as digits_detection
from seqlab.data.digits_detection import SPLITS, source_indices, write_digits_detection
from seqlab.errors import DataError

SIZE = 96


def box_iou(a, b):
    """Pairwise IoU of [x, y, w, h] boxes, written out here as the test's own reference."""
    a, b = np.asarray(a, float)[:, None], np.asarray(b, float)[None]  # (n, 1, 4), (1, m, 4)
    low = np.maximum(a[..., :2], b[..., :2])
    high = np.minimum(a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:])
    inter = np.clip(high - low, 0, None).prod(-1)
    return inter / (a[..., 2:].prod(-1) + b[..., 2:].prod(-1) - inter)


def test_box_iou_reference():
    assert box_iou([[0, 0, 10, 10]], [[5, 0, 10, 10], [0, 0, 10, 10], [20, 20, 5, 5]]).tolist() == [[1 / 3, 1.0, 0.0]]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    folders = write_digits_detection(root, n_train=20, n_valid=6, n_test=8, seed=3, size=SIZE)
    return root, folders, {s: json.loads((f / "instances.json").read_text()) for s, f in folders.items()}


def test_boxes_are_inside_sized_and_apart(generated):
    _, folders, coco = generated
    assert sorted(folders) == sorted(SPLITS) and len(coco["train"]["images"]) == 20
    counts = []
    for data in coco.values():
        assert [c["id"] for c in data["categories"]] == list(range(1, 11))
        assert [c["name"] for c in data["categories"]] == [str(d) for d in range(10)]
        for image in data["images"]:
            boxes = [a["bbox"] for a in data["annotations"] if a["image_id"] == image["id"]]
            assert 1 <= len(boxes) <= 5
            counts.append(len(boxes))
            for x, y, w, h in boxes:
                assert w == h and 16 <= w <= 32 and x >= 0 and y >= 0 and x + w <= SIZE and y + h <= SIZE
            iou = box_iou(boxes, boxes)
            assert (iou[~np.eye(len(boxes), dtype=bool)] <= 0.1 + 1e-9).all()
    assert len(set(counts)) >= 3


def test_source_digits_are_disjoint_and_labels_match(generated):
    _, _, coco = generated
    indices = source_indices(3)
    sets = [set(indices[s].tolist()) for s in SPLITS]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sum(len(s) for s in sets) == 1797
    assert [round(len(s) / 1797, 1) for s in sets] == [0.7, 0.1, 0.2]
    target = load_digits().target
    for split in SPLITS:
        for annotation in coco[split]["annotations"]:
            assert annotation["source_index"] in sets[SPLITS.index(split)]
            assert annotation["category_id"] == target[annotation["source_index"]] + 1


def test_pixels_in_a_box_are_the_upscaled_digit(generated):
    _, folders, coco = generated
    digits = load_digits().images / 16.0
    checked = 0
    for split in SPLITS:
        for image in coco[split]["images"]:
            pixels = np.asarray(Image.open(folders[split] / "images" / image["file_name"]), dtype=float) / 255
            assert pixels.shape == (SIZE, SIZE)
            boxes = [a for a in coco[split]["annotations"] if a["image_id"] == image["id"]]
            covered = np.zeros_like(pixels, dtype=bool)
            for a in boxes:
                x, y, w, h = a["bbox"]
                covered[y:y + h, x:x + w] = True
            assert pixels[covered].mean() > pixels[~covered].mean() + 0.1  # bright digits on a dark ground
            assert pixels[~covered].mean() < 0.05
            overlaps = box_iou([a["bbox"] for a in boxes], [a["bbox"] for a in boxes]) > 0
            for a in (a for a, row in zip(boxes, overlaps) if row.sum() == 1):  # a box touching no other
                x, y, w, h = a["bbox"]
                digit = torch.tensor(digits[a["source_index"]])[None, None]
                reference = torch.nn.functional.interpolate(digit, size=(h, w), mode="bilinear")[0, 0].numpy()
                assert np.abs(pixels[y:y + h, x:x + w] - reference).mean() < 0.06
                checked += 1
    assert checked > 10


def test_same_seed_same_bytes_other_seed_other_bytes(generated, tmp_path):
    _, folders, _ = generated
    again = write_digits_detection(tmp_path / "a", n_train=20, n_valid=6, n_test=8, seed=3, size=SIZE)
    other = write_digits_detection(tmp_path / "b", n_train=20, n_valid=6, n_test=8, seed=4, size=SIZE)
    for split in SPLITS:
        files = sorted(p.relative_to(folders[split]) for p in folders[split].rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(again[split]) for p in again[split].rglob("*") if p.is_file())
        assert all((folders[split] / f).read_bytes() == (again[split] / f).read_bytes() for f in files)
        assert (folders[split] / "instances.json").read_bytes() != (other[split] / "instances.json").read_bytes()
        assert (folders[split] / "images/000001.png").read_bytes() != (other[split] / "images/000001.png").read_bytes()
    assert not np.array_equal(source_indices(3)["test"], source_indices(4)["test"])


def test_a_complete_split_is_reused(generated, monkeypatch):
    root, folders, _ = generated
    stamp = (folders["train"] / "instances.json").stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(digits_detection, "_generate", refuse)
    assert write_digits_detection(root, n_train=20, n_valid=6, n_test=8, seed=3, size=SIZE) == folders
    assert (folders["train"] / "instances.json").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match=r"train exists but is not digits-detection data"):
        write_digits_detection(root, n_train=21, n_valid=6, n_test=8, seed=3, size=SIZE)


def test_an_interrupted_generation_leaves_nothing_half_made(tmp_path, monkeypatch):
    real = digits_detection.upscale
    calls = []

    def fail_midway(digit, side):
        calls.append(side)
        if len(calls) == 15:
            raise KeyboardInterrupt
        return real(digit, side)

    monkeypatch.setattr(digits_detection, "upscale", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        write_digits_detection(tmp_path, n_train=20, n_valid=2, n_test=2)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(digits_detection, "upscale", real)
    folders = write_digits_detection(tmp_path, n_train=3, n_valid=2, n_test=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SPLITS)
    assert len(json.loads((folders["train"] / "instances.json").read_text())["images"]) == 3


def test_a_canvas_too_small_is_refused(tmp_path):
    with pytest.raises(DataError, match="at least 32 pixels"):
        write_digits_detection(tmp_path, size=20)


def test_a_cached_split_is_read_as_utf8_whatever_the_locale(tmp_path, ascii_locale):
    """A split whose instances.json someone re-saved with non-ASCII text (its info untouched) is still
    this generator's: the file is read as UTF-8 even where the locale's encoding is ASCII."""

    folders = write_digits_detection(tmp_path, n_train=1, n_valid=1, n_test=1, size=32)
    path = folders["train"] / "instances.json"
    coco = json.loads(path.read_text(encoding="utf-8"))
    coco["categories"][0]["name"] = "zéro"
    path.write_bytes(json.dumps(coco, ensure_ascii=False).encode("utf-8"))

    with ascii_locale():
        assert write_digits_detection(tmp_path, n_train=1, n_valid=1, n_test=1, size=32) == folders


def test_the_json_records_by_hand(generated):
    root, folders, coco = generated
    counts, sides = set(), set()
    for split, n_images in zip(SPLITS, (20, 6, 8)):
        data = coco[split]
        assert data["info"] == {"description": digits_detection.GENERATOR, "split": split, "images": n_images,
                                "seed": 3, "size": SIZE}
        assert (folders[split] / "instances.json").read_text(encoding="utf-8").endswith("}\n")
        assert data["images"] == [{"id": i, "file_name": f"{i:06d}.png", "width": SIZE, "height": SIZE}
                                  for i in range(1, n_images + 1)]
        assert [a["id"] for a in data["annotations"]] == list(range(1, len(data["annotations"]) + 1))
        for a in data["annotations"]:
            assert set(a) == {"id", "image_id", "category_id", "bbox", "area", "iscrowd", "source_index"}
            assert a["area"] == a["bbox"][2] * a["bbox"][3] and a["iscrowd"] == 0
            sides.add(a["bbox"][2])
        counts |= {sum(a["image_id"] == i["id"] for a in data["annotations"]) for i in data["images"]}
        brightest = max(np.asarray(Image.open(folders[split] / "images" / i["file_name"])).max() for i in data["images"])
        assert brightest == 255  # a full-ink stroke plus noise, clipped at 1.0
    assert {1, 5} <= counts and {16, 32} <= sides


def test_upscale_is_bilinear_as_torch_computes_it():
    digit = load_digits().images[0] / 16.0
    reference = torch.nn.functional.interpolate(torch.tensor(digit)[None, None], size=(24, 24), mode="bilinear")
    assert np.allclose(digits_detection.upscale(digit, 24), reference[0, 0].numpy(), atol=1e-5)


def test_defaults_and_missing_parents(tmp_path, monkeypatch):
    made = []

    def record(folder, sources, n_images, rng, size, info):
        folder.mkdir(parents=True)
        made.append(info)

    monkeypatch.setattr(digits_detection, "_generate", record)
    write_digits_detection(tmp_path / "a" / "b")
    assert [(i["images"], i["seed"], i["size"]) for i in made] == [(2000, 0, 96), (300, 0, 96), (500, 0, 96)]
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == sorted(SPLITS)
    assert np.array_equal(source_indices()["test"], source_indices(0)["test"])


def test_a_stale_temporary_folder_is_cleared_first(tmp_path):
    import os

    stale = tmp_path / f".train.tmp-{os.getpid()}"
    (stale / "images").mkdir(parents=True)
    (stale / "junk").write_text("x")
    folders = write_digits_detection(tmp_path, n_train=1, n_valid=1, n_test=1, size=32)
    assert not (folders["train"] / "junk").exists() and not stale.exists()


class ConstantNoise:
    """A generator whose noise is a constant +0.02: a background pixel is then round(0.02 * 255) = 5."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def integers(self, *args, **kwargs):
        return self.rng.integers(*args, **kwargs)

    def choice(self, *args, **kwargs):
        return self.rng.choice(*args, **kwargs)

    def normal(self, loc, scale, shape):
        return np.full(shape, 0.02)


def test_noise_is_added_to_the_canvas(tmp_path):
    digits_detection._generate(tmp_path / "x", np.arange(10), 1, ConstantNoise(0), 64, {})
    pixels = np.asarray(Image.open(tmp_path / "x" / "images" / "000001.png"))
    assert pixels.min() == 5  # an unlit pixel (background or a digit's zero) plus the noise, not minus it


def test_a_digit_with_no_free_place_is_skipped_not_the_rest(tmp_path, monkeypatch):
    real = digits_detection._place
    refused = []

    def refuse_first(rng, boxes, side, size):
        if not any(b is boxes for b in refused):
            refused.append(boxes)
            return None
        return real(rng, boxes, side, size)

    monkeypatch.setattr(digits_detection, "_place", refuse_first)
    digits_detection._generate(tmp_path / "x", np.arange(1797), 10, np.random.default_rng(1), 96, {})
    coco = json.loads((tmp_path / "x" / "instances.json").read_text())
    assert len(coco["annotations"]) > 0


def test_place_accepts_an_iou_of_exactly_the_limit():
    class Fixed:
        def integers(self, low, high, size):
            assert (low, high, size) == (0, 20 - 11 + 1, 2)
            return np.array([9, 0])

    # [9, 0, 11, 11] against [0, 0, 11, 11]: intersection 2 * 11 = 22, union 121 + 121 - 22 = 220, IoU 0.1
    assert digits_detection._place(Fixed(), [[0, 0, 11, 11]], 11, 20) == [9, 0, 11, 11]
    assert digits_detection._place(Fixed(), [[0, 0, 12, 11]], 11, 20) is None  # 33 / 220 > 0.1
