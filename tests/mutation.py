"""Helpers of `make mutation` (docs/testing.md); not a test module.

    python tests/mutation.py config "FILE GLOBS" "TEST PATHS" >> build/mutation/pyproject.toml
    python tests/mutation.py score        (in build/mutation, after mutmut run)

The score reads mutmut's per-mutant results (``mutants/**/*.meta``) and the mutants listed as equivalent in
``tests/equivalent_mutants/*.txt`` (one ``NAME: reason`` a line; a change that no input can tell apart
from the original). Per package:

    killed / (killed + survived + reached by no test - equivalent)

A mutant reached by no test counts as not killed: no test would notice it.
"""

import collections
import json
import pathlib
import sys

EQUIVALENT = pathlib.Path(__file__).parent / "equivalent_mutants"
KILLED = {1, 3, 36, 24, -24, 152, 255, -11, -9}  # a failing test, pytest's internal error, a hang or a crash
SURVIVED, NO_TESTS = {0}, {5, 33}


def config(mutate: str, tests: str) -> str:
    """mutmut's [tool.mutmut] section: mutate the files matching ``mutate``, run the tests under ``tests``."""
    return ("\n[tool.mutmut]\n"
            'source_paths = ["src/"]\n'
            f"only_mutate = {json.dumps(mutate.split())}\n"
            f"pytest_add_cli_args_test_selection = {json.dumps(tests.split())}\n"
            # torch.compile cannot trace through mutmut's call counters (pyproject.toml's `compiles` marker)
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not compiles"]\n'
            # torch is not fork-safe once its thread pool has run: fork the workers from a clean server
            'process_isolation = "forkserver"\n')


def equivalent() -> dict[str, str]:
    """Mutant name -> why no input can tell it from the original."""
    listed = {}
    for path in sorted(EQUIVALENT.glob("*.txt")):
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, reason = line.partition(":")
                listed[name.strip()] = reason.strip()
    return listed


def exit_codes(mutants: pathlib.Path = pathlib.Path("mutants")) -> dict[str, int | None]:
    codes = {}
    for meta in mutants.rglob("*.meta"):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def score(codes: dict[str, int | None], listed: dict[str, str]) -> list[str]:
    counts = collections.defaultdict(collections.Counter)
    for name, code in codes.items():
        package = ".".join(name.split(".")[:2])  # seqlab.nn
        kind = ("killed" if code in KILLED else "equivalent" if code in SURVIVED | NO_TESTS and name in listed
                else "survived" if code in SURVIVED else "no test" if code in NO_TESTS else "other")
        counts[package][kind] += 1
    lines = []
    for package, c in sorted(counts.items()):
        tried = c["killed"] + c["survived"] + c["no test"]
        lines.append(f"{package}: {c['killed']}/{tried} killed ({1000 * c['killed'] // max(tried, 1) / 10:.1f} %); "  # rounded down
                     f"{c['survived']} survived, {c['no test']} reached by no test, "
                     f"{c['equivalent']} equivalent (left out), {c['other']} not run or suspicious")
    stale = sorted(n for n in listed if codes.get(n) in KILLED)
    if stale:
        lines.append(f"listed as equivalent but killed (remove them): {', '.join(stale)}")
    lines.append("Survivors, in this folder: mutmut results; one of them: mutmut show NAME")
    return lines


if __name__ == "__main__":
    print(config(*sys.argv[2:4]) if sys.argv[1] == "config" else "\n".join(score(exit_codes(), equivalent())))
