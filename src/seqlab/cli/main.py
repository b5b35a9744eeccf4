"""The ``seqlab`` command line: one grammar for every task.

    seqlab train TASK [--config FILE|RECIPE] [--set key=value ...] [task flags] [--out RUN_DIR]
    seqlab eval RUN_DIR [data flags]          seqlab predict RUN_DIR [input]
    seqlab translate RUN_DIR "text"           seqlab generate RUN_DIR --prompt "text"
    seqlab demo
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from ..errors import UserError
from .parser import COMMON_FLAGS, build_parser, flag, flag_overrides
from .tasks import LM_FLAGS, TRANSLATE_FLAGS

def positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise UserError(f"{flag} must be at least 1; got {value}")


def command_train(args: argparse.Namespace) -> None:
    from ..config import load_config
    from ..tasks import run_dir as runs
    from ..parallel.runtime import launched_by_torchrun
    from .tasks import TASK_FLAGS, launch_torchrun, read_task_data, start_processes, task_module, train_task

    module, config_class, flags = task_module(args.task)
    given = [flag(name) for name in TASK_FLAGS if name not in flags and getattr(args, name, None) is not None]
    if given:
        raise UserError(f"{', '.join(sorted(given))} is not a flag of train {args.task}")
    overrides = args.set + flag_overrides(args, {**COMMON_FLAGS, **flags})
    if args.resume:
        info = runs.read_run(args.resume)
        if info["task"] != args.task:
            raise UserError(f"{args.resume} is a {info['task']} run, not {args.task}")
        config = load_config(config_class, None, overrides, base=info["config"])
        run = args.resume
    else:
        config = load_config(config_class, args.config, overrides)
        run = None
    data = read_task_data(args.task, module, config)
    if args.nproc is not None and not launched_by_torchrun():
        launch_torchrun(args, config, run)
        return
    parallel = start_processes(args.task, module, config)
    if run is None:
        out = args.out or runs.default_run_dir(args.task)
        run = parallel.on_main(lambda: runs.create_run_dir(out, args.overwrite))
    args.run_dir = run  # for the line an interruption prints
    try:
        summary = train_task(args.task, module, config, Path(run), data, bool(args.resume), parallel)
    except UserError:
        if not args.resume and parallel.is_main:  # the directory is ours, made a moment ago: leave nothing half-made
            shutil.rmtree(run, ignore_errors=True)
        raise
    finally:
        parallel.close()
    if parallel.is_main:
        print(f"{summary}; run: {run}")


def command_generate(args: argparse.Namespace) -> None:
    from ..data.tokenizer import unknown_note, unknown_pieces
    from ..tasks.language_model import LanguageModel

    lm = LanguageModel.load(args.run, args.device)
    pieces = lm.stream(args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed)
    if unknown := unknown_pieces(lm.tokenizer, [args.prompt]):
        print(unknown_note(unknown, "prompt"), file=sys.stderr)
    sys.stdout.write(args.prompt)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


# What ``seqlab eval`` scores each task's runs on: the flags it needs, and those it may take.
EVAL_FLAGS = {"translate": (["src", "ref"], ["beam"]), "classify": (["csv"], ["text_col", "label_col", "encoding"]),
              "forecast": (["csv"], []), "lm": (["text"], []), "vision": (["images"], [])}


def input_lines(args: argparse.Namespace) -> list[str]:
    """The inputs given as arguments, or else standard input's lines; blank ones are left out."""
    lines = args.text or [line.rstrip("\n") for line in sys.stdin]
    return [line for line in lines if line.strip()]


def trained_task(run: Path, command: str) -> str:
    """The task of a run that ``command`` can use; a compare or bench directory is a UserError that
    points at the runs inside it."""
    from ..tasks import run_dir as runs

    task = runs.read_run(run)["task"]
    if task.startswith("compare-"):
        raise UserError(f"{run} compares several models, each a run of its own: seqlab {command} {run}/MODEL ...")
    if task not in EVAL_FLAGS:
        raise UserError(f"{run} is a {task} run; seqlab {command} takes a trained model's run")
    return task


def command_predict(args: argparse.Namespace) -> None:
    """``predict`` serves every task: the run directory says which."""
    task = trained_task(args.run, "predict")
    if task == "forecast":
        from ..tasks.forecast import Forecast

        if not args.csv:
            raise UserError("a forecasting run predicts from a series: give --csv FILE")
        frame = Forecast.load(args.run, args.device).predict_csv(args.csv)
        if args.out:
            frame.to_csv(args.out, index=False)
            print(f"{len(frame)} forecast rows written to {args.out}")
        else:
            frame.to_csv(sys.stdout, index=False)
        return
    if task == "lm":
        raise UserError(f"{args.run} is a language model: sample it with seqlab generate {args.run} --prompt TEXT")
    if task in ("classify", "vision"):
        inputs = input_lines(args)
        if not inputs:
            raise UserError("give the input: " + ("text to classify" if task == "classify" else "image files")
                            + " as arguments or lines on standard input")
        if task == "classify":
            from ..tasks.classify import TextClassifierRun

            results = TextClassifierRun(args.run, args.device).probabilities(inputs)
        else:
            from ..tasks.vision import ImageClassifier

            classifier = ImageClassifier.load(args.run, args.device)
            results = [classifier.probabilities(path) for path in inputs]
        for source, probs in zip(inputs, results):
            ranked = sorted(probs.items(), key=lambda item: -item[1])
            print(f"{source}\t" + "  ".join(f"{name} {p:.3f}" for name, p in ranked))
        return
    command_translate(args)


def command_translate(args: argparse.Namespace) -> None:
    from ..data.tokenizer import unknown_note, unknown_pieces
    from ..tasks.translate import Translator

    positive(args.beam, "--beam")
    lines = input_lines(args)
    if not lines:
        raise UserError("nothing to translate: give text as arguments or lines on standard input")
    translator = Translator.load(args.run, args.device)
    if unknown := unknown_pieces(translator.src_tokenizer, lines):
        print(unknown_note(unknown, "input"), file=sys.stderr)
    for output in translator.translate(lines, args.beam):
        print(output)


def command_eval(args: argparse.Namespace) -> None:
    """``eval`` scores any run on new data; the run directory says which task, and so which flags."""
    import json

    task = trained_task(args.run, "eval")
    needed, optional = EVAL_FLAGS[task]
    every = dict.fromkeys(name for names in EVAL_FLAGS.values() for name in names[0] + names[1])
    if stray := [flag(n) for n in every if n not in needed + optional and getattr(args, n) is not None]:
        raise UserError(f"{', '.join(stray)}: not for a {task} run, which is scored on "
                        f"{' and '.join(map(flag, needed))}")
    if missing := [flag(n) for n in needed if getattr(args, n) is None]:
        raise UserError(f"a {task} run is scored on new data: give {' and '.join(missing)}")
    print(json.dumps(evaluate_run(task, args), indent=2))


def evaluate_run(task: str, args: argparse.Namespace) -> dict:
    if task == "classify":
        from ..data.labelled_text import read_labelled
        from ..tasks.classify import TextClassifierRun

        classifier = TextClassifierRun(args.run, args.device)
        d = classifier.config.data
        texts, labels = read_labelled(args.csv, args.text_col or d.text_col, args.label_col or d.label_col,
                                      args.encoding or d.encoding, min_classes=1)
        return classifier.evaluate(texts, labels, args.csv)
    if task == "forecast":
        from ..tasks.forecast import Forecast

        return Forecast.load(args.run, args.device).evaluate_csv(args.csv)
    if task == "lm":
        from ..tasks.language_model import LanguageModel, load_run_config

        config = load_run_config(args.run)
        return LanguageModel.load(args.run, args.device).evaluate_text(args.text, config.data.block_size,
                                                                        config.train.batch_size)
    if task == "vision":
        from ..tasks.vision import ImageClassifier

        return ImageClassifier.load(args.run, args.device).evaluate_folder(args.images)
    from ..data.text import read_parallel
    from ..tasks.translate import Translator

    positive(args.beam, "--beam")
    translator = Translator.load(args.run, args.device)
    sources, references = read_parallel(args.src, args.ref)
    return translator.evaluate(sources, references, args.beam)


def command_demo(args: argparse.Namespace) -> None:
    from ..tasks.demo import run_demo

    overrides = args.set + ([f"train.max_time={args.max_time}"] if args.max_time is not None else [])
    run_demo(args.out, args.overwrite, overrides)


def command_compare(args: argparse.Namespace) -> None:
    from ..tasks import compare
    from .tasks import CLASSIFY_FLAGS, FORECAST_FLAGS

    out = args.out or Path("runs") / f"compare-{args.task}"
    flags = {"translate": TRANSLATE_FLAGS, "lm": LM_FLAGS, "classify": CLASSIFY_FLAGS, "forecast": FORECAST_FLAGS}
    own = {name for name in flags[args.task] if name != "model"} | ({"dates"} if args.task == "translate" else set())
    every = {name for task_flags in flags.values() for name in task_flags if name != "model"} | {"dates"}
    if stray := sorted(flag(name) for name in every - own if getattr(args, name) not in (None, False)):
        raise UserError(f"{', '.join(stray)}: not a flag of compare {args.task}")
    overrides = args.set + flag_overrides(args, {**COMMON_FLAGS, **flags[args.task]})
    if args.task != "translate":  # the task's architectures, its runner and its default recipe
        runners = {"lm": (compare.LM_ARCHITECTURES, compare.run_compare_lm, "compare-lm"),
                   "classify": (compare.CLASSIFY_ARCHITECTURES, compare.run_compare_classify, None),
                   "forecast": (compare.FORECAST_ARCHITECTURES, compare.run_compare_forecast, None)}
        known, run, recipe = runners[args.task]
        models = compare.parse_models(args.models or ",".join(known), known)
        run(models, out, args.overwrite, args.config or recipe, overrides)
        return
    models = compare.parse_models(args.models or "simple,context,attention,conv,transformer")
    if not args.dates and not (args.src or args.tsv or args.config):
        raise UserError("give the data: --dates, --src/--tgt, --tsv, or a --config that names files")
    config = args.config or ("compare-dates" if args.dates else None)
    compare.run_compare(models, out, args.overwrite, config, overrides, args.dates)


def command_explore(args: argparse.Namespace) -> None:
    from ..explore.app import serve

    if not 0 < args.port < 65536:
        raise UserError(f"--port must be in 1..65535; got {args.port}")
    serve(args.run, args.host, args.port)


def command_data(args: argparse.Namespace) -> None:
    from ..data.download import download

    download(args.name, args.out or Path("data") / args.name, args.overwrite)


def command_bench(args: argparse.Namespace) -> None:
    from ..tasks import run_dir as runs
    from ..tasks.bench_complexity import run_complexity

    try:
        lengths = [int(n) for n in args.lengths.split(",")]
    except ValueError:
        raise UserError(f"--lengths must be comma-separated integers; got {args.lengths!r}") from None
    if len(lengths) < 2 or min(lengths) < 1:
        raise UserError("--lengths needs at least two positive lengths")
    positive(args.d_model, "--d-model")
    positive(args.repeats, "--repeats")
    out = runs.create_run_dir(args.out, args.overwrite)
    runs.write_run(out, "bench-complexity", {"lengths": lengths, "d_model": args.d_model})
    run_complexity(out, sorted(lengths), args.d_model, repeats=args.repeats)


COMMANDS = {"train": command_train, "eval": command_eval, "predict": command_predict,
            "translate": command_translate, "demo": command_demo, "bench": command_bench,
            "data": command_data, "compare": command_compare, "generate": command_generate,
            "explore": command_explore}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "text", None), list) and not any(e.startswith("-") for e in extra):
        args.text += extra  # "RUN --beam 4 TEXT": argparse closes the text list at the first flag
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        COMMANDS[args.command](args)
    except (UserError, OSError) as error:  # OSError: a path that cannot be made, read or written
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank fails alike; one says why
            sys.stderr.write(f"seqlab {args.command}: error: {error}\n")
        return 2
    except KeyboardInterrupt:
        run = getattr(args, "run_dir", None)
        if run and not (Path(run) / "checkpoints").is_dir():
            sys.stderr.write(f"\ninterrupted before the first checkpoint (one is saved at every evaluation); "
                             f"start again with --overwrite\n")
        else:
            again = f"seqlab train {args.task} --resume {run}" if run else "seqlab train TASK --resume RUN_DIR"
            sys.stderr.write(f"\ninterrupted; a training run continues from its last checkpoint with: {again}\n")
        return 130
    return 0
