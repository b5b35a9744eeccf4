"""A trained DETR run as a *detector*: images in, boxes out — for ``predict``, ``eval``, the pictures a
run draws and the explorer.

DETR needs no non-maximum suppression (Carion et al. 2020 §3): every object query gives one box, and its
score is the most probable real class's probability. COCO's mAP ranks every query's box; ``predict``
prints those at or above a threshold.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from ..data import coco
from ..data import images as image_data
from ..errors import DataError, UserError
from ..io import check_new_file

BATCH = 64  # images a forward pass when scoring a folder


def pad_targets(targets: list[dict[str, np.ndarray]]) -> tuple[Tensor, Tensor]:
    """Per image ``{"labels" (n,), "boxes" (n, 4)}`` -> labels (N, n_max) with -1 where an image has
    fewer boxes, boxes (N, n_max, 4): tensors a batch can hold."""
    n_max = max([len(t["labels"]) for t in targets] + [1])
    labels = torch.full((len(targets), n_max), -1, dtype=torch.long)
    boxes = torch.zeros(len(targets), n_max, 4)
    for i, t in enumerate(targets):
        labels[i, : len(t["labels"])] = torch.as_tensor(t["labels"], dtype=torch.long)
        boxes[i, : len(t["labels"])] = torch.as_tensor(t["boxes"], dtype=torch.float32)
    return labels, boxes


def unpad_targets(labels: Tensor, boxes: Tensor) -> list[dict[str, Tensor]]:
    """The inverse of :func:`pad_targets`, as the set loss takes them."""
    return [{"labels": row[row >= 0], "boxes": box[row >= 0]} for row, box in zip(labels, boxes)]


def scored(outputs: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    """A DETR's outputs -> per query its score (B, Q) (the most probable real class's probability), that
    class (B, Q) and its box (B, Q, 4), normalised (cx, cy, w, h)."""
    probs = outputs["logits"].float().softmax(-1)[..., :-1]  # the last column is "no object"
    scores, labels = probs.max(-1)
    return scores, labels, outputs["boxes"].float()


class Detector:
    def __init__(self, model, categories: list[dict[str, Any]], config) -> None:
        self.model, self.categories, self.config = model, categories, config
        self.grey = model.config.channels == 1  # the checkpoint's, whatever run.json says of data.grey
        self.names = [str(c["name"]) for c in categories]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # --- boxes ------------------------------------------------------------------------------------

    @torch.no_grad()
    def detect(self, images: np.ndarray | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N, C, S, S) images -> scores (N, Q), classes (N, Q), boxes (N, Q, 4) normalised, in batches."""
        images = torch.as_tensor(images)
        parts = [scored(self.model(images[i : i + BATCH].to(self.device))) for i in range(0, len(images), BATCH)]
        return tuple(torch.cat([part[k].cpu() for part in parts]) for k in range(3))

    def results(self, data: coco.Detections) -> list[dict[str, Any]]:
        """Every query's box for every image of ``data``, as COCO results (pixels of the original images)."""
        scores, labels, boxes = self.detect(data.images)
        pixels = [coco.to_pixel_boxes(b.numpy(), size) for b, size in zip(boxes, data.sizes)]
        return coco.to_coco_results(pixels, scores.numpy(), labels.numpy(), data.image_ids, self.categories)

    def evaluate(self, data: coco.Detections) -> dict[str, float]:
        """COCO's figures (pycocotools) for ``data``'s images."""
        was_training = self.model.training
        self.model.eval()
        try:
            return coco.evaluate(data.ground_truth, self.results(data), image_ids=data.image_ids)
        finally:
            self.model.train(was_training)

    # --- predict ------------------------------------------------------------------------------------

    def prepare(self, source) -> tuple[Tensor, tuple[int, int]]:
        """An image file (a path or a file-like object) -> (1, C, S, S) as the model was trained on, and
        the image's own (width, height)."""
        array, size = image_data.read_image_and_size(source, self.config.data.image_size, self.grey)
        return torch.from_numpy(array)[None], size

    def image_files(self, inputs: Iterable[str]) -> list[Path]:
        """The files named, and a folder's image files (by suffix; hidden ones, such as macOS's ``._x.png``,
        and folders left out); a name that is not UTF-8, which the COCO results could not hold, is a UserError."""
        files = []
        for name in inputs:
            path = Path(name)
            if path.is_dir():
                found = sorted(p for p in path.iterdir() if p.suffix.lower() in image_data.EXTENSIONS
                               and not p.name.startswith(".") and p.is_file())
                if not found:
                    raise UserError(f"no image files in {path}")
                for file in found:
                    try:
                        str(file).encode("utf-8")
                    except UnicodeEncodeError:  # a byte the file system's encoding could not decode
                        raise UserError(f"the name of {str(file)!r} in {path} is not UTF-8; rename the file") from None
                files += found
            elif path.is_file():
                files.append(path)
            else:
                raise UserError(f"image not found: {path}")
        return files

    def predict_files(self, inputs: list[str], threshold: float, out: str | None) -> Iterator[str]:
        """One line a box at or above ``threshold``: file, class, score, [x, y, w, h] in pixels. With
        ``out``, every box of every image as COCO results (``file_name`` naming the image), and for a
        single image its boxes drawn into ``out`` with ``.png`` for its suffix."""
        files = self.image_files(inputs)
        if out is not None and Path(out).suffix.lower() != ".json":
            raise UserError(f"--out names a .json file for the COCO results; got {out}")
        if out is not None:
            check_new_file(out, "--out")
            if len(files) == 1:  # its boxes are drawn beside the results
                check_new_file(Path(out).with_suffix(".png"), "--out")
        results, lines = [], []  # printed once every image is read: an unreadable one prints nothing
        for start in range(0, len(files), BATCH):  # BATCH images a forward pass
            chunk = files[start : start + BATCH]
            prepared = [self.prepare(path) for path in chunk]
            scores, labels, boxes = self.detect(torch.cat([x for x, _ in prepared]))
            for i, (path, (_, size)) in enumerate(zip(chunk, prepared)):
                pixels = coco.to_pixel_boxes(boxes[i].numpy(), size)
                found = coco.to_coco_results([pixels], scores[i : i + 1].numpy(), labels[i : i + 1].numpy(), [0],
                                             self.categories)
                for result in found:
                    del result["image_id"]
                    result["file_name"] = str(path)
                results += found
                for result in sorted(found, key=lambda r: -r["score"]):
                    if result["score"] >= threshold:
                        name = self.names[self.category_index(result["category_id"])]
                        x0, y0, w, h = result["bbox"]
                        lines.append(f"{path}\t{name}\t{result['score']:.3f}\t{x0:.1f} {y0:.1f} {w:.1f} {h:.1f}")
        if out is not None:
            coco.write_results(Path(out), results)
            if len(files) == 1:
                from ..viz.detection import draw_boxes

                shown = [r for r in results if r["score"] >= threshold]
                draw_boxes(files[0], shown, self.names_by_id(), Path(out).with_suffix(".png"))
        yield from lines

    def category_index(self, category_id: int) -> int:
        return next(i for i, c in enumerate(self.categories) if c["id"] == category_id)

    def names_by_id(self) -> dict[int, str]:
        return {int(c["id"]): str(c["name"]) for c in self.categories}

    # --- pictures and the explorer -------------------------------------------------------------------

    @torch.no_grad()
    def attention(self, image) -> dict[str, Any]:
        """One image's outputs (an image file, or (1, C, S, S) prepared) with the attention weights of the
        same call: ``encoder_attention`` per layer (1, H, S, S), ``cross_attention`` per decoder layer
        (1, H, Q, S), ``feature_size`` (h, w)."""
        x = image if isinstance(image, Tensor) else self.prepare(image)[0]
        return self.model(x.to(self.device), need_weights=True)

    def draw(self, data: coco.Detections, indices, run: Path, threshold: float = 0.5) -> None:
        """``detections.png``, ``decoder_attention.png`` and ``encoder_attention.png`` for a few images."""
        from ..viz.detection import plot_decoder_attention, plot_detections, plot_encoder_attention

        indices = list(indices)
        x = torch.from_numpy(data.images[indices])
        scores, labels, boxes = self.detect(x)
        truth = [data.targets[i] for i in indices]
        pictures = x.permute(0, 2, 3, 1).squeeze(-1).numpy()
        plot_detections(pictures, [(s, l, b) for s, l, b in zip(scores, labels, boxes)], truth, self.names,
                        threshold, run / "detections.png")
        outputs = self.attention(x[:1])
        plot_decoder_attention(pictures[0], outputs, scores[0], labels[0], boxes[0], self.names, threshold,
                               run / "decoder_attention.png")
        found = [boxes[0][q, :2].tolist() for q in scores[0].argsort(descending=True).tolist() if scores[0][q] >= threshold]
        plot_encoder_attention(pictures[0], outputs, run / "encoder_attention.png", found)  # from each object's centre

    def blank_image(self) -> str:
        from .vision import png_data_url

        size = self.config.data.image_size
        return png_data_url(np.zeros((1 if self.grey else 3, size, size), dtype=np.float32))

    def explore(self, data: bytes, threshold: float = 0.5) -> dict[str, Any]:
        """The boxes of one uploaded image scoring ``threshold`` or more (else the likeliest one) and, for
        each, its query's cross-attention over the image in every decoder layer, per head (the paper's
        Figure 6 shows the last)."""
        from .views import view

        try:
            x, (width, height) = self.prepare(io.BytesIO(data))
        except DataError:
            raise UserError("the file is not an image this server can read") from None
        outputs = self.attention(x)
        scores, labels, boxes = scored(outputs)
        h, w = outputs["feature_size"]
        rows, cols = [str(r) for r in range(h)], [str(c) for c in range(w)]
        ranked = scores[0].argsort(descending=True).tolist()
        kept = [q for q in ranked if scores[0, q] >= threshold]
        shown, lines = {}, []
        if not kept:  # still show where the likeliest query looked
            kept = ranked[:1]
            lines.append(f"no box scored {threshold:g} or more; the likeliest one:")
        for rank, q in enumerate(kept, 1):
            name = self.names[int(labels[0, q])]
            x0, y0, bw, bh = coco.to_pixel_boxes(boxes[0, q].numpy(), (width, height))[0]
            lines.append(f"{rank}. {name} {float(scores[0, q]):.3f} at [{x0:.0f}, {y0:.0f}, {bw:.0f}, {bh:.0f}]")
            maps = [layer[:, :, q].reshape(1, -1, h, w) for layer in outputs["cross_attention"]]
            grid_view = view(rows, cols, maps)
            grid_view["token_lines"] = False
            grid_view["box"] = [float(v) for v in boxes[0, q]]  # normalised (cx, cy, w, h), for the page to draw
            shown[f"box {rank} ({name} {float(scores[0, q]):.2f}): its query's cross-attention, per head"] = grid_view
        return {"output": "\n".join(lines), "views": shown}
