"""The ``seqlab`` command line's grammar: every command, its flags and an example for its ``--help``.
Bad flags get one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

from ..data.download import DATASETS
from ..errors import UserError
from ..tasks import task as registry
from ..tasks.task import Flag

EXAMPLES = {
    "demo": "seqlab demo --out runs/demo",
    "train": "seqlab train translate --src train.de --tgt train.en --set model.d_model=256 --out runs/de-en\n"
             "  seqlab train translate --config multi30k-de-en --set data.src=PATH/train.de.gz ...\n"
             "  seqlab train translate --resume runs/de-en\n"
             "  seqlab train lm --text input.txt --config shakespeare-char-77s --out runs/shakespeare",
    "export": "seqlab export runs/shakespeare --format hf --out hf/shakespeare   # transformers loads it\n"
              "  seqlab export runs/shakespeare --format onnx --out onnx/shakespeare",
    "import": "seqlab import hf hf/gpt2-small --out runs/gpt2   # a GPT-2, BERT or Marian checkpoint directory",
    "generate": 'seqlab generate runs/shakespeare --prompt "ROMEO:" --max-new-tokens 500 --top-k 40',
    "eval": "seqlab eval runs/de-en --src test.de --ref test.en [--beam 4]   # translate\n"
            "  seqlab eval runs/reviews --csv more_reviews.csv                 # classify\n"
            "  seqlab eval runs/etth1 --csv later_months.csv                   # forecast\n"
            "  seqlab eval runs/etth1 --csv ETTh1.csv --backtest --folds 4     # forecast: rolling origin\n"
            "  seqlab eval runs/shakespeare --text other_play.txt              # lm\n"
            "  seqlab eval runs/mlm --text other_text.txt                      # mlm\n"
            "  seqlab eval runs/shapes --images new_images/                    # vision",
    "predict": 'seqlab predict runs/de-en "Ein Hund läuft." (or lines on standard input)\n'
               '  seqlab predict runs/mlm "the movie was [MASK] good" --top-k 5',
    "translate": 'seqlab translate runs/demo "Samstag, 21. November 2026" [--beam 4]',
    "forecast": "seqlab predict runs/etth1 --csv ETTh1.csv --out forecast.csv",
    "compare": "seqlab compare translate --dates --models simple,context,attention,conv,transformer --out runs/cmp\n"
               "  seqlab compare lm --text input.txt --models rnn,lstm,gru,transformer --max-time 300\n"
               "  seqlab compare classify --csv reviews.csv --models transformer,conv1d,nbsvm --cv 10\n"
               "  seqlab compare forecast --csv ETTh1.csv --input-len 96 --horizon 24 --models patch,linear",
    "data": "seqlab data download multi30k --out data/multi30k",
    "explore": "seqlab explore runs/demo --port 8000",
    "bench": "seqlab bench complexity --out runs/complexity --lengths 64,128,256,512,1024,2048,4096",
}


# A value that starts with a minus and reads as a number or a comma-separated list of numbers
# ("-1e-3", "-0.1,0.5"). argparse takes only "-1" and "-.5" for values and anything else with a leading
# minus for a flag, so "--quantiles -0.1,0.5" would fail as "expected one argument" rather than reach
# the check that says what is wrong with the value. seqlab has no flag that looks like a number.
NUMBER = r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
NEGATIVE_VALUE = re.compile(rf"^-{NUMBER}(\s*,\s*-?{NUMBER})*$")


class Parser(argparse.ArgumentParser):
    """Bad flags get one line on stderr and exit status 2, not a usage dump; a value with a leading
    minus that reads as numbers (:data:`NEGATIVE_VALUE`) is a value, not a flag."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_VALUE  # argparse's own test for "a negative number"

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def subcommand(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=help_text, description=help_text,
                                 epilog=f"example:\n  {EXAMPLES[name]}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


DEVICE_HELP = "auto (the default: cuda if available, then mps, then cpu), cpu, cuda, cuda:N or mps"


def add_threads_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch and NumPy (default: the cores this process may use, shared "
                        "among the ranks of a --nproc job)")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    add_threads_flag(p)
    p.add_argument("--config", help="a TOML file or the name of a shipped recipe")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.d_model=256 (repeatable)")
    p.add_argument("--out", type=Path, help="run directory (default runs/TASK-TIMESTAMP)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--max-time", type=float, metavar="SECONDS", help="wall-clock training budget")
    p.add_argument("--max-steps", type=int, help="optimizer steps")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="auto (the default): the faster of fp32 and bf16 that holds accuracy, timed on the run's model")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--seed", type=int)


def train_epilog(task) -> str:
    """``seqlab train TASK --help``'s ending: an example, and what the defaults train (and a bigger recipe)."""
    bigger = " or ".join(f"--config {name}" for name in task.bigger_recipes)
    return (f"example:\n  {task.example}\n\nWithout --config the defaults train a small model that finishes in "
            f"minutes on a laptop's CPU\n(--device auto takes a GPU when there is one)"
            + (f"; a bigger or longer one: {bigger}" if bigger else ""))


def compare_example(task) -> str:
    """``seqlab compare TASK --help``'s example: the task's line of ``seqlab compare --help``'s."""
    lines = [line.strip() for line in EXAMPLES["compare"].splitlines()]
    return next((line for line in lines if line.startswith(f"seqlab compare {task.name} ")),
                f"seqlab compare {task.name} --models {','.join(task.architectures)}")


def add_flags(p: argparse.ArgumentParser, flags) -> None:
    """A task's flags (``seqlab.tasks.task.Flag``s), as argparse arguments; each is None unless given."""
    for f in flags:
        if f.type is bool:
            p.add_argument(flag(f.name), action="store_true", default=None, help=f.help)
        else:
            p.add_argument(flag(f.name), type=f.type, choices=f.choices, help=f.help,
                           metavar=None if f.choices else f.name.split("_")[-1].upper())


def union(flag_lists) -> list:
    """Flags of several tasks under one command (eval, predict): each name once."""
    seen: dict[str, Flag] = {}
    for flags in flag_lists:
        for f in flags:
            if f.name in seen and f.help not in seen[f.name].help:  # --csv: "classify: …; forecast: …"
                f = dataclasses.replace(seen[f.name], help=f"{seen[f.name].help}; {f.help}")
            seen[f.name] = f
    return list(seen.values())


def flag_overrides(args: argparse.Namespace, mapping: dict[str, str]) -> list[str]:
    """Explicit flags win over --set and the config file. An empty value is refused: where a setting's
    empty default means "none" (``--init``), ``--init "$RUN"`` with RUN unset would otherwise quietly
    train without it."""
    overrides = []
    for name, key in mapping.items():
        value = getattr(args, name, None)
        if value == "":
            raise UserError(f"--{name.replace('_', '-')} is empty (an unset shell variable?); give a value or "
                            f"leave the flag out")
        if value is not None:
            overrides.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    return overrides


COMMON_FLAGS = {"max_time": "train.max_time", "max_steps": "train.max_steps", "precision": "train.precision",
                "device": "train.device", "seed": "train.seed"}


def installed_version() -> str:
    """The installed package's version, from its metadata (pyproject.toml's ``version``)."""
    from importlib import metadata

    try:
        return metadata.version("seqlab")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="seqlab", description="Transformers and the recurrent models they replaced.",
                    epilog="example:\n  seqlab demo\n  seqlab train translate --src a.txt --tgt b.txt",
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"seqlab {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    demo = subcommand(sub, "demo", "the main job: multilingual dates -> ISO 8601 with a small Transformer")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier demo's run directory")
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    demo.add_argument("--max-time", type=float, metavar="SECONDS")
    add_threads_flag(demo)

    tasks = registry.tasks()
    train = subcommand(sub, "train", "train a model for a task; writes a run directory")
    by_task = train.add_subparsers(dest="task", required=True, parser_class=Parser, metavar="TASK")
    for task in tasks.values():
        p = by_task.add_parser(task.name, help=task.description, description=task.description,
                               epilog=train_epilog(task), formatter_class=argparse.RawDescriptionHelpFormatter)
        add_flags(p, task.flags().values())
        add_run_flags(p)
        p.add_argument("--resume", type=Path, metavar="RUN_DIR",  # refused, with why, where a task has none
                       help=f"refused: {task.no_resume}" if task.no_resume else "continue a stopped run exactly")
        p.add_argument("--nproc", type=int, metavar="N",
                       help="train on N processes (starts torchrun; the layout is [parallel] in the config, "
                            "e.g. --set parallel.tp=2; data parallel by default)")

    evaluate = subcommand(sub, "eval", "score a trained run on new data; prints the scores as JSON")
    evaluate.add_argument("run", type=Path)
    add_flags(evaluate, union(task.eval_flags for task in tasks.values()))
    add_threads_flag(evaluate)
    evaluate.add_argument("--device", default="auto", help=DEVICE_HELP)

    for name in ("predict", "translate"):
        p = subcommand(sub, name, "run a trained model on input text (arguments, or stdin lines)")
        p.add_argument("run", type=Path)
        p.add_argument("text", nargs="*")
        p.add_argument("--beam", type=int, metavar="K", help="beam search of width K (translation runs; default: "
                                                             "the run's decode.beam_size)")
        p.add_argument("--device", default="auto", help=DEVICE_HELP)
        add_threads_flag(p)
        if name == "predict":
            add_flags(p, [f for f in union(task.predict_flags for task in tasks.values()) if f.name != "beam"])
    generate = subcommand(sub, "generate", "sample text from a trained language model, streamed as it comes")
    generate.add_argument("run", type=Path)
    generate.add_argument("--prompt", default="", help="text to continue (default: a line break)")
    generate.add_argument("--max-new-tokens", type=int, default=500)
    generate.add_argument("--temperature", type=float, default=1.0, help="0 = always the most probable token")
    generate.add_argument("--top-k", type=int)
    generate.add_argument("--top-p", type=float)
    generate.add_argument("--seed", type=int)
    generate.add_argument("--compile", action="store_true",
                          help="each token's step through torch.compile: faster once compiled (compiling takes "
                               "seconds to a minute; logits equal to float rounding); Transformer LMs with learned or "
                               "sinusoidal positions")
    generate.add_argument("--device", default="auto", help=DEVICE_HELP)
    add_threads_flag(generate)

    compare = subcommand(sub, "compare", "train several architectures on the same data and budget; one table")
    by_task = compare.add_subparsers(dest="task", required=True, parser_class=Parser, metavar="TASK")
    for task in tasks.values():
        if not task.architectures:
            continue
        # no abbreviations: train's --model would be taken for --models and replace the list silently
        p = by_task.add_parser(task.name, help=f"{task.name}: {', '.join(task.architectures)}",
                               epilog=f"example:\n  {compare_example(task)}", allow_abbrev=False,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--models", help=f"comma-separated (default all): {', '.join(task.architectures)}")
        add_flags(p, task.compared_flags())
        add_flags(p, task.compare_flags())
        add_run_flags(p)

    explore = subcommand(sub, "explore", "look inside a trained run in the browser: outputs, attention, positions")
    explore.add_argument("run", type=Path)
    explore.add_argument("--port", type=int, default=8000)
    explore.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    add_threads_flag(explore)

    export = subcommand(sub, "export", "write a trained run for another library: hf (transformers), onnx")
    export.add_argument("run", type=Path)
    export.add_argument("--format", required=True, choices=["hf", "onnx"])
    export.add_argument("--out", type=Path, required=True, help="the directory to write")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    add_threads_flag(export)
    importing = subcommand(sub, "import", "read another library's checkpoint into a seqlab run")
    importing.add_argument("source", choices=["hf"])
    importing.add_argument("directory", type=Path, help="a Hugging Face checkpoint directory (config.json, weights)")
    importing.add_argument("--out", type=Path, required=True, help="the run directory to write")
    importing.add_argument("--overwrite", action="store_true", help="replace an earlier import's run directory")
    add_threads_flag(importing)

    data = subcommand(sub, "data", "fetch a benchmark data set from its canonical source")
    data.add_argument("action", choices=["download"])
    data.add_argument("name", help=f"one of: {', '.join(DATASETS)}")
    data.add_argument("--out", type=Path, help="directory (default data/NAME)")
    data.add_argument("--overwrite", action="store_true", help="replace the files of an earlier download")

    bench = subcommand(sub, "bench", "measure: complexity = time and memory against sequence length")
    bench.add_argument("name", choices=["complexity"])
    bench.add_argument("--out", type=Path, default=Path("runs/bench-complexity"),
                       help="run directory for the table and plot (default runs/bench-complexity)")
    bench.add_argument("--overwrite", action="store_true", help="replace an earlier run directory")
    bench.add_argument("--lengths", default="64,128,256,512,1024,2048,4096",
                       help="sequence lengths to time, comma-separated (default 64,128,...,4096)")
    bench.add_argument("--d-model", type=int, default=128, help="model width of every layer timed (default 128)")
    bench.add_argument("--repeats", type=int, default=3,
                       help="timed forward+backward passes per length, the median reported (default 3)")
    add_threads_flag(bench)
    return parser


def flag(dest: str) -> str:
    """An argparse destination as the flag a user types: text_col -> --text-col."""
    return "--" + dest.replace("_", "-")
