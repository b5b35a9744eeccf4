"""Object detection with DETR (Carion et al., 2020): a CNN's feature map read by a Transformer, a fixed
set of object queries decoded in parallel, trained with a set loss through bipartite matching.

    seqlab train detect                        # the built-in digits detection set, made at run time
    seqlab train detect --coco DIR             # DIR/images/ and a COCO instances JSON
    seqlab eval RUN_DIR --coco DIR             # COCO mAP@[.5:.95], mAP@.5, mAP per size (pycocotools)
    seqlab predict RUN_DIR IMAGE_OR_DIR --out preds.json   # COCO results; one image: boxes drawn too

The built-in data is written into ``RUN_DIR/data/`` (``train``, ``valid``, ``test``: COCO folders), so
``seqlab eval RUN_DIR --coco RUN_DIR/data/test`` scores a run on the images it never saw. The run writes
``metrics.json`` (test mAP), ``detections.png`` (predicted and true boxes), ``decoder_attention.png``
(each detected object's query over the image: the paper's Figure 6) and ``encoder_attention.png``
(encoder self-attention at a few points: Figure 3).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..config import build, check_model, option, to_dict
from ..data import coco
from ..data.batching import ShuffledBatches
from ..data.digits_detection import MAX_DIGITS, write_digits_detection
from ..errors import DamagedFileError, DataError, UserError
from ..io import write_json
from ..models.detr import DETR, DETRConfig
from ..models.set_loss import HungarianMatcher, SetCriterion
from ..parallel.config import ParallelConfig
from ..parallel.runtime import SingleProcess, check_layout
from ..train.config import TrainConfig
from ..train.loop import Trainer
from . import run_dir as runs
from .detector import Detector, pad_targets, unpad_targets
from .task import Flag, Task, register

TASK = "detect"
DATA_DIR = "data"  # RUN_DIR/data: the built-in set's COCO folders


@dataclass
class DetectDataConfig:
    coco: str = option("", "a COCO folder to train on: images/ and an instances JSON "
                           "(default: the built-in digits detection, made at run time)", path=True)
    test_coco: str = option("", "a COCO folder scored once when training ends (the built-in set has its own)",
                            path=True)
    image_size: int = 96  # every image is resized to size × size, its boxes with it
    grey: bool = True  # False: RGB
    valid_fraction: float = 0.1  # of --coco's images, held out to choose the best checkpoint
    # The built-in set: images of each split, each from its own source digits (seqlab.data.digits_detection).
    digits_train: int = 4000
    digits_valid: int = 300
    digits_test: int = 500
    digits_seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.valid_fraction < 0.5:
            raise ValueError(f"data.valid_fraction must be in (0, 0.5); got {self.valid_fraction}")
        if not 16 <= self.image_size <= 1024:
            raise ValueError(f"data.image_size must be in [16, 1024]; got {self.image_size}")
        if min(self.digits_train, self.digits_valid, self.digits_test) < 1:
            raise ValueError("data.digits_train, data.digits_valid and data.digits_test must be at least 1")


@dataclass
class DetectModelConfig:
    queries: Literal["anchor", "learned"] = option(
        "anchor", "object queries: anchor = DAB-DETR's anchor boxes, refined layer by layer (Liu et al. 2022); "
                  "learned = the paper's")
    backbone_width: int = 16
    backbone_stride: int = 8
    d_model: int = 128
    n_heads: int = 8
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    d_ff: int = 512
    # Off by default: on a CPU, dropout's random masks took 22 % of a step (profiled: bernoulli_), and the
    # recipe met its targets on the built-in set without it (BENCHMARKS.md).
    dropout: float = 0.0
    n_queries: int = 20
    # The set loss (Carion et al. §3.1 and §A.2): matching cost and loss weights, the no-object class's weight.
    class_weight: float = 1.0
    l1_weight: float = 5.0
    giou_weight: float = 2.0
    no_object_weight: float = 0.1

    def __post_init__(self) -> None:
        check_model(self, self.n_heads, self.n_encoder_layers, self.n_decoder_layers, self.d_ff, self.n_queries,
                    self.backbone_width)
        if self.backbone_stride not in (8, 16):
            raise ValueError(f"model.backbone_stride must be 8 or 16; got {self.backbone_stride}")
        weights = (self.class_weight, self.l1_weight, self.giou_weight, self.no_object_weight)
        if not all(0 <= w < float("inf") for w in weights):  # NaN fails too
            raise ValueError("model.class_weight, l1_weight, giou_weight and no_object_weight must be finite and "
                             "not negative")
        if self.class_weight == 0 or self.l1_weight + self.giou_weight == 0:
            raise ValueError("model.class_weight, and l1_weight or giou_weight, must be above 0: a part of the loss "
                             "weighted 0 is never learned (the classes, or the boxes)")


def _detect_train_defaults() -> TrainConfig:
    # Chosen on the built-in set's validation images (BENCHMARKS.md): 5e-4 with 200 warm-up steps reached
    # mAP@.5 0.94 by step 1,500 of a 2,000-step run; a 3,600-step run took 20.8 minutes on 2 cores, so 3,400.
    return TrainConfig(lr=5e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4, warmup_steps=200,
                       max_steps=3400, batch_size=32, clip_norm=0.1, label_smoothing=0.0, eval_every=500)


@dataclass
class DetectConfig:
    data: DetectDataConfig = field(default_factory=DetectDataConfig)
    model: DetectModelConfig = field(default_factory=DetectModelConfig)
    train: TrainConfig = field(default_factory=_detect_train_defaults)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # used when torchrun starts several ranks

    def __post_init__(self) -> None:
        self.parallel.data_parallel_only(TASK)
        d, m = self.data, self.model
        if self.train.label_smoothing:
            raise ValueError("train.label_smoothing: the set loss of detect has none; leave it 0")
        if d.image_size % m.backbone_stride:
            raise ValueError(f"data.image_size ({d.image_size}) must be a multiple of model.backbone_stride "
                             f"({m.backbone_stride})")
        if m.d_model % 4:  # half the features for rows, half for columns, each in sine/cosine pairs
            raise ValueError(f"model.d_model must be a multiple of 4 (the 2-D sine positions); got {m.d_model}")
        if not d.coco and d.image_size < 32:
            raise ValueError(f"data.image_size must be at least 32 for the built-in set (digits of 16-32 pixels); "
                             f"got {d.image_size}")
        if not d.coco and m.n_queries < MAX_DIGITS:  # DETR gives one box a query
            raise ValueError(f"model.n_queries must be at least {MAX_DIGITS} for the built-in set (up to {MAX_DIGITS} "
                             f"digits an image); got {m.n_queries}")
        if d.test_coco and not d.coco:
            raise ValueError("--test-coco scores a run trained on --coco; the built-in set has its own test images")

    def check_layout(self, world: int) -> None:
        """A UserError unless the [parallel] layout fits ``world`` processes and the batch splits evenly."""
        check_layout(self.parallel, world, self.train.batch_size)


@dataclass
class DetectData:
    """What training reads: the splits (``seqlab.data.coco.Detections``); None for the built-in set,
    which :func:`train` makes in the run directory (nothing is made before the run exists)."""

    train: coco.Detections | None = None
    valid: coco.Detections | None = None
    test: coco.Detections | None = None


def check_objects(data: coco.Detections, n_queries: int, where: str) -> None:
    """A DataError for an image with more objects than the model has queries: DETR gives one box a query."""
    counts = [len(t["labels"]) for t in data.targets]
    if counts and max(counts) > n_queries:
        worst = int(np.argmax(counts))
        raise DataError(f"{where}: image {data.file_names[worst]} has {counts[worst]} objects, more than the "
                        f"{n_queries} object queries (--set model.n_queries={counts[worst]} or more)")


def read_data(config: DetectConfig) -> DetectData:
    d = config.data
    if not d.coco:
        return DetectData()
    everything = coco.read_coco(d.coco, image_size=d.image_size, grey=d.grey)
    if len(everything.images) < 2:
        raise DataError(f"{d.coco} has {len(everything.images)} image(s); training needs at least 2 "
                        f"(some are held out to choose the best checkpoint)")
    check_objects(everything, config.model.n_queries, d.coco)
    order = np.random.default_rng(0).permutation(len(everything.images))
    n_valid = max(1, round(d.valid_fraction * len(order)))
    train, valid = everything.subset(order[n_valid:]), everything.subset(order[:n_valid])
    if not any(len(t["labels"]) for t in valid.targets):  # its mAP would be -1 at every evaluation
        raise DataError(f"{d.coco}: none of the {n_valid} image(s) held out for validation (data.valid_fraction="
                        f"{d.valid_fraction:g}) has an object, so no checkpoint can be chosen on them; annotate "
                        f"more of the images or raise data.valid_fraction")
    test = None
    if d.test_coco:
        test = coco.read_coco(d.test_coco, image_size=d.image_size, grey=d.grey, categories=everything.categories)
    return DetectData(train, valid, test)


def built_in(config: DetectConfig, run: Path, parallel: SingleProcess | None = None) -> DetectData:
    """The built-in set, made in ``run/data`` by the main rank (each split made aside and renamed into
    place; a resumed run reads the one it made, and refuses other data settings), read by every rank."""
    d = config.data
    folders = (parallel or SingleProcess()).on_main(lambda: write_digits_detection(
        run / DATA_DIR, n_train=d.digits_train, n_valid=d.digits_valid, n_test=d.digits_test, seed=d.digits_seed,
        size=d.image_size))
    return DetectData(*(coco.read_coco(folders[name], image_size=d.image_size, grey=True)
                        for name in ("train", "valid", "test")))


def build_detr(m: DetectModelConfig, data: DetectDataConfig, n_classes: int) -> DETR:
    return DETR(DETRConfig(
        n_classes, channels=1 if data.grey or not data.coco else 3, image_size=data.image_size,
        backbone_width=m.backbone_width, backbone_stride=m.backbone_stride, d_model=m.d_model, n_heads=m.n_heads,
        n_encoder_layers=m.n_encoder_layers, n_decoder_layers=m.n_decoder_layers, d_ff=m.d_ff,
        dropout=m.dropout, n_queries=m.n_queries, queries=m.queries))


def criterion(m: DetectModelConfig, n_classes: int) -> SetCriterion:
    weights = {"class_weight": m.class_weight, "l1_weight": m.l1_weight, "giou_weight": m.giou_weight}
    return SetCriterion(n_classes, HungarianMatcher(**weights), no_object_weight=m.no_object_weight, **weights)


def checked_categories(path: Path, n_classes: int) -> list[dict]:
    """A run's categories.json: one {"id": whole number, "name": text} for each of the model's classes;
    else a DamagedFileError."""
    categories = runs.read_json(path)
    if not (isinstance(categories, list) and len(categories) == n_classes and all(
            isinstance(c, dict) and isinstance(c.get("id"), int) and not isinstance(c["id"], bool)
            and isinstance(c.get("name"), str) for c in categories)):
        raise DamagedFileError(path, f"not a list of {n_classes} {{\"id\": whole number, \"name\": text}}, as the "
                                     f"run wrote it")
    return categories


def train(config: DetectConfig, run: Path, data: DetectData, resume: bool = False, log=print, *,
          parallel: SingleProcess | None = None) -> dict[str, Any]:
    """Train, then score the test images. Under torchrun, ``parallel`` is this rank's part: the main rank
    makes the built-in set and writes the files; every rank draws the whole batch and trains on its rows
    of it, with the set loss divided by the whole batch's objects (``SetCriterion``'s ``whole``) and
    batch norm over the whole batch, so that the ranks follow the one-process run."""
    d, m, t, started = config.data, config.model, config.train, time.perf_counter()
    parallel = parallel or SingleProcess()
    if not parallel.is_main:
        log = lambda *args, **kwargs: None  # noqa: E731 — one rank speaks
    if not resume:  # first: a run stopped while it makes its data is still a run (--overwrite, --resume)
        parallel.on_main(lambda: runs.write_run(run, TASK, to_dict(config)))
    if data.train is None:  # the built-in set: made in the run, where eval --coco finds it
        try:
            data = built_in(config, run, parallel)
        except UserError:  # under torchrun, the main rank's DataError reaches the others as a UserError
            if not resume:
                raise
            raise UserError(f"{run} was trained on the built-in images it keeps in {DATA_DIR}/, made with other "
                            f"data settings; a resumed run keeps its data: leave out the --set data.… changes") from None
    categories = data.train.categories
    kept = run / "categories.json"
    if resume and kept.is_file() and runs.read_json(kept) != categories:  # checked before it is rewritten
        names = ", ".join(f"{c['id']}: {c['name']}" for c in categories)
        raise DataError(f"the data's categories ({names}) are not those in {kept}, which the run was trained on: "
                        f"a resumed run keeps its categories")
    from .vision import png_data_url

    def describe() -> None:
        write_json(run / "categories.json", categories)  # again on resume: the same, or what a stopped start missed
        runs.write_example(run, {"image": png_data_url(data.valid.images[0]), "source": "the first validation image"})

    parallel.on_main(describe)
    torch.manual_seed(t.seed)  # the same initial weights in every run of this seed
    model = build_detr(m, d, len(categories))
    loss_of = criterion(m, len(categories))
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: DETR ({m.queries} queries), {n_params:,} parameters, feature map "
        f"{d.image_size // m.backbone_stride}² ; images: train {len(data.train.images)}, "
        f"valid {len(data.valid.images)}" + (f", test {len(data.test.images)}" if data.test is not None else ""))
    images = torch.from_numpy(data.train.images)
    labels, boxes = pad_targets(data.train.targets)

    def make_batch(rows: np.ndarray) -> dict[str, torch.Tensor]:
        index = torch.from_numpy(rows)
        whole = torch.tensor([len(rows), int((labels[index] >= 0).sum())])  # (images, objects) of the batch
        return {"images": images[index], "labels": labels[index], "boxes": boxes[index],
                "whole": whole.expand(len(rows), 2)}  # on every row: a rank's rows still know the whole batch

    def loss_fn(model, batch):
        share, whole = len(batch["images"]), tuple(batch["whole"][0].tolist())
        losses = loss_of(model(batch["images"]), unpad_targets(batch["labels"], batch["boxes"]), whole)
        # The engine weights a rank's loss by its rows over the batch's: undo that, the share is already
        # the share's part of the whole batch's loss (× 1.0 on one process).
        return losses["loss"] * (whole[0] / share), share

    def validate(model) -> dict[str, float]:
        scores = Detector(model, categories, config).evaluate(data.valid)
        return {"val_map": scores["map"], "val_map_50": scores["map_50"]}

    trainer = Trainer(model, t, run, loss_fn=loss_fn,
                      batches=ShuffledBatches(len(images), t.batch_size, t.seed, make_batch),
                      evaluate=validate, select="val_map", maximize=True, d_model=m.d_model, parallel=parallel)
    progress = trainer.fit(resume=resume)
    whole_model = parallel.export(trainer.model)  # the best weights as one plain model, on the main rank

    def score_and_write() -> dict[str, Any]:
        model = whole_model.eval()
        detector = Detector(model, categories, config)
        metrics: dict[str, Any] = {**validate(model)}
        if data.test is not None:
            metrics.update({f"test_{key}": value for key, value in detector.evaluate(data.test).items()})
            metrics["test_images"] = len(data.test.images)
        metrics.update({"steps": progress.step, "best_step": progress.best_step,
                        "train_seconds": round(progress.train_seconds, 2),
                        "total_seconds": round(time.perf_counter() - started, 2), "parameters": n_params,
                        "processes": parallel.world,
                        "data": d.coco or f"digits detection (built in, seed {d.digits_seed}), {DATA_DIR}/"})
        runs.write_metrics(run, metrics)
        shown = data.test if data.test is not None else data.valid
        detector.draw(shown, range(min(8, len(shown.images))), run)
        return metrics

    return parallel.on_main(score_and_write)


# --- the registry entry --------------------------------------------------------------------------

class DetectTask(Task):
    name = "detect"
    models = ("DETR",)
    predict_inputs = "image files or folders"
    description = "object detection: a COCO folder (or built-in digits on a canvas) -> DETR"
    example = "seqlab train detect --coco shapes/ --out runs/shapes"
    config_class = DetectConfig
    eval_flags = (Flag("coco", "detect: a COCO folder (images/ and an instances JSON)", required=True),)
    predict_flags = (Flag("out", "detect: write the detections as COCO results JSON (one image: its boxes drawn "
                                 "beside it, same name .png)"),
                     Flag("threshold", "detect: the lowest score printed (default 0.5)", type=float))

    def read_data(self, config: DetectConfig) -> DetectData:
        return read_data(config)

    def train(self, config, run, data, *, resume=False, parallel=None, log=print) -> dict[str, Any]:
        return train(config, run, data, resume=resume, log=log, parallel=parallel)

    def summary(self, config, m) -> str:
        if "test_map" in m:
            return (f"test: mAP@[.5:.95] {m['test_map']:.4f}, mAP@.5 {m['test_map_50']:.4f} on "
                    f"{m['test_images']} images")
        return f"validation: mAP@[.5:.95] {m['val_map']:.4f}, mAP@.5 {m['val_map_50']:.4f}"

    def load(self, run, device="cpu") -> Detector:
        info, model = runs.load_trained(run, TASK, "a detection run", device)
        runs.check_fits(run, info, "data.image_size", model.config.image_size)  # images are resized to it
        categories = checked_categories(Path(run) / "categories.json", model.config.n_classes)
        return Detector(model, categories, build(DetectConfig, info["config"]))

    def evaluate(self, detector: Detector, options) -> dict[str, Any]:
        d = detector.config.data
        data = coco.read_coco(options["coco"], image_size=d.image_size, grey=detector.grey,
                              categories=detector.categories)
        return {**detector.evaluate(data), "images": len(data.images)}

    def predict(self, detector: Detector, inputs, options):
        if not inputs:
            raise UserError("give the input: image files or folders as arguments or lines on standard input")
        threshold = 0.5 if options.get("threshold") is None else options["threshold"]
        if not 0.0 <= threshold <= 1.0:
            raise UserError(f"--threshold must be in [0, 1]; got {threshold:g}")
        return detector.predict_files(inputs, threshold, options.get("out"))

    def explore_example(self, detector: Detector, run) -> dict[str, Any]:
        return runs.read_example(run) or {"image": detector.blank_image(), "source": "a blank image"}

    def explore(self, detector: Detector, request) -> dict[str, Any]:
        if not request.image:
            raise UserError("choose an image file first")
        return detector.explore(request.image)


register(DetectTask())
