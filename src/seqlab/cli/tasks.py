"""Per-task pieces of ``seqlab train``: each task's module, config class and flags, how its data is
read and checked before a run directory exists, and the one-line summary it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..errors import UserError
from ..parallel.runtime import SingleProcess, launched_by_torchrun

TRANSLATE_FLAGS = {"src": "data.src", "tgt": "data.tgt", "tsv": "data.tsv", "valid_src": "data.valid_src",
                   "valid_tgt": "data.valid_tgt", "test_src": "data.test_src", "test_tgt": "data.test_tgt"}
LM_FLAGS = {"text": "data.text"}
FORECAST_FLAGS = {"csv": "data.csv", "date_col": "data.date_col", "target": "data.target",
                  "features": "data.features", "input_len": "data.input_len", "horizon": "data.horizon",
                  "model": "model.arch", "split": "data.split", "fill": "data.fill"}
CLASSIFY_FLAGS = {"csv": "data.csv", "text_col": "data.text_col", "label_col": "data.label_col",
                  "encoding": "data.encoding", "cv": "data.cv", "model": "model.arch"}
VISION_FLAGS = {"images": "data.images", "dataset": "data.dataset"}
TASK_FLAGS = {**TRANSLATE_FLAGS, **LM_FLAGS, **FORECAST_FLAGS, **CLASSIFY_FLAGS, **VISION_FLAGS}


def task_module(task: str):
    """The task's module, its config class and the flags that belong to it."""
    if task == "lm":
        from ..tasks import language_model as module

        return module, module.LMConfig, LM_FLAGS
    if task == "forecast":
        from ..tasks import forecast as module

        return module, module.ForecastConfig, FORECAST_FLAGS
    if task == "classify":
        from ..tasks import classify as module

        return module, module.ClassifyConfig, CLASSIFY_FLAGS
    if task == "vision":
        from ..tasks import vision as module

        return module, module.VisionConfig, VISION_FLAGS
    from ..tasks import translate as module

    return module, module.TranslateConfig, TRANSLATE_FLAGS


def read_task_data(task: str, module, config):
    """Read and check the data before a run directory exists: bad input leaves nothing behind."""
    if task == "translate":
        return module.load_splits(config.data, config.train.seed)
    if task == "forecast":
        return module.read_series(config.data)
    if task == "classify":
        from ..data.labelled_text import read_labelled

        if not config.data.csv:
            raise UserError("no data: give --csv FILE with a text and a label column")
        d = config.data
        return read_labelled(d.csv, d.text_col, d.label_col, d.encoding)
    if task == "vision":
        return module.load_images(config.data)
    return module.token_stream.count_characters(config.data.text) if config.data.text else None


def start_processes(task: str, module, config) -> SingleProcess:
    """This process's place in the job: one process, or a rank of the job torchrun started."""
    if task == "lm":
        return module.runtime(config)
    if launched_by_torchrun():
        raise UserError(f"train {task} runs on one process; only train lm runs on several (torchrun, --nproc)")
    return SingleProcess()


def launch_torchrun(args, config, resume_run: Path | None) -> None:
    """``--nproc N``: check what can be checked here, then start N ranks of this same command under
    torchrun (on one machine) and wait for them."""
    from ..tasks import run_dir as runs

    n = args.nproc
    if n < 1:
        raise UserError(f"--nproc must be at least 1; got {n}")
    if args.task != "lm":
        raise UserError(f"--nproc: train {args.task} runs on one process; only train lm runs on several")
    config.check_layout(n)
    argv = list(args.argv)  # the same command for every rank, without --nproc (or its abbreviation)
    i = next(i for i, a in enumerate(argv) if a.startswith("--n") and "--nproc".startswith(a.split("=")[0]))
    del argv[i : i + (1 if "=" in argv[i] else 2)]
    if resume_run is None:
        out = args.out or runs.default_run_dir(args.task)
        runs.check_run_dir(out, args.overwrite)
        if args.out is None:
            argv += ["--out", str(out)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
               "-m", "seqlab", *argv]
    code = subprocess.run(command).returncode
    if code:
        raise SystemExit(code)


def train_task(task: str, module, config, run: Path, data, resume: bool, parallel: SingleProcess) -> str:
    """Train; -> the one-line summary to print."""
    if task == "lm":
        _, m = module.train(config, run, resume=resume, parallel=parallel)
        return (f"validation: loss {m['val_loss']:.4f} nats/token, perplexity {m['val_perplexity']:.2f}, "
                f"{m['val_bits_per_char']:.4f} bits/char")
    if task == "forecast":
        _, m = module.train(config, run, data, resume=resume)
        return (f"test: MSE {m['test_mse']:.4f}, MAE {m['test_mae']:.4f} (standardised); "
                f"MSE {m['test_mse_original']:.4g} in the data's units")
    if task == "classify":
        if resume:
            raise UserError("classification runs are short; start a new one instead of --resume")
        m = module.train(config, run, *data)
        if "cv_accuracy" in m:
            return f"{config.data.cv}-fold cross-validation accuracy {m['cv_accuracy']:.4f} (± {m['cv_accuracy_std']:.4f})"
        return f"test: accuracy {m['test_accuracy']:.4f}, macro-F1 {m['test_macro_f1']:.4f}"
    if task == "vision":
        _, m = module.train(config, run, data, resume=resume)
        return f"test: accuracy {m['test_accuracy']:.4f} on {m['test_images']} images, macro-F1 {m['test_macro_f1']:.4f}"
    _, result = module.train(config, run, data, resume=resume)
    m = result["metrics"]
    return (f"{m['scored_split']}: BLEU {m['bleu']:.2f} (lowercased {m['bleu_lowercase']:.2f}), "
            f"exact match {m['exact_match']:.2%}, val perplexity {m['val_perplexity']:.2f}")
