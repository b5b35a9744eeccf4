"""Helpers of `make mutation` (docs/testing.md); not a test module.

    python tests/mutation.py config "FILE GLOBS" "TEST PATHS" >> build/mutation/pyproject.toml
    python tests/mutation.py score        (in build/mutation, after mutmut run and export-cicd-stats)
"""

import json
import sys


def config(mutate: str, tests: str) -> str:
    """mutmut's [tool.mutmut] section: mutate the files matching ``mutate``, run the tests under ``tests``."""
    return ("\n[tool.mutmut]\n"
            'source_paths = ["src/"]\n'
            f"only_mutate = {json.dumps(mutate.split())}\n"
            f"pytest_add_cli_args_test_selection = {json.dumps(tests.split())}\n"
            'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
            # torch is not fork-safe once its thread pool has run: fork the workers from a clean server
            'process_isolation = "forkserver"\n')


def score(stats_path: str = "mutants/mutmut-cicd-stats.json") -> str:
    s = json.load(open(stats_path))
    killed = s["killed"] + s["timeout"]  # a mutant that makes a test hang was noticed too
    tried = killed + s["survived"]
    return (f"mutation score: {killed}/{tried} killed ({100 * killed / max(tried, 1):.1f} %); "
            f"{s['survived']} survived, {s['no_tests']} reached by no test, {s['suspicious']} suspicious. "
            "Survivors: cd build/mutation && mutmut results; one of them: mutmut show NAME")


if __name__ == "__main__":
    print(config(*sys.argv[2:4]) if sys.argv[1] == "config" else score())
