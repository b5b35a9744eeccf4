"""Image classification with a Vision Transformer.

    seqlab train vision                       # scikit-learn's 8×8 digits, a fixed stratified 80/20 split
    seqlab train vision --images DIR          # DIR/CLASS/*.png …, read with Pillow
    seqlab predict RUN_DIR IMAGE              # class probabilities
    seqlab eval RUN_DIR --images DIR          # accuracy on new images, a sub-folder per class

Writes ``metrics.json`` (``test_accuracy``, ``test_macro_f1``), ``confusion.png`` and
``attention.png`` (attention rollout over the patches for a few test images).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..config import build, check_model, option, to_dict
from ..data import images as image_data
from ..data.batching import ShuffledBatches
from ..errors import DamagedFileError, DataError, UserError
from ..models.vit import VisionTransformer, VisionTransformerConfig, attention_rollout
from ..parallel.config import ParallelConfig
from ..parallel.runtime import SingleProcess, check_layout
from ..train.config import TrainConfig
from ..train.loop import Trainer
from . import run_dir as runs, views
from .class_scores import class_indices, ranked_line, scores, scores_by_class
from .task import Flag, Task, register

TASK = "vision"
MAX_IMAGE_SIZE = 1024
MAX_SHIFT = 8


@dataclass
class VisionDataConfig:
    images: str = option("", "a folder with one sub-folder of images per class (default: --dataset)", path=True)
    dataset: Literal["digits"] = option("digits", "a bundled data set (default digits: scikit-learn's 8×8 digits)")
    image_size: int = 32  # folders: images are resized to size × size
    grey: bool = True  # folders: read as one grey channel (False: RGB)
    test_fraction: float = 0.2
    valid_fraction: float = 0.1  # of the training images, to choose the best checkpoint; 0 = train on all, keep the last
    augment_shift: int = 1  # random translation by up to this many pixels while training; 0 = off
    test_time_shifts: bool = True  # predict: average the probabilities over every such translation

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 0.5 or not 0.0 <= self.valid_fraction < 0.5:
            raise ValueError("data.test_fraction must be in (0, 0.5), data.valid_fraction in [0, 0.5)")
        if self.image_size < 2 or self.augment_shift < 0:
            raise ValueError("data.image_size must be at least 2 and data.augment_shift not negative")
        if self.image_size > MAX_IMAGE_SIZE:  # every image is held as size² floats (1024: 4 MB a channel)
            raise ValueError(f"data.image_size must be at most {MAX_IMAGE_SIZE}; got {self.image_size}")
        if self.augment_shift > MAX_SHIFT:  # prediction averages (2 · shift + 1)² shifted copies
            raise ValueError(f"data.augment_shift must be at most {MAX_SHIFT} pixels; got {self.augment_shift}")


@dataclass
class VisionModelConfig:
    patch_size: int = 2
    d_model: int = 96
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 192
    dropout: float = 0.1  # on the residual stream and embeddings
    # Dropout masks over attention weights and the feed-forward width cost ~30 % of a digits step on
    # CPU (profiled: bernoulli_); the residual stream's dropout and the random shifts regularise enough.
    attention_dropout: float | None = 0.0  # None = dropout
    ff_dropout: float | None = 0.0  # None = dropout

    def __post_init__(self) -> None:
        check_model(self, self.n_heads, self.n_layers, self.d_ff, self.patch_size,
                    rates=("dropout", "attention_dropout", "ff_dropout"))


def _vision_train_defaults() -> TrainConfig:
    # Digits: ~20 steps an epoch, so 3,600 steps ≈ 180 epochs, the cosine schedule ending at the last
    # step (time per step: BENCHMARKS.md).
    return TrainConfig(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05, warmup_steps=100,
                       max_steps=3600, batch_size=64, label_smoothing=0.0, eval_every=500)


@dataclass
class VisionConfig:
    data: VisionDataConfig = field(default_factory=VisionDataConfig)
    model: VisionModelConfig = field(default_factory=VisionModelConfig)
    train: TrainConfig = field(default_factory=_vision_train_defaults)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # used when torchrun starts several ranks

    def __post_init__(self) -> None:
        self.parallel.data_parallel_only("vision")

    def check_layout(self, world: int) -> None:
        """A UserError unless the [parallel] layout fits ``world`` processes and the batch splits evenly."""
        check_layout(self.parallel, world, self.train.batch_size)


def load_images(data: VisionDataConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if data.images:
        return image_data.load_image_folder(data.images, data.image_size, data.grey)
    return image_data.load_digits()


def split(labels: np.ndarray, test_fraction: float, valid_fraction: float, seed: int = 0,
          classes: list[str] | None = None) -> dict[str, np.ndarray]:
    """Stratified train / valid / test indices, fixed by ``seed``; ``classes`` names the labels in errors."""
    from sklearn.model_selection import train_test_split  # here: scikit-learn would slow every start-up

    counts = np.bincount(labels)
    if (counts[counts > 0] < 3).any():
        rare = int(np.flatnonzero((counts > 0) & (counts < 3))[0])
        name = repr(classes[rare]) if classes else rare  # the folder's name, as the user knows the class
        raise DataError(f"class {name} has {counts[rare]} image(s); each class needs at least 3 "
                        f"(train, validation and test)")
    index = np.arange(len(labels))
    try:
        train, test = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
        if not valid_fraction:
            return {"train": train, "valid": index[:0], "test": test}
        train, valid = train_test_split(train, test_size=valid_fraction, stratify=labels[train], random_state=seed)
    except ValueError:  # a split too small to hold one image of every class
        raise DataError(f"{len(labels)} images in {len(counts[counts > 0])} classes are too few to give the test "
                        f"(data.test_fraction={test_fraction}) and validation (data.valid_fraction="
                        f"{valid_fraction}) images one of each class; add images or raise those fractions") from None
    return {"train": train, "valid": valid, "test": test}


def check_patch_size(patch_size: int, image_size: int) -> None:
    if image_size % patch_size:
        raise UserError(f"model.patch_size {patch_size} does not divide the image size {image_size}")


def shift(images: torch.Tensor, pixels: int) -> torch.Tensor:
    """Each image moved by a random (dy, dx) in [-pixels, pixels], zeros shifted in (global RNG, so a
    resumed run draws the same shifts)."""
    B, C, H, W = images.shape
    padded = F.pad(images, (pixels, pixels, pixels, pixels))
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, B)).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + H, dx[i] : dx[i] + W] for i in range(B)])


@torch.no_grad()
def predict(model, images: torch.Tensor, shifts: int = 0, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities (N, classes). With ``shifts``, the mean over the image moved by every
    (dy, dx) in [-shifts, shifts]² — the translations the model saw in training (test-time augmentation)."""
    device = next(model.parameters()).device
    H, W = images.shape[-2:]
    padded = F.pad(images, (shifts, shifts, shifts, shifts))
    views = [padded[..., dy : dy + H, dx : dx + W] for dy in range(2 * shifts + 1) for dx in range(2 * shifts + 1)]
    return sum(torch.cat([model(view[i : i + batch_size].to(device)).float().softmax(-1).cpu()
                          for i in range(0, len(images), batch_size)]) for view in views) / len(views)


def check_image_file(path: str | Path) -> None:
    """A UserError unless ``path`` is a file: a folder is named as one (``seqlab eval RUN --images DIR``
    scores a folder of class folders)."""
    if Path(path).is_dir():
        raise UserError(f"{path} is a folder; predict takes image files (seqlab eval RUN --images {path} scores "
                        f"a folder of class folders)")
    if not Path(path).is_file():
        raise UserError(f"image not found: {path}")


class ImageClassifier:
    def __init__(self, model: VisionTransformer, classes: list[str], config: VisionConfig) -> None:
        self.model, self.classes, self.config = model, classes, config
        self.shifts = config.data.augment_shift if config.data.test_time_shifts else 0

    @classmethod
    def load(cls, run: str | Path, device: str = "cpu") -> "ImageClassifier":
        info, model = runs.load_trained(run, TASK, "an image-classification run", device)
        classes = runs.read_classes(run, model.config.n_classes)
        config = build(VisionConfig, info["config"])
        if config.data.images:  # the size images are resized to before the model reads them
            runs.check_fits(run, info, "data.image_size", model.image_size)
        elif model.image_size != 8:
            raise DamagedFileError(Path(run) / "run.json", f"it lacks data.images: the built-in 8×8 digits, "
                                                           f"though the checkpoint's model reads {model.image_size}")
        return cls(model, classes, config)

    def prepare(self, source) -> torch.Tensor:
        """An image file (a path or a file-like object) -> (1, C, H, W) as the model was trained on."""
        d = self.config.data
        size, grey = (8, True) if not d.images else (d.image_size, d.grey)
        image = image_data.read_image(source, size, grey)
        if not d.images and image.mean() > 0.5:  # a dark digit on white: the data has bright strokes on black
            image = 1.0 - image
        return torch.from_numpy(image)[None]

    def probabilities(self, path: str | Path) -> dict[str, float]:
        check_image_file(path)
        probs = predict(self.model, self.prepare(Path(path)), self.shifts)[0]
        return {name: float(p) for name, p in zip(self.classes, probs)}

    def predict(self, paths: list[str | Path]) -> list[str]:
        """Each image's most probable class name."""
        return [max(probs, key=probs.get) for probs in map(self.probabilities, paths)]

    def attention(self, path: str | Path) -> list[torch.Tensor]:
        """Per layer the (H, 1 + N, 1 + N) self-attention over [CLS] and the N patches of one image, as
        ``seqlab.models.vit.attention_rollout`` takes them (with a batch dimension)."""
        check_image_file(path)
        with torch.no_grad():
            _, maps = self.model(self.prepare(Path(path)).to(next(self.model.parameters()).device), need_weights=True)
        return [w[0].float().cpu() for w in maps]

    def evaluate_folder(self, root: str | Path) -> dict[str, Any]:
        """Accuracy, macro-F1 and each class's figures on DIR/CLASS/*.png …, each image prepared as
        ``predict`` prepares it. One class folder is enough; a folder the run has no class for is a DataError."""
        files = image_data.image_files(root, min_classes=1)
        truth = np.repeat(class_indices(list(files), self.classes, root), [len(f) for f in files.values()])
        images = torch.cat([self.prepare(path) for paths in files.values() for path in paths])
        predicted = predict(self.model, images, self.shifts).argmax(-1).numpy()
        return {**scores_by_class(truth, predicted, self.classes), "images": int(len(truth))}


def png_data_url(image: np.ndarray) -> str:
    """A (C, H, W) image in [0, 1] as a PNG data: URL (the explorer's example)."""
    import base64
    import io

    from PIL import Image

    pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def build_vit(m: VisionModelConfig, image_size: int, n_classes: int, channels: int) -> VisionTransformer:
    return VisionTransformer(VisionTransformerConfig(
        image_size, n_classes, channels=channels, patch_size=m.patch_size, d_model=m.d_model, n_heads=m.n_heads,
        n_layers=m.n_layers, d_ff=m.d_ff, dropout=m.dropout, attention_dropout=m.attention_dropout,
        ff_dropout=m.ff_dropout))


def train(config: VisionConfig, run: Path, data: tuple[np.ndarray, np.ndarray, list[str]],
          resume: bool = False, log=print, *,
          parallel: SingleProcess | None = None) -> tuple[ImageClassifier, dict[str, Any]]:
    """Train with the shared engine, then score the test images. Under torchrun, ``parallel`` is this
    rank's part: every rank draws the whole batch (random shifts included) and trains on its rows of
    it; the main rank alone writes the files and scores the result."""
    images, labels, classes = data
    d, m, t, started = config.data, config.model, config.train, time.perf_counter()
    parallel = parallel or SingleProcess()
    if not parallel.is_main:
        log = lambda *args, **kwargs: None  # noqa: E731 — one rank speaks
    parts = split(labels, d.test_fraction, d.valid_fraction)
    tensors = torch.from_numpy(images), torch.from_numpy(labels)
    C, H = images.shape[1], images.shape[2]
    check_patch_size(m.patch_size, H)
    if not resume:
        def describe() -> None:
            runs.write_run(run, TASK, to_dict(config))
            (run / "classes.json").write_text(json.dumps(classes))
            held_out = parts["valid"] if len(parts["valid"]) else parts["test"]
            runs.write_example(run, {"image": png_data_url(images[held_out[0]]),
                                     "source": f"the first {'validation' if len(parts['valid']) else 'test'} image"})

        parallel.on_main(describe)
    torch.manual_seed(t.seed)  # the same initial weights in every run of this seed
    model = build_vit(m, H, len(classes), C)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: ViT, {n_params:,} parameters, {(H // m.patch_size) ** 2} "
        f"patches; images: " + ", ".join(f"{k} {len(v)}" for k, v in parts.items()))

    def make_batch(rows: np.ndarray) -> dict[str, torch.Tensor]:
        index = torch.from_numpy(parts["train"][rows])
        x = tensors[0][index]
        return {"x": shift(x, d.augment_shift) if d.augment_shift else x, "y": tensors[1][index]}

    def loss_fn(model, batch):
        return F.cross_entropy(model(batch["x"]), batch["y"], label_smoothing=t.label_smoothing), len(batch["y"])

    validating = len(parts["valid"]) > 0
    shifts = d.augment_shift if d.test_time_shifts else 0

    def accuracy(model, name: str, views: int = shifts) -> float:
        index = torch.from_numpy(parts[name])
        return float((predict(model, tensors[0][index], views).argmax(-1) == tensors[1][index]).float().mean())

    trainer = Trainer(model, t, run, loss_fn=loss_fn, batches=ShuffledBatches(len(parts["train"]), t.batch_size, t.seed, make_batch),
                      evaluate=lambda model: {"val_accuracy": accuracy(model, "valid")} if validating else {},
                      select="val_accuracy" if validating else None, maximize=True, d_model=m.d_model,
                      parallel=parallel)
    progress = trainer.fit(resume=resume)
    whole = parallel.export(trainer.model)  # the best weights as one plain model, on the main rank

    def score_and_write() -> dict[str, Any]:
        model = whole.eval()
        test = torch.from_numpy(parts["test"])
        predicted = predict(model, tensors[0][test], shifts).argmax(-1).numpy()
        truth = labels[parts["test"]]
        metrics = {**{f"test_{key}": value for key, value in scores(truth, predicted).items()},
                   "test_accuracy_one_view": accuracy(model, "test", 0),
                   "test_time_shifts": shifts,
                   **({"val_accuracy": accuracy(model, "valid")} if validating else {}), "test_images": int(len(truth)),
                   "steps": progress.step, "best_step": progress.best_step,
                   "train_seconds": round(progress.train_seconds, 2),
                   "total_seconds": round(time.perf_counter() - started, 2),
                   "parameters": n_params, "processes": parallel.world,
                   "data": d.images or f"{d.dataset} (scikit-learn), stratified split, random_state 0"}
        runs.write_metrics(run, metrics)
        draw_pictures(model, run, tensors[0][test[:8]], truth, predicted, classes)
        return metrics

    metrics = parallel.on_main(score_and_write)
    return ImageClassifier(trainer.model.eval(), classes, config), metrics


def draw_pictures(model, run: Path, sample: torch.Tensor, truth: np.ndarray, predicted: np.ndarray,
                  classes: list[str]) -> None:
    from sklearn.metrics import confusion_matrix

    from ..viz.confusion import plot_confusion, plot_patch_attention

    matrix = confusion_matrix(truth, predicted, labels=range(len(classes)))
    plot_confusion(matrix, classes, run / "confusion.png", "test confusion matrix")
    with torch.no_grad():
        _, maps = model(sample.to(next(model.parameters()).device), need_weights=True)
    grid = model.image_size // model.patch_size
    rollout = attention_rollout(maps).view(-1, grid, grid).cpu().numpy()
    pictures = sample.permute(0, 2, 3, 1).squeeze(-1).numpy() if sample.size(1) in (1, 3) else sample.numpy()
    titles = [f"true {classes[t]}, predicted {classes[p]}" for t, p in zip(truth[: len(sample)], predicted[: len(sample)])]
    plot_patch_attention(pictures, rollout, titles, run / "attention.png",
                         "attention rollout: how much each patch reached the [CLS] output")


# --- the registry entry --------------------------------------------------------------------------

class VisionTask(Task):
    name = "vision"
    models = ("VisionTransformer",)
    predict_inputs = "image files"
    description = "image classification: a folder of class folders (or 8×8 digits) -> a Vision Transformer"
    example = "seqlab train vision --images shapes/ --out runs/shapes"
    config_class = VisionConfig
    eval_flags = (Flag("images", "vision: a folder with one sub-folder of images per class", required=True),)

    def read_data(self, config: VisionConfig):
        """The images, checked here (before a run directory exists, or an --overwrite replaces one):
        the split ``train`` makes and the patch size."""
        images, labels, classes = load_images(config.data)
        split(labels, config.data.test_fraction, config.data.valid_fraction, classes=classes)
        check_patch_size(config.model.patch_size, images.shape[2])
        return images, labels, classes

    def train(self, config, run, data, *, resume=False, parallel=None, log=print) -> dict[str, Any]:
        return train(config, run, data, resume=resume, log=log, parallel=parallel)[1]

    def summary(self, config, m) -> str:
        return f"test: accuracy {m['test_accuracy']:.4f} on {m['test_images']} images, macro-F1 {m['test_macro_f1']:.4f}"

    def load(self, run, device="cpu") -> ImageClassifier:
        return ImageClassifier.load(run, device)

    def evaluate(self, classifier: ImageClassifier, options) -> dict[str, Any]:
        return classifier.evaluate_folder(options["images"])

    def predict(self, classifier: ImageClassifier, inputs, options):
        if not inputs:
            raise UserError("give the input: image files as arguments or lines on standard input")
        return (ranked_line(path, classifier.probabilities(path)) for path in inputs)

    def explore_example(self, classifier: ImageClassifier, run) -> dict[str, Any]:
        example = runs.read_example(run)
        if example is None:  # a run trained before runs kept one: a plain grey image of the model's size
            size, channels = classifier.model.image_size, classifier.model.config.channels
            example = {"image": png_data_url(np.full((channels, size, size), 0.5, dtype=np.float32)),
                       "source": "a generic grey image (this run keeps none)"}
        return example

    def explore(self, classifier: ImageClassifier, request) -> dict[str, Any]:
        if not request.image:
            raise UserError("choose an image file first")
        return views.image(classifier, request.image)


register(VisionTask())
