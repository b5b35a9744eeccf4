import copy
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from seqlab.data.coco import evaluate, read_coco, to_coco_results, to_pixel_boxes, write_results
from seqlab.data.digits_detection import write_digits_detection
from seqlab.errors import DataError

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = write_digits_detection(tmp_path_factory.mktemp("digits"), n_train=12, n_valid=2, n_test=2, seed=1)["train"]
    return folder, json.loads((folder / "instances.json").read_text())


def test_read_coco_round_trips_the_boxes(digits):
    folder, coco = digits
    data = read_coco(folder, image_size=48)
    assert data.images.shape == (12, 1, 48, 48) and data.images.dtype == np.float32
    assert 0 <= data.images.min() and data.images.max() <= 1
    assert data.image_ids == [i["id"] for i in coco["images"]] and data.sizes == [(96, 96)] * 12
    assert data.categories == [{"id": d + 1, "name": str(d)} for d in range(10)]
    assert data.annotation_file == folder / "instances.json"
    for image_id, target, size in zip(data.image_ids, data.targets, data.sizes):
        annotations = [a for a in coco["annotations"] if a["image_id"] == image_id]
        assert target["boxes"].dtype == np.float32 and target["labels"].dtype == np.int64
        assert ((0 <= target["boxes"]) & (target["boxes"] <= 1)).all()
        np.testing.assert_allclose(to_pixel_boxes(target["boxes"], size), [a["bbox"] for a in annotations], atol=1e-4)
        assert target["labels"].tolist() == [a["category_id"] - 1 for a in annotations]


def test_ground_truth_scores_one_and_half_shifted_boxes_zero(digits, tmp_path):
    folder, coco = digits
    truth = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
             for a in coco["annotations"]]
    scores = evaluate(folder / "instances.json", truth)
    assert scores["map"] == pytest.approx(1.0) and scores["map_50"] == pytest.approx(1.0)
    assert scores["map_large"] == -1.0  # no digit is over 96² pixels: pycocotools' "no such objects"
    # Shifted right by half their width, each box meets its own at IoU (w/2·h) / (2wh − w/2·h) = 1/3.
    shifted = [dict(r, bbox=[r["bbox"][0] + r["bbox"][2] / 2, *r["bbox"][1:]]) for r in truth]
    scores = evaluate(folder / "instances.json", shifted)
    assert scores["map_50"] == 0.0 and scores["map"] == 0.0
    assert set(evaluate(folder / "instances.json", []).values()) <= {0.0, -1.0}


def test_results_made_from_targets_are_written_and_score_one(digits, tmp_path):
    folder, _ = digits
    data = read_coco(folder, image_size=32)
    boxes = [to_pixel_boxes(t["boxes"], s) for t, s in zip(data.targets, data.sizes)]
    scores = [np.ones(len(t["labels"])) for t in data.targets]
    results = to_coco_results(boxes, scores, [t["labels"] for t in data.targets], data.image_ids, data.categories)
    assert set(results[0]) == {"image_id", "category_id", "bbox", "score"}
    write_results(tmp_path / "results.json", results)
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert evaluate(data.annotation_file, results)["map"] == pytest.approx(1.0)


def make_folder(root, *, images=None, annotations=None, categories=None):
    """A tiny COCO folder: two 40×30 PNGs, the second without annotations."""
    (root / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(root / "images" / name)
    coco = {"images": images if images is not None else [{"id": 7, "file_name": "a.png", "width": 40, "height": 30},
                                                         {"id": 8, "file_name": "b.png"}],
            "annotations": annotations if annotations is not None else
            [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 10]},
             {"id": 2, "image_id": 7, "category_id": 1, "bbox": [-0.5, 0, 40.5, 30.8]}],
            "categories": categories if categories is not None else CATEGORIES}
    (root / "instances.json").write_text(json.dumps(coco))
    return root


def test_a_users_folder_reads_in_colour_with_clipping_and_an_empty_target(tmp_path):
    data = read_coco(make_folder(tmp_path / "coco"), image_size=16, grey=False)
    assert data.images.shape == (2, 3, 16, 16) and data.sizes == [(40, 30), (40, 30)]
    assert data.images[0, :, 0, 0] == pytest.approx([200 / 255] * 3)
    assert data.targets[0]["labels"].tolist() == [1, 0]
    # [10, 5, 20, 10] -> centre (20, 10) of 40×30; the second box is clipped to the whole image.
    np.testing.assert_allclose(data.targets[0]["boxes"], [[0.5, 1 / 3, 0.5, 1 / 3], [0.5, 0.5, 1, 1]], rtol=1e-6)
    assert data.targets[1]["boxes"].shape == (0, 4) and data.targets[1]["labels"].shape == (0,)


def test_a_trained_runs_categories_fix_the_labels(tmp_path):
    folder = make_folder(tmp_path / "coco")
    model = [{"id": 1, "name": "cat"}, {"id": 2, "name": "bird"}, {"id": 3, "name": "dog"}]
    assert read_coco(folder, image_size=8, categories=model).targets[0]["labels"].tolist() == [2, 0]
    with pytest.raises(DataError, match=r"category 3 \('dog'\) is not among the model's categories"):
        read_coco(folder, image_size=8, categories=[{"id": 1, "name": "cat"}, {"id": 3, "name": "wolf"}])
    # an annotation of a category the file does not declare is refused, though the model knows it
    undeclared = make_folder(tmp_path / "undeclared", categories=[{"id": 3, "name": "dog"}])
    with pytest.raises(DataError, match="category_id 1 is not among the categories"):
        read_coco(undeclared, image_size=8, categories=model)


def test_the_json_may_sit_in_annotations(tmp_path):
    folder = make_folder(tmp_path / "coco")
    (folder / "annotations").mkdir()
    (folder / "instances.json").rename(folder / "annotations" / "instances_val2017.json")
    assert read_coco(folder, image_size=8).annotation_file.name == "instances_val2017.json"
    (folder / "instances_train2017.json").write_text("{}")
    with pytest.raises(DataError, match="2 instances JSON files") as caught:
        read_coco(folder, image_size=8)
    assert "instances_train2017.json" in str(caught.value) and "instances_val2017.json" in str(caught.value)


def bad(case, root):
    """Spoil a fresh folder as ``case`` says; the message's expected words."""
    folder = root / "coco"
    if case == "no folder":
        return folder, "COCO folder not found"
    if case == "a file":
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.write_text("{}")
        return folder, "coco is a file, not a COCO folder"
    make_folder(folder)
    edits = {
        "no images dir": lambda: shutil.rmtree(folder / "images"),
        "no json": lambda: (folder / "instances.json").unlink(),
        "empty json": lambda: (folder / "instances.json").write_text(""),
        "invalid json": lambda: (folder / "instances.json").write_text('{"images": ['),
        "not coco": lambda: (folder / "instances.json").write_text('{"images": [], "annotations": []}'),
    }
    expected = {"no images dir": "no images/ folder", "no json": "no instances JSON",
                "empty json": "instances.json is not valid JSON", "invalid json": "instances.json is not valid JSON",
                "not coco": "no list 'categories'"}
    if case in edits:
        edits[case]()
        return folder, expected[case]
    image = {"id": 7, "file_name": "a.png"}
    note = {"id": 5, "image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5]}
    spoilt = {
        "unknown image": ({"annotations": [dict(note, image_id=9)]}, "annotation 5: image_id 9 is not among"),
        "unknown category": ({"annotations": [dict(note, category_id=2)]}, "annotation 5: category_id 2"),
        "zero width": ({"annotations": [dict(note, bbox=[1, 1, 0, 5])]}, r"annotation 5: bbox .* width or height"),
        "negative height": ({"annotations": [dict(note, bbox=[1, 1, 5, -2])]}, r"annotation 5: bbox .* width or"),
        "zero height": ({"annotations": [dict(note, bbox=[1, 1, 5, 0])]}, r"annotation 5: bbox .* width or height"),
        "outside": ({"annotations": [dict(note, bbox=[30, 1, 11.5, 5])]}, r"annotation 5: bbox .* outside its 40×30"),
        "below": ({"annotations": [dict(note, bbox=[1, 25, 5, 7])]}, r"annotation 5: bbox .* outside its 40×30"),
        "on the right edge": ({"annotations": [dict(note, bbox=[40, 5, 0.5, 5])]}, r"annotation 5: bbox .* outside"),
        "on the bottom edge": ({"annotations": [dict(note, bbox=[5, 30, 5, 0.5])]}, r"annotation 5: bbox .* outside"),
        "left of": ({"annotations": [dict(note, bbox=[-1.5, 1, 5, 5])]}, r"annotation 5: bbox .* outside"),
        "bbox not numbers": ({"annotations": [dict(note, bbox=[1, 1, "5", 5])]}, "annotation 5: bbox"),
        "missing file": ({"images": [{"id": 7, "file_name": "gone.png"}]}, r"image 7: file .*gone.png is missing"),
        "unreadable": ({"images": [{"id": 7, "file_name": "junk.png"}]}, r"cannot read image .*junk.png"),
        "escapes": ({"images": [{"id": 7, "file_name": "../a.png"}]}, r"image 7 file_name '../a.png' must stay"),
        "absolute": ({"images": [{"id": 7, "file_name": "/etc/hosts"}]}, r"image 7 file_name '/etc/hosts' must stay"),
        "no images": ({"images": [], "annotations": []}, "lists no images"),
        "image without id": ({"images": [{"file_name": "a.png"}]}, r"image #0 has no valid 'id'"),
        "image without file_name": ({"images": [{"id": 7}]}, r"image 7 has no valid 'file_name' \(got None\)"),
        "image not an object": ({"images": [5]}, r"instances.json: image #0 is not a JSON object"),
        "escapes by backslash": ({"images": [{"id": 7, "file_name": "..\\a.png"}]}, r"image 7 file_name .* must stay"),
        "wrong size": ({"images": [dict(image, width=41, height=30)]}, r"image 7 is 41×30 in the JSON"),
        "wrong height": ({"images": [dict(image, height=31)]}, r"image 7 is None×31 in the JSON but .*a.png is 40×30"),
        "twice": ({"images": [image, image]}, "image id 7 appears twice"),
        "one file twice": ({"images": [image, dict(image, id=8)]}, "images 7 and 8 are the same file 'a.png'"),
        "one file by two names": ({"images": [image, {"id": 8, "file_name": "./a.png"}]},
                                  "images 7 and 8 are the same file './a.png'"),
        "one name twice": ({"categories": CATEGORIES + [{"id": 9, "name": CATEGORIES[0]["name"]}]},
                           f"categories 1 and 9 are both named '{CATEGORIES[0]['name']}'"),
        "width as text": ({"images": [dict(image, width="40", height=30)]},
                          r"image 7's width and height must be whole numbers; got '40' and 30"),
        "height NaN": ({"images": [dict(image, width=40.0, height=float("nan"))]}, r"got 40.0 and nan"),
        "no annotations": ({"annotations": []}, "no object is annotated"),
        "crowds only": ({"annotations": [dict(note, iscrowd=1)]}, "no object is annotated"),
        "crowd as text": ({"annotations": [dict(note, iscrowd="0")]}, "annotation 5: iscrowd '0' is neither 0 nor 1"),
        "crowd as 2": ({"annotations": [dict(note, iscrowd=2)]}, "annotation 5: iscrowd 2 is neither 0 nor 1"),
    }
    (folder / "images" / "junk.png").write_bytes(b"not a png at all")
    fields, message = spoilt[case]
    coco = {"images": [image], "annotations": [note], "categories": CATEGORIES} | fields
    (folder / "instances.json").write_text(json.dumps(coco))
    return folder, message


CASES = ["no folder", "a file", "no images dir", "no json", "empty json", "invalid json", "not coco", "unknown image",
         "unknown category", "zero width", "negative height", "zero height", "outside", "below", "on the right edge",
         "on the bottom edge", "left of", "bbox not numbers",
         "missing file", "unreadable", "escapes", "absolute", "no images", "image without id",
         "image without file_name", "image not an object", "escapes by backslash", "wrong size", "wrong height",
         "twice", "one file twice", "one file by two names", "one name twice", "no annotations", "crowds only", "crowd as text", "crowd as 2", "width as text",
         "height NaN"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_naming_the_item(case, tmp_path):
    folder, message = bad(case, tmp_path)
    with pytest.raises(DataError, match=message) as caught:
        read_coco(folder, image_size=8)
    assert "\n" not in str(caught.value)


def test_a_decompression_bomb_is_refused(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "coco")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40×30 = 1,200 > 2 × 100: Pillow raises
    with pytest.raises(DataError, match="a.png declares 1,200 pixels"):
        read_coco(folder, image_size=8)


def test_results_for_unknown_images_are_refused(digits):
    folder, _ = digits
    with pytest.raises(DataError, match=r"results name images \[999\]"):
        evaluate(folder / "instances.json", [{"image_id": 999, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1}])


def test_annotations_without_id_area_or_iscrowd_score_from_what_was_read(tmp_path):
    """COCO's evaluation reads every annotation's id, area and iscrowd: those a file leaves out are filled
    in, and the scores come from the annotations as read, even once the file is gone."""
    folder = make_folder(tmp_path / "coco", annotations=[{"image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 10]},
                                                         {"image_id": 7, "category_id": 1, "bbox": [0, 0, 8, 6]}])
    data = read_coco(folder, image_size=16)
    truth = data.ground_truth["annotations"]
    assert [a["id"] for a in truth] == [1, 2] and [a["area"] for a in truth] == [200.0, 48.0]
    assert [a["iscrowd"] for a in truth] == [0, 0]
    (folder / "instances.json").unlink()
    perfect = [{"image_id": 7, "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0} for a in truth]
    assert evaluate(data.ground_truth, perfect)["map"] == pytest.approx(1.0)
    shifted = [dict(r, bbox=[r["bbox"][0] + r["bbox"][2] / 2, *r["bbox"][1:]]) for r in perfect]  # IoU 1/3
    assert evaluate(data.ground_truth, shifted)["map_50"] == pytest.approx(0.0)


def test_an_annotation_id_given_twice_is_refused(tmp_path):
    folder = make_folder(tmp_path / "coco", annotations=[{"id": 4, "image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 5]},
                                                         {"id": 4, "image_id": 8, "category_id": 1, "bbox": [2, 2, 5, 5]}])
    with pytest.raises(DataError, match="annotation id 4 appears twice"):
        read_coco(folder, image_size=8)


def test_subset_keeps_the_rows_asked_for_in_their_order(tmp_path):
    data = read_coco(make_folder(tmp_path / "coco"), image_size=8)
    part = data.subset(np.array([1, 0]))
    assert part.image_ids == [8, 7] and part.file_names == ["b.png", "a.png"] and part.sizes == [(40, 30)] * 2
    np.testing.assert_array_equal(part.images, data.images[::-1])
    assert part.targets[0]["boxes"].shape == (0, 4) and part.targets[1]["labels"].tolist() == [1, 0]
    assert part.categories == CATEGORIES and part.annotation_file == tmp_path / "coco" / "instances.json"
    assert part.ground_truth is data.ground_truth
    one = data.subset([1.0])  # a float index from a split computed in floats is taken as the row it names
    assert one.image_ids == [8] and one.images.shape == (1, 1, 8, 8)


def test_to_pixel_boxes_by_hand():
    # (cx, cy, w, h) = (0.5, 0.25, 0.2, 0.1) of a 200×100 image: centre (100, 25), size 40×10.
    np.testing.assert_allclose(to_pixel_boxes([0.5, 0.25, 0.2, 0.1], (200, 100)), [[80, 20, 40, 10]])
    assert to_pixel_boxes(np.zeros((0, 4)), (5, 5)).shape == (0, 4)
    # Overhanging the 200×100 image: (cx, cy) (190, 95), size 40×20 -> x 170-210, y 85-105, clipped.
    np.testing.assert_allclose(to_pixel_boxes([0.95, 0.95, 0.2, 0.2], (200, 100)), [[170, 85, 30, 15]])
    np.testing.assert_allclose(to_pixel_boxes([0.0, 0.0, 0.1, 0.1], (200, 100)), [[0, 0, 10, 5]])
    wide = to_pixel_boxes(np.asarray([[0.5, 0.5, 0.5, 0.25]], dtype=np.longdouble), (8, 8))
    assert wide.dtype == np.float64 and wide.tolist() == [[2.0, 3.0, 4.0, 2.0]]


def test_to_coco_results_rounds_and_flattens_by_hand():
    categories = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}]
    results = to_coco_results([np.asarray([[12.34567, 1.00049, 2.5, 3.0], [0, 0, 1, 1]])],
                              [np.asarray([[0.1234567, 0.5]])], [np.asarray([[1, 0]])], [np.int64(9)], categories)
    assert results == [{"image_id": 9, "category_id": 3, "bbox": [12.346, 1.0, 2.5, 3.0], "score": 0.12346},
                       {"image_id": 9, "category_id": 1, "bbox": [0.0, 0.0, 1.0, 1.0], "score": 0.5}]
    assert type(results[0]["bbox"][1]) is float and type(results[0]["score"]) is float
    assert to_coco_results([np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0, int)], [4], categories) == []


@pytest.mark.parametrize("lengths", [(2, 1, 1), (1, 2, 1), (1, 1, 2)])
def test_to_coco_results_refuses_an_image_with_unequal_boxes_scores_labels(lengths):
    n_boxes, n_scores, n_labels = lengths
    with pytest.raises(ValueError):
        to_coco_results([np.ones((n_boxes, 4))], [np.ones(n_scores)], [np.zeros(n_labels, int)], [1], CATEGORIES)


@pytest.mark.parametrize("lists", [(2, 1, 1, 1), (1, 2, 1, 1), (1, 1, 2, 1), (1, 1, 1, 2)])
def test_to_coco_results_refuses_per_image_lists_of_unequal_lengths(lists):
    n_boxes, n_scores, n_labels, n_ids = lists
    with pytest.raises(ValueError):
        to_coco_results([np.ones((1, 4))] * n_boxes, [np.ones(1)] * n_scores, [np.zeros(1, int)] * n_labels,
                        [1] * n_ids, CATEGORIES)


def two_image_truth(tmp_path):
    """make_folder's two images, one dog box on each."""
    notes = [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 10]},
             {"id": 2, "image_id": 8, "category_id": 3, "bbox": [4, 6, 12, 8]}]
    folder = make_folder(tmp_path / "coco", annotations=notes)
    return read_coco(folder, image_size=8)


def test_evaluate_over_some_images_and_boxes_as_tuples(tmp_path):
    data = two_image_truth(tmp_path)
    found = [{"image_id": 7, "category_id": 3, "bbox": (10, 5, 20, 10), "score": 0.9}]  # image 8's box is missed
    before = copy.deepcopy(data.ground_truth)
    assert evaluate(data.ground_truth, found, image_ids=[np.int64(7)])["map"] == pytest.approx(1.0)
    # Over both images, recall reaches 1/2 at precision 1: COCO's 101-point AP is 51/101.
    assert evaluate(data.ground_truth, found)["map"] == pytest.approx(51 / 101)
    assert data.ground_truth == before  # COCOeval marks the annotations it is given: it gets a copy
    assert evaluate(data.ground_truth, found, image_ids=[8])["map"] == 0.0


def test_evaluate_over_no_images_has_nothing_to_average(tmp_path):
    data = two_image_truth(tmp_path)
    assert set(evaluate(data.ground_truth, [], image_ids=[]).values()) == {-1.0}
    assert set(evaluate(data.ground_truth, [], image_ids=[7]).values()) == {0.0, -1.0}


def test_unknown_images_are_named_with_their_source(tmp_path):
    data = two_image_truth(tmp_path)
    unknown = [{"image_id": i, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 1.0} for i in range(100, 106)]
    with pytest.raises(DataError, match=r"^results name images \[100, 101, 102, 103, 104\] that the ground truth "
                                        r"does not list$"):
        evaluate(data.ground_truth, unknown)
    with pytest.raises(DataError) as caught:
        evaluate(data.annotation_file, unknown[:1])
    assert str(caught.value) == f"results name images [100] that {data.annotation_file} does not list"


def test_boxes_at_the_border_tolerance_and_under_a_pixel_are_kept(tmp_path):
    # Overhanging every side by exactly BORDER_TOLERANCE (1 pixel) is allowed, and clipped to the 40×30 image.
    notes = [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [-1, -1, 42, 32]},
             {"id": 2, "image_id": 7, "category_id": 1, "bbox": [2, 3, 0.5, 0.25]}]
    folder = make_folder(tmp_path / "coco", annotations=notes)
    truth = read_coco(folder, image_size=8).ground_truth["annotations"]
    assert [a["bbox"] for a in truth] == [[0.0, 0.0, 40.0, 30.0], [2.0, 3.0, 0.5, 0.25]]


def test_a_file_name_with_backslashes_names_a_subfolder(tmp_path):
    folder = make_folder(tmp_path / "coco")
    (folder / "images" / "sub").mkdir()
    (folder / "images" / "a.png").rename(folder / "images" / "sub" / "a.png")
    coco = json.loads((folder / "instances.json").read_text())
    coco["images"][0]["file_name"] = "sub\\a.png"
    (folder / "instances.json").write_text(json.dumps(coco))
    data = read_coco(folder, image_size=8)
    assert data.file_names == ["sub\\a.png", "b.png"] and data.images.shape == (2, 1, 8, 8)


def test_crowd_regions_given_and_fresh_ids_and_areas(tmp_path):
    notes = [{"id": 10, "image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 10], "area": 150, "iscrowd": 1},
             {"image_id": 7, "category_id": 1, "bbox": [0, 0, 8, 6]},
             {"image_id": 8, "category_id": 3, "bbox": [1, 1, 2, 2], "iscrowd": 0, "area": 3.5}]
    data = read_coco(make_folder(tmp_path / "coco", annotations=notes), image_size=8)
    truth = data.ground_truth["annotations"]
    assert [a["id"] for a in truth] == [10, 11, 12] and [a["iscrowd"] for a in truth] == [1, 0, 0]
    assert [a["area"] for a in truth] == [150.0, 48.0, 3.5] and [a["image_id"] for a in truth] == [7, 7, 8]
    assert [a["category_id"] for a in truth] == [3, 1, 3] and truth[2]["bbox"] == [1.0, 1.0, 2.0, 2.0]
    # The crowd region is no target; the 8×6 box at the corner of 40×30 is centred at (4, 3).
    assert data.targets[0]["labels"].tolist() == [0] and data.targets[1]["labels"].tolist() == [1]
    np.testing.assert_allclose(data.targets[0]["boxes"], [[0.1, 0.1, 0.2, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(data.targets[1]["boxes"], [[2 / 40, 2 / 30, 2 / 40, 2 / 30]], rtol=1e-6)
    assert data.ground_truth["images"] == [{"id": 7, "file_name": "a.png", "width": 40, "height": 30},
                                           {"id": 8, "file_name": "b.png", "width": 40, "height": 30}]
    assert data.ground_truth["categories"] == CATEGORIES


@pytest.mark.parametrize("change, message", [
    ({"id": "4"}, r"annotation 4: id '4' is not a whole number"),
    ({"id": True}, r"annotation True: id True is not a whole number"),
    ({"area": -1}, r"annotation 5: area -1 is not a number of pixels"),
    ({"area": True}, r"annotation 5: area True is not a number of pixels"),
    ({"area": "big"}, r"annotation 5: area 'big' is not a number of pixels"),
    ({"area": float("inf")}, r"annotation 5: area inf is not a number of pixels"),
    ({"bbox": [1, 1, 5]}, r"annotation 5: bbox \[1, 1, 5\] is not four numbers"),
    ({"bbox": [1, 1, True, 5]}, r"annotation 5: bbox .* is not four numbers"),
    ({"bbox": [10 ** 400, 1, 5, 5]}, r"annotation 5: bbox .* is not four numbers"),  # no float holds it
    ({"area": -10 ** 400}, r"annotation 5: area .* is not a number of pixels"),
    ({"image_id": "7"}, r"annotation 5 has no valid 'image_id'"),
])
def test_bad_annotations_are_named(tmp_path, change, message):
    note = {"id": 5, "image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5]} | change
    folder = make_folder(tmp_path / "coco", annotations=[note])
    with pytest.raises(DataError, match=message):
        read_coco(folder, image_size=8)


def test_categories_are_sorted_by_id_and_each_id_is_one(tmp_path):
    folder = make_folder(tmp_path / "coco", categories=[{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}])
    data = read_coco(folder, image_size=8)
    assert data.categories == CATEGORIES and data.targets[0]["labels"].tolist() == [1, 0]
    assert data.ground_truth["categories"] == [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}]
    folder = make_folder(tmp_path / "twice", categories=[{"id": 1, "name": "cat"}, {"id": 1, "name": "dog"}])
    with pytest.raises(DataError, match="category id 1 appears twice"):
        read_coco(folder, image_size=8)


@pytest.mark.parametrize("text, message", [
    ("[]", "instances.json is not a COCO instances file: a JSON object is expected"),
    ('{"images": []}', r"instances.json is not a COCO instances file: no list 'annotations', 'categories'$"),
    ('{"images": {}, "annotations": [], "categories": []}', r"no list 'images'$"),
])
def test_a_json_that_is_not_coco_is_refused(tmp_path, text, message):
    folder = make_folder(tmp_path / "coco")
    (folder / "instances.json").write_text(text)
    with pytest.raises(DataError, match=message):
        read_coco(folder, image_size=8)


def test_a_latin1_json_is_not_valid_and_instances_json_comes_first(tmp_path):
    folder = make_folder(tmp_path / "coco")
    (folder / "instances_other.json").write_text("{}")
    assert read_coco(folder, image_size=8).annotation_file.name == "instances.json"
    (folder / "instances.json").rename(folder / "annotations.json")
    (folder / "instances_other.json").write_bytes('{"images": ["caf\xe9"]}'.encode("latin-1"))
    with pytest.raises(DataError, match=r"instances_other.json is not valid JSON: 'utf-8' codec"):
        read_coco(folder, image_size=8)


def test_messages_name_the_file_and_the_record_in_full(tmp_path):
    folder = make_folder(tmp_path / "coco")
    path = folder / "instances.json"

    def message(**fields):
        coco = {"images": [{"id": 7, "file_name": "a.png"}], "annotations": [], "categories": CATEGORIES} | fields
        path.write_text(json.dumps(coco))
        with pytest.raises(DataError) as caught:
            read_coco(folder, image_size=8)
        return str(caught.value)

    assert message(categories=[{"id": 1}]) == f"{path}: category 1 has no valid 'name' (got None)"
    assert message(categories=[{"name": "cat"}]) == f"{path}: category #0 has no valid 'id' (got None)"
    assert message(images=[{"id": "7", "file_name": "a.png"}]) == f"{path}: image 7 has no valid 'id' (got '7')"
    assert message(images=[{"id": 7, "file_name": "/a.png"}]) == \
        f"{path}: image 7 file_name '/a.png' must stay inside {folder / 'images'}"
    path.write_text("")
    with pytest.raises(DataError) as caught:
        read_coco(folder, image_size=8)
    assert str(caught.value) == f"{path} is not valid JSON: Expecting value: line 1 column 1 (char 0)"
    make_folder(tmp_path / "other")
    with pytest.raises(DataError) as caught:
        read_coco(tmp_path / "other", image_size=8, categories=[{"id": 1, "name": "cat"}, {"id": 3, "name": "wolf"}])
    assert str(caught.value) == (f"{tmp_path / 'other' / 'instances.json'}: category 3 ('dog') is not among the "
                                 f"model's categories (1=cat, 3=wolf)")


def test_two_instances_files_are_both_listed(tmp_path):
    folder = make_folder(tmp_path / "coco")
    (folder / "instances.json").rename(folder / "instances_a.json")
    (folder / "annotations").mkdir()
    (folder / "annotations" / "instances_b.json").write_text("{}")
    with pytest.raises(DataError) as caught:
        read_coco(folder, image_size=8)
    assert str(caught.value) == (f"{folder} has 2 instances JSON files, keep one: "
                                 f"{folder / 'annotations' / 'instances_b.json'}, {folder / 'instances_a.json'}")


def test_the_json_is_read_as_utf8_whatever_the_locale(tmp_path, ascii_locale):
    folder = make_folder(tmp_path / "coco", categories=[{"id": 1, "name": "café"}, {"id": 3, "name": "chien"}])
    coco = json.loads((folder / "instances.json").read_text())
    (folder / "instances.json").write_bytes(json.dumps(coco, ensure_ascii=False).encode("utf-8"))  # é: 2 bytes
    with ascii_locale():
        assert read_coco(folder, image_size=8).categories[0]["name"] == "café"


def test_annotation_messages_in_full_and_an_area_of_zero(tmp_path):
    folder = make_folder(tmp_path / "coco")
    path = folder / "instances.json"

    def message(annotations):
        path.write_text(json.dumps({"images": [{"id": 7, "file_name": "a.png"}], "annotations": annotations,
                                    "categories": CATEGORIES}))
        with pytest.raises(DataError) as caught:
            read_coco(folder, image_size=8)
        return str(caught.value)

    note = {"image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5]}
    assert message([5]) == f"{path}: annotation #0 is not a JSON object"
    assert message([dict(note, image_id="7")]) == f"{path}: annotation #0 has no valid 'image_id' (got '7')"
    assert message([dict(note, image_id=9)]) == f"{path}: annotation #0: image_id 9 is not among the images"
    path.write_text(json.dumps({"images": [{"id": 7, "file_name": "a.png"}], "categories": CATEGORIES,
                                "annotations": [dict(note, area=0), dict(note, area=0.5)]}))
    data = read_coco(folder, image_size=8)
    assert [a["area"] for a in data.ground_truth["annotations"]] == [0.0, 0.5]


def test_an_image_without_boxes_has_int64_labels(tmp_path):
    data = read_coco(make_folder(tmp_path / "coco"), image_size=8)
    assert data.targets[1]["labels"].dtype == np.int64 and data.targets[1]["boxes"].dtype == np.float32
