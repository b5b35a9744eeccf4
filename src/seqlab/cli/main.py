"""The ``seqlab`` command line: one grammar for every task.

    seqlab train TASK [--config FILE|RECIPE] [--set key=value ...] [task flags] [--out RUN_DIR]
    seqlab eval RUN_DIR [data flags]          seqlab predict RUN_DIR [input]
    seqlab translate RUN_DIR "text"           seqlab generate RUN_DIR --prompt "text"
    seqlab demo
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from ..errors import UserError
from ..parallel import torchrun
from ..tasks import task as registry
from .parser import COMMON_FLAGS, build_parser, flag, flag_overrides, union


def positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise UserError(f"{flag} must be at least 1; got {value}")


def refuse_other_data(run: Path, overrides: list[str], config, base: dict, flag_names: dict[str, str]) -> None:
    """A resumed run trains the model it started with on the data it started with: a data setting, or
    the model's kind (``model.arch``), given with ``--resume`` whose value differs from the run's is
    refused. Taken, it would go on training the saved model (and its tokenizer or scaler) on another
    text, file or split, or fail on the checkpoint's every setting; ignored, it would say nothing."""
    import json

    from ..config import absolute_paths, parse_override, to_dict

    now = json.loads(json.dumps(to_dict(absolute_paths(config))))  # as run.json holds it
    data, model = (now.get(section, {}) for section in ("data", "model"))
    data_before, model_before = (base.get(section, {}) for section in ("data", "model"))
    for override in overrides:
        keys, _ = parse_override(override)
        key = ".".join(keys)
        given = f"--{flag_names[key].replace('_', '-')}" if key in flag_names else f"--set {key}"
        if len(keys) == 2 and keys[0] == "data" and keys[1] in data and data[keys[1]] != data_before.get(keys[1]):
            raise UserError(f"{given} does not go with --resume: {run} goes on with the data it started with "
                            f"({key} = {data_before.get(keys[1])!r}); train a new run (--out) on other data")
        if key == "model.arch" and "arch" in model_before and model.get("arch") != model_before["arch"]:
            raise UserError(f"{given} does not go with --resume: {run} goes on training its {model_before['arch']} "
                            f"model; train a new run (--out) for another")


def command_train(args: argparse.Namespace) -> None:
    from ..config import absolute_paths, input_paths, load_config, to_dict
    from ..interop.imported_run import imported_from
    from ..parallel.runtime import launched_by_torchrun
    from ..tasks import run_dir as runs
    from .launch import launch_torchrun

    task = registry.get(args.task)
    flag_keys = {**COMMON_FLAGS, **{f.name: f.key for f in task.flags().values()}}
    overrides = args.set + flag_overrides(args, flag_keys)
    if args.resume:
        if task.no_resume:
            raise UserError(task.no_resume)
        if args.out or args.overwrite:
            raise UserError(f"{'--out' if args.out else '--overwrite'} does not go with --resume: "
                            f"a resumed run continues in its own directory, {args.resume}")
        if args.config:  # it was read as nothing: the run's own config (run.json) is the one resumed
            raise UserError(f"--config does not go with --resume: {args.resume} continues with the config in its "
                            f"run.json (--set and the flags change what may change, like --max-steps)")
        info = runs.read_run(args.resume)
        if info["task"] != args.task:
            raise UserError(f"{args.resume} is a {info['task']} run, not {args.task}")
        if source := imported_from(args.resume):
            also = (f", or fine-tune a classifier from it (seqlab train classify --init {args.resume})"
                    if args.task == "mlm" else "")
            raise UserError(f"{args.resume} was imported ({source}): it holds weights only, no training state "
                            f"to resume; use it as it is (predict, eval){also}")
        config = load_config(task.config_class, None, overrides, base=info["config"])
        refuse_other_data(args.resume, overrides, config, info["config"], {k: n for n, k in flag_keys.items()})
        run = args.resume
    else:
        config = load_config(task.config_class, args.config, overrides)
        run = None
    data = None if args.resume and task.data_in_run else task.read_data(config)  # (the text may have moved)
    if not args.resume:
        task.check_new_run(config)
    config = absolute_paths(config)  # after reading, so that errors name the paths as given
    if args.nproc is not None and not launched_by_torchrun():
        launch_torchrun(args, task, config, run)
        return
    parallel = task.runtime(config)
    if run is None:
        out = args.out or runs.default_run_dir(args.task)
        run = parallel.on_main(lambda: runs.create_run_dir(out, args.overwrite, input_paths(config),
                                                           resumable=not task.no_resume))
    args.run_dir = run  # for the line an interruption prints
    finished = False
    try:
        metrics = task.train(config, Path(run), data, resume=bool(args.resume), parallel=parallel)
        finished = True
    except Exception as error:  # any failure, not only bad input, in a directory made a moment ago
        if not args.resume and parallel.is_main:
            # under --nproc the line goes to the launcher first: the other ranks may still be reading the
            # directory, and one that finds it gone would leave its own line ("... is missing") before this
            if isinstance(error, (UserError, OSError)):
                error.reported = torchrun.report(error_line(args, error))
            runs.discard_unfinished(run)  # (and the run it replaced back in its place)
        raise
    except KeyboardInterrupt:  # interrupted with nothing in the run yet (an auto search removes its
        # candidates), or before the first checkpoint of a run that replaced another (--overwrite): the
        # directory this command made goes, and the run it replaced comes back
        if not args.resume and parallel.is_main and Path(run).is_dir():
            had_old = runs.replaced(run).is_dir()
            if (had_old or not any(Path(run).iterdir())) and runs.discard_unfinished(run):
                args.run_removed = "restored" if had_old else "removed"
        raise
    finally:
        parallel.close(wait=finished)  # a rank that failed leaves at once: torchrun then stops the others
    if parallel.is_main:
        if not args.resume:
            runs.drop_replaced(run)  # the new run stands: the one it replaced goes now
        else:  # run.json records the config the run now ends with (--max-steps, --set train.… given here);
            # not this launch's [parallel] layout: each launch gives its own, and one process must resume too
            ended = to_dict(config) | ({"parallel": info["config"]["parallel"]} if "parallel" in info["config"] else {})
            runs.write_run(run, args.task, ended)
        print(f"{task.summary(config, metrics)}; run: {run}")


def command_generate(args: argparse.Namespace) -> None:
    from ..data.tokenizer import unknown_note, unknown_pieces
    from ..tasks.language_model import LanguageModel

    lm = LanguageModel.load(args.run, args.device)
    pieces = lm.stream(args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed,
                       args.compile)
    if unknown := unknown_pieces(lm.tokenizer, [args.prompt]):
        print(unknown_note(unknown, "prompt"), file=sys.stderr)
    sys.stdout.write(args.prompt)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def input_lines(args: argparse.Namespace, inputs: str = "texts") -> list[str]:
    """The inputs given as arguments, or else standard input's lines; blank ones are left out, and
    none left is a UserError (a silent success would look like an answer) naming the ``inputs``."""
    from ..data.text import read_stdin_lines

    lines = [line for line in args.text or read_stdin_lines() if line.strip()]
    if not lines:
        raise UserError(f"nothing to {args.command}: give the {inputs} as arguments, or one a line on standard "
                        f"input (blank ones are left out)")
    return lines


def trained_task(run: Path, command: str) -> registry.Task:
    """The task of a run that ``command`` can use; a compare or bench directory is a UserError that
    points at the runs inside it."""
    from ..tasks import run_dir as runs

    name = runs.read_run(run)["task"]
    if name.startswith("compare-"):
        raise UserError(f"{run} compares several models, each a run of its own: seqlab {command} {run}/MODEL ...")
    if name not in registry.tasks():
        raise UserError(f"{run} is a {name} run; seqlab {command} takes a trained model's run")
    return registry.get(name)


def options(args: argparse.Namespace, flags) -> dict:
    """The values of ``flags`` on the command line (None where not given); counts must be positive."""
    given = {f.name: getattr(args, f.name, None) for f in flags}
    for f in flags:
        if f.type is int:
            positive(given[f.name], flag(f.name))
    return given


def command_predict(args: argparse.Namespace) -> None:
    """``predict`` serves every task: the run directory says which."""
    task = trained_task(args.run, "predict")
    for f in union(t.predict_flags for t in registry.tasks().values()):
        if f.name not in {g.name for g in task.predict_flags} and getattr(args, f.name, None) is not None:
            raise UserError(f"{flag(f.name)}: not for a {task.name} run")
    given = options(args, task.predict_flags)
    if args.text and not task.predict_needs_input:
        raise UserError(f"a {task.name} run takes no inputs as arguments: {' '.join(args.text)!r}")
    predictor = task.load(args.run, args.device)
    for line in task.predict(predictor, input_lines(args, task.predict_inputs) if task.predict_needs_input else [],
                             given):
        print(line)


def command_translate(args: argparse.Namespace) -> None:
    task = registry.get("translate")
    given = options(args, task.predict_flags)
    if trained_task(args.run, "translate") is not task:
        raise UserError(f"{args.run} is not a translation run; seqlab predict {args.run} runs it")
    lines = input_lines(args)
    for output in task.predict(task.load(args.run, args.device), lines, given):
        print(output)


def command_eval(args: argparse.Namespace) -> None:
    """``eval`` scores any run on new data; the run directory says which task, and so which flags."""
    import json

    task = trained_task(args.run, "eval")
    needed = [f for f in task.eval_flags if f.required]
    if stray := [flag(f.name) for f in union(t.eval_flags for t in registry.tasks().values())
                 if f.name not in {g.name for g in task.eval_flags} and getattr(args, f.name) is not None]:
        raise UserError(f"{', '.join(stray)}: not for a {task.name} run, which is scored on "
                        f"{' and '.join(flag(f.name) for f in needed)}")
    if missing := [flag(f.name) for f in needed if getattr(args, f.name) is None]:
        raise UserError(f"a {task.name} run is scored on new data: give {' and '.join(missing)}")
    given = options(args, task.eval_flags)
    print(json.dumps(task.evaluate(task.load(args.run, args.device), given), indent=2))


def command_demo(args: argparse.Namespace) -> None:
    from ..tasks.demo import run_demo

    overrides = args.set + ([f"train.max_time={args.max_time}"] if args.max_time is not None else [])
    run_demo(args.out, args.overwrite, overrides)


def command_compare(args: argparse.Namespace) -> None:
    from ..tasks.compare import parse_models, run_compare

    task = registry.get(args.task)
    out = args.out or Path("runs") / f"compare-{task.name}"
    flags = {f.name: f.key for f in task.compared_flags()}
    overrides = args.set + flag_overrides(args, {**COMMON_FLAGS, **flags})
    models = parse_models(",".join(task.architectures) if args.models is None else args.models, task.architectures)
    given = {f.name: getattr(args, f.name) for f in task.compare_flags()}
    run_compare(task, models, out, args.overwrite, args.config or task.compare_config(given), overrides, given)


def command_explore(args: argparse.Namespace) -> None:
    from ..explore.app import serve

    if not 0 < args.port < 65536:
        raise UserError(f"--port must be in 1..65535; got {args.port}")
    check_port_free(args.host, args.port)
    serve(args.run, args.host, args.port)


def check_port_free(host: str, port: int) -> None:
    """A UserError if ``host:port`` cannot be listened on (another server holds it), found by binding it
    once, before the server prints its address."""
    import errno
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as error:
        raise UserError(f"--host {host}: {error.strerror}") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port left in TIME_WAIT by a closed server is free, a listening one is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            held = "another program holds it: " if error.errno == errno.EADDRINUSE else ""
            raise UserError(f"cannot listen on {host}:{port} ({error.strerror}); {held}choose another --port") from None


def command_data(args: argparse.Namespace) -> None:
    from ..data.download import download

    download(args.name, args.out or Path("data") / args.name, args.overwrite)


def command_bench(args: argparse.Namespace) -> None:
    from ..tasks import run_dir as runs
    from ..config import human_bytes, memory_bytes
    from ..tasks.bench_complexity import attention_bytes, run_complexity

    try:
        lengths = sorted({int(n) for n in args.lengths.split(",")})
    except ValueError:
        raise UserError(f"--lengths must be comma-separated integers; got {args.lengths!r}") from None
    if len(lengths) < 2 or min(lengths) < 1:
        raise UserError("--lengths needs at least two different positive lengths")
    positive(args.d_model, "--d-model")
    positive(args.repeats, "--repeats")
    ram, need = memory_bytes(), attention_bytes(lengths[-1])
    if ram is not None and need > ram:  # the kernel's out-of-memory killer would end it without a word
        raise UserError(f"--lengths {lengths[-1]} needs ~{human_bytes(need)} for self-attention's n×n weights, more "
                        f"than this machine's {human_bytes(ram)} of memory; give shorter lengths")
    with runs.filling(runs.create_run_dir(args.out, args.overwrite)) as out:
        runs.write_run(out, "bench-complexity", {"lengths": lengths, "d_model": args.d_model})
        run_complexity(out, lengths, args.d_model, repeats=args.repeats)


def command_export(args: argparse.Namespace) -> None:
    from ..interop import export

    print(export(args.run, args.format, args.out, args.overwrite))


def command_import(args: argparse.Namespace) -> None:
    from ..interop import import_hf

    print(import_hf(args.directory, args.out, args.overwrite))


COMMANDS = {"train": command_train, "eval": command_eval, "predict": command_predict,
            "translate": command_translate, "demo": command_demo, "bench": command_bench,
            "data": command_data, "compare": command_compare, "generate": command_generate,
            "explore": command_explore, "export": command_export, "import": command_import}


def utf8(argument: str) -> bool:
    """False for a command-line argument with bytes that are not UTF-8 (Python keeps them as surrogates)."""
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "text", None), list) and not any(e.startswith("-") for e in extra):
        args.text += extra  # "RUN --beam 4 TEXT": argparse closes the text list at the first flag
    elif args.command in ("train", "compare") and (stray := [e.split("=")[0] for e in extra if e.startswith("-")]):
        sys.stderr.write(f"seqlab {args.command}: error: {', '.join(stray)}: not a flag of {args.command} "
                         f"{args.task} (see seqlab {args.command} {args.task} --help)\n")
        raise SystemExit(2)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    if undecodable := [a for a in map(str, args.argv) if not utf8(a)]:
        shown = undecodable[0].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        sys.stderr.write(f"seqlab {args.command}: error: {shown!r} is not valid UTF-8 (the byte shown as �): the "
                         f"libraries seqlab reads and writes with take UTF-8 only: give text as UTF-8, and rename a "
                         f"file or folder with such a name\n")
        return 2
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if in_main_thread else None
    try:
        use_threads(args)
        COMMANDS[args.command](args)
        sys.stdout.flush()  # here, not at exit, so that a reader that went away is handled below
    except BrokenPipeError:  # the reader went away (`seqlab eval RUN ... | head`): stop quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
        return 141  # 128 + SIGPIPE, what a shell reports for cat in the same place
    except (UserError, OSError) as error:  # OSError: a path that cannot be made, read or written
        line = error_line(args, error)
        # under --nproc any rank may find bad input, and several the same: seqlab's launcher prints one
        # line; under a plain torchrun, rank 0 does
        if getattr(error, "reported", False) or torchrun.report(line):
            return 2
        if os.environ.get("RANK", "0") == "0":
            sys.stderr.write(line)
        return 2
    except RuntimeError as error:
        if "RANK" in os.environ and peer_lost(error):  # the rank that failed first says why
            return 1
        raise
    except KeyboardInterrupt:
        run = getattr(args, "run_dir", None)
        if os.environ.get("RANK", "0") != "0":  # one line for a --nproc job: rank 0's
            return 130
        if args.command != "train":  # nothing to resume (demo and compare have no --resume)
            sys.stderr.write("\ninterrupted\n")
        elif getattr(args, "run_removed", None) == "restored":
            sys.stderr.write(f"\ninterrupted before the first checkpoint; {run} holds the run it held before\n")
        elif getattr(args, "run_removed", None):
            sys.stderr.write(f"\ninterrupted before anything was saved; {run} removed: start again\n")
        elif run and not (Path(run) / "checkpoints").is_dir():
            sys.stderr.write("\ninterrupted before the first checkpoint (a one-process run saves one when "
                             "interrupted after its first step; several processes at each evaluation); "
                             "start again with --overwrite\n")
        else:
            again = f"seqlab train {args.task} --resume {run}" if run else "seqlab train TASK --resume RUN_DIR"
            sys.stderr.write(f"\ninterrupted; a training run continues from its last checkpoint with: {again}\n")
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


def error_line(args: argparse.Namespace, error: Exception) -> str:
    """The one line bad input ends a command with."""
    return f"seqlab {args.command}: error: {error}\n"


def peer_lost(error: RuntimeError) -> bool:
    """Whether a collective failed because another rank of the job went away (it failed, and said why):
    torch's distributed errors, or gloo's closed connection, which comes as a plain RuntimeError."""
    import torch.distributed as dist

    return isinstance(error, dist.DistError) or "closed by peer" in str(error) or "reset by peer" in str(error)


def use_threads(args: argparse.Namespace) -> None:
    """``--threads N`` (or the default share of the cores) for torch and NumPy, set once before any
    work; a note when other programs already keep the cores busy (steps then run slower; results do
    not change, as recipes stop by steps)."""
    if not hasattr(args, "threads"):
        return
    from ..train.threads import set_threads, warn_if_busy

    set_threads(args.threads)
    if args.command in ("train", "compare", "demo", "bench") and os.environ.get("RANK", "0") == "0":
        warn_if_busy(sys.stdout)  # with the training log, not among the errors


def interrupt(signum, frame) -> None:
    """SIGTERM (what schedulers and ``kill`` send) ends a command as Ctrl-C does: the last checkpoint
    stays, and the line says how to resume."""
    raise KeyboardInterrupt
