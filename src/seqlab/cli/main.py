"""The ``seqlab`` command line: one grammar for every task.

    seqlab train TASK [--config FILE|RECIPE] [--set key=value ...] [task flags] [--out RUN_DIR]
    seqlab eval RUN_DIR [data flags]          seqlab predict RUN_DIR [input]
    seqlab translate RUN_DIR "text"           seqlab generate RUN_DIR --prompt "text"
    seqlab demo
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..errors import UserError

EXAMPLES = {
    "demo": "seqlab demo --out runs/demo",
    "train": "seqlab train translate --src train.de --tgt train.en --set model.d_model=256 --out runs/de-en\n"
             "  seqlab train translate --config multi30k-de-en --set data.src=PATH/train.de.gz ...\n"
             "  seqlab train translate --resume runs/de-en\n"
             "  seqlab train lm --text input.txt --config shakespeare-char --out runs/shakespeare",
    "generate": 'seqlab generate runs/shakespeare --prompt "ROMEO:" --max-new-tokens 500 --top-k 40',
    "eval": "seqlab eval runs/de-en --src test.de --ref test.en [--beam 4]",
    "predict": 'seqlab predict runs/de-en "Ein Hund läuft." (or lines on standard input)',
    "translate": 'seqlab translate runs/demo "Samstag, 21. November 2026" [--beam 4]',
    "compare": "seqlab compare translate --dates --models simple,context,attention,conv,transformer --out runs/cmp\n"
               "  seqlab compare lm --text input.txt --models rnn,lstm,gru,transformer --max-time 300",
    "data": "seqlab data download multi30k --out data/multi30k",
    "bench": "seqlab bench complexity --out runs/complexity --lengths 64,128,256,512,1024,2048,4096",
}


class Parser(argparse.ArgumentParser):
    """Bad flags get one line on stderr and exit status 2, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def subcommand(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=help_text, description=help_text,
                                 epilog=f"example:\n  {EXAMPLES[name]}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="a TOML file or the name of a shipped recipe")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.d_model=256 (repeatable)")
    p.add_argument("--out", type=Path, help="run directory (default runs/TASK-TIMESTAMP)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--max-time", type=float, metavar="SECONDS", help="wall-clock training budget")
    p.add_argument("--max-steps", type=int, help="optimizer steps")
    p.add_argument("--precision", choices=["fp32", "bf16"])
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int)


def flag_overrides(args: argparse.Namespace, mapping: dict[str, str]) -> list[str]:
    """Explicit flags win over --set and the config file."""
    overrides = []
    for flag, key in mapping.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    return overrides


COMMON_FLAGS = {"max_time": "train.max_time", "max_steps": "train.max_steps", "precision": "train.precision",
                "device": "train.device", "seed": "train.seed"}
LM_FLAGS = {"text": "data.text"}
TRANSLATE_FLAGS = {"src": "data.src", "tgt": "data.tgt", "tsv": "data.tsv", "valid_src": "data.valid_src",
                   "valid_tgt": "data.valid_tgt", "test_src": "data.test_src", "test_tgt": "data.test_tgt"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="seqlab", description="Transformers and the recurrent models they replaced.",
                    epilog="example:\n  seqlab demo\n  seqlab train translate --src a.txt --tgt b.txt",
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    demo = subcommand(sub, "demo", "the main job: multilingual dates -> ISO 8601 with a small Transformer")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--overwrite", action="store_true")
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    demo.add_argument("--max-time", type=float, metavar="SECONDS")

    train = subcommand(sub, "train", "train a model for a task; writes a run directory")
    train.add_argument("task", choices=["translate", "lm"])
    add_run_flags(train)
    train.add_argument("--text", help="lm: a UTF-8 text file (default: the Python standard library's source)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped run exactly")
    train.add_argument("--src", help="source sentences, one a line")
    train.add_argument("--tgt", help="target sentences, aligned with --src")
    train.add_argument("--tsv", help="one file of source<TAB>target lines instead of --src/--tgt")
    train.add_argument("--valid-src")
    train.add_argument("--valid-tgt")
    train.add_argument("--test-src")
    train.add_argument("--test-tgt")

    evaluate = subcommand(sub, "eval", "score a trained run on new data")
    evaluate.add_argument("run", type=Path)
    evaluate.add_argument("--src", required=True)
    evaluate.add_argument("--ref", required=True)
    evaluate.add_argument("--beam", type=int)
    evaluate.add_argument("--device", default="cpu")

    for name in ("predict", "translate"):
        p = subcommand(sub, name, "run a trained model on input text (arguments, or stdin lines)")
        p.add_argument("run", type=Path)
        p.add_argument("text", nargs="*")
        p.add_argument("--beam", type=int)
        p.add_argument("--device", default="cpu")
    generate = subcommand(sub, "generate", "sample text from a trained language model, streamed as it comes")
    generate.add_argument("run", type=Path)
    generate.add_argument("--prompt", default="", help="text to continue (default: a line break)")
    generate.add_argument("--max-new-tokens", type=int, default=500)
    generate.add_argument("--temperature", type=float, default=1.0, help="0 = always the most probable token")
    generate.add_argument("--top-k", type=int)
    generate.add_argument("--top-p", type=float)
    generate.add_argument("--seed", type=int)
    generate.add_argument("--device", default="cpu")

    compare = subcommand(sub, "compare", "train several architectures on the same data and budget; one table")
    compare.add_argument("task", choices=["translate", "lm"])
    compare.add_argument("--models", help="comma-separated; translate: simple, context, attention, conv, "
                         "transformer (default all); lm: rnn, lstm, gru, transformer (default all)")
    compare.add_argument("--text", help="lm: a UTF-8 text file (default: the Python standard library's source)")
    compare.add_argument("--dates", action="store_true", help="use the demo's multilingual date corpus")
    add_run_flags(compare)
    for flag in ("--src", "--tgt", "--tsv", "--valid-src", "--valid-tgt", "--test-src", "--test-tgt"):
        compare.add_argument(flag)

    data = subcommand(sub, "data", "fetch a benchmark data set from its canonical source")
    data.add_argument("action", choices=["download"])
    data.add_argument("name", help="tinyshakespeare, etth1, multi30k or mr")
    data.add_argument("--out", type=Path, help="directory (default data/NAME)")
    data.add_argument("--overwrite", action="store_true")

    bench = subcommand(sub, "bench", "measure: complexity = time and memory against sequence length")
    bench.add_argument("name", choices=["complexity"])
    bench.add_argument("--out", type=Path, default=Path("runs/bench-complexity"))
    bench.add_argument("--overwrite", action="store_true")
    bench.add_argument("--lengths", default="64,128,256,512,1024,2048,4096")
    bench.add_argument("--d-model", type=int, default=128)
    bench.add_argument("--repeats", type=int, default=3)
    return parser


def positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise UserError(f"{flag} must be at least 1; got {value}")


def command_train(args: argparse.Namespace) -> None:
    from ..config import load_config
    from ..tasks import run_dir as runs

    if args.task == "lm":
        from ..tasks import language_model as task

        config_class, flags = task.LMConfig, LM_FLAGS
    else:
        from ..tasks import translate as task

        config_class, flags = task.TranslateConfig, TRANSLATE_FLAGS
    given = [f"--{name.replace('_', '-')}" for name in set(TRANSLATE_FLAGS) | set(LM_FLAGS)
             if name not in flags and getattr(args, name, None) is not None]
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
    splits = task.load_splits(config.data, config.train.seed) if args.task == "translate" else None
    if args.task == "lm" and config.data.text:
        task.token_stream.count_characters(config.data.text)  # a missing or empty file fails before a run dir
    if run is None:
        run = runs.create_run_dir(args.out or runs.default_run_dir(args.task), args.overwrite)
    try:
        if args.task == "lm":
            _, m = task.train(config, Path(run), resume=bool(args.resume))
            print(f"validation: loss {m['val_loss']:.4f} nats/token, perplexity {m['val_perplexity']:.2f}, "
                  f"{m['val_bits_per_char']:.4f} bits/char; run: {run}")
            return
        _, result = task.train(config, Path(run), splits, resume=bool(args.resume))
    except UserError:
        if not args.resume:  # the directory is ours, made a moment ago: leave nothing half-made
            shutil.rmtree(run, ignore_errors=True)
        raise
    m = result["metrics"]
    print(f"{m['scored_split']}: BLEU {m['bleu']:.2f} (lowercased {m['bleu_lowercase']:.2f}), "
          f"exact match {m['exact_match']:.2%}, val perplexity {m['val_perplexity']:.2f}; run: {run}")


def command_generate(args: argparse.Namespace) -> None:
    from ..tasks.language_model import LanguageModel

    lm = LanguageModel.load(args.run, args.device)
    sys.stdout.write(args.prompt)
    for piece in lm.stream(args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def command_translate(args: argparse.Namespace) -> None:
    from ..tasks.translate import Translator

    positive(args.beam, "--beam")
    lines = args.text or [line.rstrip("\n") for line in sys.stdin]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise UserError("nothing to translate: give text as arguments or lines on standard input")
    translator = Translator.load(args.run, args.device)
    for output in translator.translate(lines, args.beam):
        print(output)


def command_eval(args: argparse.Namespace) -> None:
    import json

    from ..data.text import read_parallel
    from ..tasks.translate import Translator

    positive(args.beam, "--beam")
    translator = Translator.load(args.run, args.device)
    sources, references = read_parallel(args.src, args.ref)
    print(json.dumps(translator.evaluate(sources, references, args.beam), indent=2))


def command_demo(args: argparse.Namespace) -> None:
    from ..tasks.demo import run_demo

    overrides = args.set + ([f"train.max_time={args.max_time}"] if args.max_time is not None else [])
    run_demo(args.out, args.overwrite, overrides)


def command_compare(args: argparse.Namespace) -> None:
    from ..tasks.compare import LM_ARCHITECTURES, parse_models, run_compare, run_compare_lm

    out = args.out or Path("runs") / f"compare-{args.task}"
    if args.task == "lm":
        if args.dates or args.src or args.tsv:
            raise UserError("compare lm reads one text file: give --text (or nothing, for the default corpus)")
        models = parse_models(args.models or ",".join(LM_ARCHITECTURES), LM_ARCHITECTURES)
        overrides = args.set + flag_overrides(args, {**COMMON_FLAGS, **LM_FLAGS})
        run_compare_lm(models, out, args.overwrite, args.config or "compare-lm", overrides)
        return
    if args.text:
        raise UserError("--text is a flag of compare lm; compare translate reads --src/--tgt or --tsv")
    models = parse_models(args.models or "simple,context,attention,conv,transformer")
    if not args.dates and not (args.src or args.tsv or args.config):
        raise UserError("give the data: --dates, --src/--tgt, --tsv, or a --config that names files")
    overrides = args.set + flag_overrides(args, {**COMMON_FLAGS, **TRANSLATE_FLAGS})
    config = args.config or ("compare-dates" if args.dates else None)
    run_compare(models, out, args.overwrite, config, overrides, args.dates)


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


COMMANDS = {"train": command_train, "eval": command_eval, "predict": command_translate,
            "translate": command_translate, "demo": command_demo, "bench": command_bench,
            "data": command_data, "compare": command_compare, "generate": command_generate}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except UserError as error:
        sys.stderr.write(f"seqlab {args.command}: error: {error}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; a training run continues with: seqlab train TASK --resume RUN_DIR\n")
        return 130
    return 0
