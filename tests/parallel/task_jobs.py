"""Tiny training runs of translate, classify, forecast, vision, mlm and detect, the same code for one process (called
from a test) and for each rank of a torchrun job (``python -m torch.distributed.run ... task_jobs.py
JOBS.json``, the jobs run one after another in the same ranks). Every run builds its task's config
from the overrides below, asks :func:`seqlab.parallel.runtime.runtime_for_config` for its place in the
job, and calls the task's ``train(..., parallel=...)``."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqlab.config import load_config
from seqlab.parallel.runtime import runtime_for_config
from seqlab.tasks import classify, detect, forecast, masked_lm, run_dir, translate, vision

COMMON = ["train.progress=false", "train.tensorboard=false", "train.curves=false", "train.max_steps=12",
          "train.eval_every=6", "train.log_every=1", "train.batch_size=16", "train.warmup_steps=2", "train.lr=3e-3",
          "train.clip_norm=1.0", "model.dropout=0.0",
          "train.precision='fp32'"]  # pinned: precision "auto" times each side, which could choose differently
TINY = {
    "translate": ["data.tokenizer='word'", "data.vocab_size=64", "data.max_len=12", "model.d_model=16",
                  "model.n_heads=2", "model.n_layers=1", "model.d_ff=32", "decode.beam_size=1",
                  "decode.max_output_len=10", "train.label_smoothing=0.0"],
    "classify": ["model.arch='transformer'", "model.d_model=16", "model.n_heads=2", "model.n_layers=1",
                 "model.d_ff=32", "data.max_len=12", "data.vocab_size=64"],
    "forecast": ["data.input_len=16", "data.horizon=4", "data.split='0.7,0.1,0.2'", "model.arch='patch'",
                 "model.d_model=16", "model.n_heads=2", "model.n_layers=1", "model.d_ff=32", "model.patch_len=4",
                 "model.stride=4"],
    "vision": ["model.patch_size=4", "model.d_model=16", "model.n_heads=2", "model.n_layers=1", "model.d_ff=32",
               "data.augment_shift=1"],
    "mlm": ["data.vocab_size=64", "data.block_size=14", "model.d_model=16", "model.n_heads=2", "model.n_layers=1",
            "model.d_ff=32"],
    # 30 training images: the epoch's last batch of 14 splits 7 + 7; digits of 16-32 pixels on 48 × 48.
    # Adam's eps 1e-3, not 1e-8: some of DETR's gradients are near 0 in the first steps, and Adam with a
    # tiny eps turns their rounding noise into full-size steps (as with the key bias, see the test); a
    # larger eps keeps the update in proportion to the gradient there, so the comparison stays sharp.
    "detect": ["data.digits_train=30", "data.digits_valid=6", "data.digits_test=6", "data.image_size=48",
               "model.backbone_width=4", "model.d_model=16", "model.n_heads=2", "model.n_encoder_layers=1",
               "model.n_decoder_layers=2", "model.d_ff=32", "model.n_queries=6", "train.eps=1e-3"],
}
MODULES = {"translate": (translate, translate.TranslateConfig), "classify": (classify, classify.ClassifyConfig),
           "forecast": (forecast, forecast.ForecastConfig), "vision": (vision, vision.VisionConfig),
           "mlm": (masked_lm, masked_lm.MLMConfig), "detect": (detect, detect.DetectConfig)}
WORDS = "red green blue cat dog sun moon tree".split()


def reversal_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Sentences of 2–6 words and the same words in reverse order; ``n`` odd keeps some batches odd."""
    rng = random.Random(seed)
    sources = [" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) for _ in range(n)]
    return sources, [" ".join(s.split()[::-1]) for s in sources]


def labelled_texts(n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(3)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(2, 8))) for _ in range(n)]
    return texts, ["animal" if ("cat" in t or "dog" in t) else "thing" for t in texts]


def write_series(path: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(300)
    pd.DataFrame({"date": pd.date_range("2024-01-01", periods=len(t), freq="h"),
                  "load": 50 + 10 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, len(t)),
                  "OT": 30 + 4 * np.cos(2 * np.pi * t / 24) + rng.normal(0, 0.3, len(t))}).to_csv(path, index=False)


def write_text(path: Path) -> None:
    """Sentences of the translation words, one a line: the masked language model's text."""
    path.write_text("\n".join(reversal_pairs(300, 4)[0]) + "\n")


def run(task: str, run: str | Path, data_dir: str | Path, overrides: list[str] = (), resume: bool = False) -> None:
    """One run in ``run`` (made here unless resuming); under torchrun, this rank's part of it."""
    module, config_class = MODULES[task]
    run = Path(run)
    base = run_dir.read_run(run)["config"] if resume else None
    settings = [*COMMON, *TINY[task], *overrides]
    if task == "forecast":
        settings.append(f"data.csv='{Path(data_dir) / 'series.csv'}'")
    if task == "mlm":
        settings.append(f"data.text='{Path(data_dir) / 'text.txt'}'")
    config = load_config(config_class, None, settings, base=base)
    parallel = runtime_for_config(config)
    if not resume:
        parallel.on_main(lambda: run.mkdir(parents=True))
    torch.manual_seed(0)  # the tasks leave the initial weights to the caller's random state
    if task == "translate":
        train, test = reversal_pairs(151, 1), reversal_pairs(12, 2)
        module.train(config, run, {"train": train, "valid": test, "test": test}, resume, parallel=parallel)
    elif task == "classify":
        module.train(config, run, *labelled_texts(160), parallel=parallel)
    elif task == "forecast":
        module.train(config, run, forecast.read_series(config.data), resume, parallel=parallel)
    elif task == "mlm":
        module.train(config, run, resume, parallel=parallel)
    elif task == "detect":  # the built-in set, made in the run by the main rank
        module.train(config, run, detect.DetectData(), resume, parallel=parallel)
    else:
        module.train(config, run, vision.load_images(config.data), resume, parallel=parallel)
    parallel.barrier()


if __name__ == "__main__":  # under torchrun: every job of the JSON file, in order, in these ranks
    jobs = json.loads(Path(sys.argv[1]).read_text())
    for job in jobs:
        run(**job)
    torch.distributed.destroy_process_group()
