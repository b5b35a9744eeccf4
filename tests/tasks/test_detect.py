"""Detection end to end: DETR trained on the built-in digits and on a user's COCO folder, then eval,
predict and the explorer's answer; a short run that learns; the bad-input paths."""

import json
import os
import shutil

import numpy as np
import pytest
import torch

from seqlab.cli.main import main
from seqlab.data import coco
from seqlab.data.digits_detection import write_digits_detection
from cli_run import run_cli

TINY_MODEL = ["--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.n_encoder_layers=1",
              "--set", "model.n_decoder_layers=2", "--set", "model.d_ff=64", "--set", "model.n_queries=8",
              "--set", "model.backbone_width=8"]
QUIET = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.precision=fp32"]
TINY_DIGITS = ["--set", "data.digits_train=24", "--set", "data.digits_valid=6", "--set", "data.digits_test=6",
               "--set", "data.image_size=64"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run on the built-in set, a few steps: enough to exercise every file a run writes."""
    run = tmp_path_factory.mktemp("detect") / "run"
    code = main(["train", "detect", "--out", str(run), "--max-steps", "12", "--set", "train.eval_every=6",
                 "--set", "train.batch_size=8", *TINY_MODEL, *TINY_DIGITS, *QUIET])
    assert code == 0
    return run


def test_a_run_keeps_its_data_scores_and_pictures(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    for key in ("test_map", "test_map_50", "val_map", "steps"):
        assert key in metrics
    assert metrics["steps"] == 12 and metrics["test_images"] == 6
    for split in ("train", "valid", "test"):
        assert (trained / "data" / split / "images").is_dir()
    for picture in ("detections.png", "decoder_attention.png", "encoder_attention.png"):
        assert (trained / picture).stat().st_size > 1000
    assert [c["name"] for c in json.loads((trained / "categories.json").read_text())] == [str(d) for d in range(10)]


def test_eval_on_the_runs_test_folder_gives_the_runs_own_test_figures(trained, capsys):
    code, out, err = run_cli("eval", trained, "--coco", trained / "data" / "test", capsys=capsys)
    assert code == 0, err
    scores = json.loads(out)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert scores["images"] == 6
    assert scores["map"] == pytest.approx(metrics["test_map"]) and scores["map_50"] == pytest.approx(metrics["test_map_50"])


def test_predict_writes_coco_results_and_draws_one_image(trained, tmp_path, capsys):
    image = sorted((trained / "data" / "test" / "images").iterdir())[0]
    out = tmp_path / "preds.json"
    code, printed, err = run_cli("predict", trained, image, "--out", out, "--threshold", "0", capsys=capsys)
    assert code == 0, err
    results = json.loads(out.read_text())
    assert len(results) == 8  # one box a query
    for r in results:
        assert r["file_name"] == str(image) and 1 <= r["category_id"] <= 10 and 0 <= r["score"] <= 1
        assert len(r["bbox"]) == 4 and r["bbox"][2] >= 0
    assert len(printed.splitlines()) == 8
    assert out.with_suffix(".png").stat().st_size > 500
    # A folder: every image, nothing drawn
    folder_out = tmp_path / "folder.json"
    code, _, err = run_cli("predict", trained, image.parent, "--out", folder_out, capsys=capsys)
    assert code == 0, err
    assert {r["file_name"] for r in json.loads(folder_out.read_text())} == {str(p) for p in image.parent.iterdir()}
    assert not folder_out.with_suffix(".png").exists()


def test_predict_on_a_folder_skips_hidden_files_and_prints_nothing_before_a_bad_image(trained, tmp_path, capsys,
                                                                                      monkeypatch):
    image = sorted((trained / "data" / "test" / "images").iterdir())[0]
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(image, folder / "a.png")
    (folder / "._a.png").write_bytes(b"\x00\x05\x16\x07 macOS metadata")  # AppleDouble: not an image
    (folder / "sub.png").mkdir()
    code, out, err = run_cli("predict", trained, folder, "--threshold", "0", capsys=capsys)
    assert code == 0 and {line.split("\t")[0] for line in out.splitlines()} == {str(folder / "a.png")}, err
    (folder / "b.png").write_text("not an image")
    monkeypatch.setattr("seqlab.tasks.detector.BATCH", 1)  # a.png's boxes come before b.png is read
    code, out, err = run_cli("predict", trained, folder, "--threshold", "0", capsys=capsys)
    assert code == 2 and out == "" and "b.png" in err and len(err.strip().splitlines()) == 1, err
    odd = tmp_path / "odd"
    odd.mkdir()
    shutil.copy(image, os.fsdecode(bytes(odd) + b"/caf\xe9.png"))  # Latin-1, as an old camera card may name it
    code, out, err = run_cli("predict", trained, odd, capsys=capsys)
    assert code == 2 and out == "" and "is not UTF-8; rename the file" in err and len(err.strip().splitlines()) == 1


def test_the_explorer_answer_has_a_view_per_box(trained):
    from seqlab.tasks.detector import Detector
    from seqlab.tasks.task import Request, get

    task = get("detect")
    detector = task.load(trained)
    image = sorted((trained / "data" / "test" / "images").iterdir())[0].read_bytes()
    answer = Detector.explore(detector, image, threshold=0.0)
    assert len(answer["views"]) == 8
    view = next(iter(answer["views"].values()))
    h = w = 64 // 8
    assert len(view["queries"]) == h and len(view["keys"]) == w and len(view["box"]) == 4
    heads = view["weights"][0]  # layer 1: (heads, h, w)
    assert len(heads) == 2 and sum(map(sum, heads[0])) == pytest.approx(1, abs=1e-3)
    assert task.explore(detector, Request(image=image))["output"]  # the boxes, or that none scored 0.5


def test_a_user_coco_folder_trains_with_its_own_test_folder(tmp_path, capsys):
    folders = write_digits_detection(tmp_path / "mine", n_train=20, n_valid=4, n_test=4, seed=3, size=64)
    run = tmp_path / "run"
    code, out, err = run_cli("train", "detect", "--coco", folders["train"], "--test-coco", folders["test"],
                             "--out", run, "--max-steps", "4", "--set", "train.eval_every=2",
                             "--set", "train.batch_size=4", "--set", "data.image_size=64", *TINY_MODEL, *QUIET,
                             capsys=capsys)
    assert code == 0, err
    assert "test: mAP@[.5:.95]" in out
    assert not (run / "data").exists()  # the user's data stays where it is
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_images"] == 4


def test_a_short_run_learns(tmp_path):
    """The set loss falls and mAP@.5 on the images trained on rises from nothing: DETR can fit a tiny set."""
    from seqlab.tasks.detect import DetectConfig, build_detr, criterion
    from seqlab.tasks.detector import Detector, pad_targets, unpad_targets

    folders = write_digits_detection(tmp_path / "d", n_train=4, n_valid=2, n_test=2, seed=1, size=48)
    data = coco.read_coco(folders["train"], image_size=48)
    config = DetectConfig()
    config.data.image_size = 48
    m = config.model
    m.d_model, m.n_heads, m.n_encoder_layers, m.n_decoder_layers, m.d_ff, m.n_queries = 32, 4, 1, 2, 64, 8
    m.backbone_width = 8
    torch.manual_seed(0)
    model = build_detr(m, config.data, 10)
    loss_of = criterion(m, 10)
    detector = Detector(model, data.categories, config)
    before = detector.evaluate(data)["map_50"]
    images = torch.from_numpy(data.images)
    targets = unpad_targets(*pad_targets(data.targets))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    losses = []
    model.train()
    for _ in range(200):
        loss = loss_of(model(images), targets)["loss"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        losses.append(loss.item())
    after = detector.evaluate(data)["map_50"]
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:5])
    assert before < 0.1 and after > 0.5, (before, after)


@pytest.mark.parametrize("case", ["missing", "unknown-category", "outside"])
def test_bad_coco_folders_are_one_line_and_leave_no_run(tmp_path, capsys, case):
    folders = write_digits_detection(tmp_path / "d", n_train=4, n_valid=1, n_test=1, seed=0, size=64)
    folder = folders["train"]
    if case == "missing":
        folder = tmp_path / "nowhere"
    else:
        annotations = next(folder.glob("*.json"))
        doc = json.loads(annotations.read_text())
        if case == "unknown-category":
            doc["annotations"][0]["category_id"] = 99
        else:
            doc["annotations"][0]["bbox"] = [50, 50, 40, 40]
        annotations.write_text(json.dumps(doc))
    run = tmp_path / "run"
    code, out, err = run_cli("train", "detect", "--coco", folder, "--out", run, *QUIET, capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert {"missing": "COCO folder not found", "unknown-category": "category_id 99", "outside": "lies outside"}[case] in err
    assert not run.exists()


def test_bad_predict_and_eval_inputs(trained, tmp_path, capsys):
    code, _, err = run_cli("predict", trained, tmp_path / "none.png", capsys=capsys)
    assert code == 2 and "image not found" in err
    image = sorted((trained / "data" / "test" / "images").iterdir())[0]
    code, _, err = run_cli("predict", trained, image, "--out", tmp_path / "preds.txt", capsys=capsys)
    assert code == 2 and ".json" in err
    code, _, err = run_cli("predict", trained, image, "--threshold", "2", capsys=capsys)
    assert code == 2 and "--threshold" in err
    code, _, err = run_cli("eval", trained, capsys=capsys)
    assert code == 2 and "--coco" in err
    not_image = tmp_path / "bad.png"
    not_image.write_text("not an image")
    code, _, err = run_cli("predict", trained, not_image, capsys=capsys)
    assert code == 2 and "bad.png" in err and "Traceback" not in err
    code, _, err = run_cli("predict", trained, "  ", capsys=capsys)  # nothing given: it asked for texts
    assert code == 2 and "nothing to predict: give the image files or folders as arguments" in err, err


@pytest.mark.parametrize("existing", ["mine.json", "mine.png"])
def test_predict_never_overwrites_the_users_files(trained, tmp_path, capsys, existing):
    """--out's results file, or for one image the picture drawn beside it, already there: refused, and
    left as it was."""
    image = sorted((trained / "data" / "test" / "images").iterdir())[0]
    (tmp_path / existing).write_text("the user's own")
    code, _, err = run_cli("predict", trained, image, "--out", tmp_path / "mine.json", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{existing} exists; give --out a new file name" in err
    assert [p.name for p in tmp_path.iterdir()] == [existing] and (tmp_path / existing).read_text() == "the user's own"


def test_predict_into_a_missing_folder_is_refused_before_anything_is_written(trained, tmp_path, capsys):
    image = sorted((trained / "data" / "test" / "images").iterdir())[0]
    code, _, err = run_cli("predict", trained, image, "--out", tmp_path / "nowhere" / "mine.json", capsys=capsys)
    assert code == 2 and "the folder" in err and "does not exist" in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("flags, words", [
    (["--test-coco", "somewhere"], "--test-coco"),
    (["--set", "data.image_size=100"], "backbone_stride"),
    (["--set", "model.d_model=30", "--set", "model.n_heads=3"], "multiple of 4"),
    (["--set", "model.n_queries=4"], "n_queries"),
    (["--set", "model.l1_weight=nan"], "model.l1_weight must be a finite number"),
    (["--set", "model.class_weight=-1"], "must be finite and not negative"),
    (["--set", "model.class_weight=0"], "a part of the loss weighted 0 is never learned"),
    (["--set", "model.l1_weight=0", "--set", "model.giou_weight=0"], "a part of the loss weighted 0 is never learned"),
])
def test_settings_that_cannot_work_are_one_line_before_anything_is_made(tmp_path, capsys, flags, words):
    run = tmp_path / "run"
    code, _, err = run_cli("train", "detect", "--out", run, *flags, *QUIET, capsys=capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not run.exists()


def test_more_objects_than_queries_is_refused_naming_the_image(tmp_path, capsys):
    folders = write_digits_detection(tmp_path / "d", n_train=12, n_valid=1, n_test=1, seed=0, size=64)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "detect", "--coco", folders["train"], "--out", run,
                           "--set", "model.n_queries=1", *QUIET, capsys=capsys)
    assert code == 2 and "objects, more than the 1 object queries" in err and ".png" in err, err
    assert not run.exists()


def test_a_resume_with_other_data_settings_is_refused(trained, capsys):
    code, _, err = run_cli("train", "detect", "--resume", trained, "--set", "data.digits_seed=5", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--set data.digits_seed does not go with --resume" in err, err


def test_a_resume_on_data_with_other_categories_is_refused_and_keeps_the_runs(tmp_path, capsys):
    folders = write_digits_detection(tmp_path / "d", n_train=12, n_valid=1, n_test=1, seed=0, size=64)
    run = tmp_path / "run"
    assert run_cli("train", "detect", "--coco", folders["train"], "--out", run, "--set", "train.stop_at_step=1",
                   "--max-steps", 3, "--set", "data.image_size=64", *TINY_MODEL, *QUIET, capsys=capsys)[0] == 0
    kept = (run / "categories.json").read_bytes()
    instances, = folders["train"].glob("instances*.json")
    data = json.loads(instances.read_text())
    data["categories"].insert(0, {"id": -1, "name": "zzz"})  # a new first category: every label would shift
    instances.write_text(json.dumps(data))
    code, _, err = run_cli("train", "detect", "--resume", run, "--coco", folders["train"], capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "a resumed run keeps its categories" in err, err
    assert (run / "categories.json").read_bytes() == kept


def test_run_json_edited_by_hand_takes_the_checkpoints_channels_or_is_one_line(trained, tmp_path, capsys):
    """The checkpoint fixes the channels and the image size; run.json's data.grey / data.coco edited (a
    grey model fed colour images: a traceback) or its image_size changed or lost (boxes from images
    resized to another size: scores of nothing, silently) must not matter or must be refused."""
    image = sorted((trained / "data" / "test" / "images").iterdir())[0]
    code, expected, err = run_cli("predict", trained, image, "--threshold", "0", capsys=capsys)
    assert code == 0, err
    edits = {"colour": lambda d: d.update(coco=str(trained / "data" / "train"), grey=False),
             "size": lambda d: d.update(image_size=32), "no size": lambda d: d.pop("image_size")}
    for name, edit in edits.items():
        run = tmp_path / name.replace(" ", "-")
        shutil.copytree(trained, run)
        info = json.loads((run / "run.json").read_text())
        edit(info["config"]["data"])
        (run / "run.json").write_text(json.dumps(info))
        code, out, err = run_cli("predict", run, image, "--threshold", "0", capsys=capsys)
        if name == "colour":
            assert code == 0 and out == expected, err
        else:
            assert code == 2 and len(err.strip().splitlines()) == 1, err
            assert {"size": "data.image_size is 32; the checkpoint's model takes 64",
                    "no size": "it lacks data.image_size, which the checkpoint fixes at 64"}[name] in err


def test_a_validation_split_without_objects_is_refused(tmp_path, capsys):
    """Its mAP would be -1 at every evaluation, and the first checkpoint would stay the best."""
    folder = write_digits_detection(tmp_path / "d", n_train=4, n_valid=1, n_test=1, seed=0, size=64)["train"]
    annotations = next(folder.glob("*.json"))
    doc = json.loads(annotations.read_text())
    held_out = doc["images"][np.random.default_rng(0).permutation(4)[0]]["id"]  # the split read_data draws
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != held_out]
    annotations.write_text(json.dumps(doc))
    run = tmp_path / "run"
    code, _, err = run_cli("train", "detect", "--coco", folder, "--out", run, "--set", "data.valid_fraction=0.25",
                           *QUIET, capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "none of the 1 image(s) held out for validation (data.valid_fraction=0.25) has an object" in err
    assert not run.exists()


@pytest.mark.parametrize("written", ["[]", '{"id": 1}', '[{"id": "1", "name": "a"}]', "[{"])
def test_a_damaged_categories_file_is_one_line_for_predict_and_export(written, trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "categories.json").write_text(written)
    image = next((run / "data" / "test" / "images").iterdir())
    for command in (["predict", run, image], ["export", run, "--format", "onnx", "--out", tmp_path / "onnx"]):
        code, _, err = run_cli(*command, capsys=capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "categories.json" in err, err
    assert not (tmp_path / "onnx").exists()
