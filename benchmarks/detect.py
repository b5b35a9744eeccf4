"""Detection on the built-in digits set: DETR (DAB-DETR anchor queries, the default, and the paper's
learned queries) against a conventional detector — CenterNet (Zhou et al. 2019) on the same backbone —
given the same training seconds, all scored on the test split by pycocotools; then images a second
for ``predict`` at batch 1 and batched.

    .venv/bin/python benchmarks/detect.py [--steps 3400] [--threads 2] [--skip-learned]
    .venv/bin/python benchmarks/detect.py --inference-only RUN_DIR

The DETR runs are step-bound (``seqlab train detect --max-steps``); CenterNet gets the steps that fit
in the anchor-query DETR's training seconds at its own measured step time (the same CPU budget; DETR's
seconds include its validations). CenterNet trains in fp32 (DETR: ``precision auto``) and is scored at its
last step (DETR: its best validation checkpoint). The test split is scored once, at the end of each run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

COMMON = ["--set", "train.progress=false", "--set", "train.tensorboard=false"]


def train_detr(root: Path, queries: str, steps: int, threads: int) -> tuple[Path, dict]:
    from seqlab.cli.main import main

    run = root / f"detr-{queries}"
    assert main(["train", "detect", "--out", str(run), "--queries", queries, "--max-steps", str(steps),
                 "--threads", str(threads), *COMMON]) == 0
    return run, json.loads((run / "metrics.json").read_text())


def train_centernet(root: Path, detr_run: Path, seconds: float, threads: int) -> dict:
    """CenterNet on the DETR run's own data folders (the same images), for ``seconds`` of training."""
    from seqlab.data import coco
    from seqlab.data.batching import ShuffledBatches
    from seqlab.models.centernet import CenterNet, CenterNetConfig, centernet_loss, decode
    from seqlab.tasks.detect import DetectConfig
    from seqlab.tasks.detector import pad_targets, unpad_targets
    from seqlab.train.loop import Trainer

    torch.set_num_threads(threads)
    config = DetectConfig()
    size = config.data.image_size
    train, test = (coco.read_coco(detr_run / "data" / split, image_size=size) for split in ("train", "test"))
    images = torch.from_numpy(train.images)
    labels, boxes = pad_targets(train.targets)

    def make_batch(rows):
        index = torch.from_numpy(rows)
        return {"images": images[index], "labels": labels[index], "boxes": boxes[index]}

    def loss_fn(model, batch):
        outputs = model(batch["images"])
        return centernet_loss(outputs, unpad_targets(batch["labels"], batch["boxes"]))["loss"], len(batch["images"])

    t = config.train
    torch.manual_seed(t.seed)
    model = CenterNet(CenterNetConfig(len(train.categories), image_size=size,
                                      backbone_width=config.model.backbone_width))
    # Its step time, measured on 20 steps of a throwaway copy, sets the steps that fit in `seconds`.
    probe = CenterNet(model.config)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=t.lr)
    batches = ShuffledBatches(len(images), t.batch_size, t.seed, make_batch)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        loss, _ = loss_fn(probe, next(batches))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    step_seconds = statistics.median(times[5:])
    steps = max(1, int(seconds / step_seconds))
    t.max_steps, t.eval_every, t.precision, t.progress, t.tensorboard = steps, steps, "fp32", False, False
    t.lr = 1e-3  # DETR's recipe otherwise (warm-up, clipping at 0.1, weight decay), at a rate a CNN takes
    run = root / "centernet"
    run.mkdir()
    trainer = Trainer(model, t, run, loss_fn=loss_fn,
                      batches=ShuffledBatches(len(images), t.batch_size, t.seed, make_batch),
                      evaluate=lambda m: {}, select=None, d_model=64)
    progress = trainer.fit()
    model = trainer.model.eval()
    with torch.no_grad():
        found = [image for i in range(0, len(test.images), 64)
                 for image in decode(model(torch.from_numpy(test.images[i : i + 64])), k=20)]
    pixels = [coco.to_pixel_boxes(f["boxes"].numpy(), size) for f, size in zip(found, test.sizes)]
    results = coco.to_coco_results(pixels, [f["scores"].numpy() for f in found], [f["labels"].numpy() for f in found],
                                   test.image_ids, test.categories)
    figures = coco.evaluate(test.annotation_file, results)
    return {**{f"test_{k}": v for k, v in figures.items()}, "steps": progress.step,
            "train_seconds": progress.train_seconds, "step_ms": 1000 * step_seconds,
            "parameters": sum(p.numel() for p in model.parameters())}


def inference_speed(run: Path, threads: int) -> tuple[float, float]:
    """Images a second through ``predict``'s path (read, resize, detect, COCO results) on 200 test files:
    one image a forward pass, and the whole folder as ``seqlab predict RUN DIR`` runs it (64 a pass)."""
    from seqlab.tasks.task import get

    torch.set_num_threads(threads)
    detector = get("detect").load(run)
    files = sorted((run / "data" / "test" / "images").iterdir())[:200]
    start = time.perf_counter()
    for f in files:
        for line in detector.predict_files([str(f)], 0.5, None):
            pass
    one = len(files) / (time.perf_counter() - start)
    start = time.perf_counter()
    for line in detector.predict_files([str(f) for f in files], 0.5, None):
        pass
    batched = len(files) / (time.perf_counter() - start)
    return one, batched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="DETR's steps (default: the task's max_steps)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-learned", action="store_true", help="leave out the paper's learned queries")
    parser.add_argument("--inference-only", type=Path, metavar="RUN", help="only time predict on a trained run")
    args = parser.parse_args()
    from seqlab.tasks.detect import DetectConfig

    if args.inference_only:
        one, batched = inference_speed(args.inference_only, args.threads)
        print(f"predict: {one:.1f} images/s one file at a time, {batched:.1f} images/s in batches of 64")
        return

    steps = args.steps or DetectConfig().train.max_steps
    root = Path(tempfile.mkdtemp(prefix="seqlab-detect-bench-"))
    rows = []
    anchor_run, anchor = train_detr(root, "anchor", steps, args.threads)
    rows.append(("DETR, anchor queries (DAB-DETR)", anchor))
    if not args.skip_learned:
        rows.append(("DETR, learned queries (the paper's)", train_detr(root, "learned", steps, args.threads)[1]))
    rows.append(("CenterNet, same backbone", train_centernet(root, anchor_run, anchor["train_seconds"], args.threads)))
    print("\n| model | steps | train s | parameters | test mAP@[.5:.95] | mAP@.5 | mAP@.75 | small | medium |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, m in rows:
        print(f"| {name} | {m['steps']} | {m['train_seconds']:.0f} | {m['parameters']:,} | {m['test_map']:.4f} | "
              f"{m['test_map_50']:.4f} | {m['test_map_75']:.4f} | {m['test_map_small']:.4f} | "
              f"{m['test_map_medium']:.4f} |")
    one, batched = inference_speed(anchor_run, args.threads)
    print(f"\npredict, DETR anchor queries: {one:.1f} images/s one file at a time, {batched:.1f} images/s "
          f"in batches of 64 ({batched / one:.2f}x)")
    print(f"runs in {root}")


if __name__ == "__main__":
    main()
