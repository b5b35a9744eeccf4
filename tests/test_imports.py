"""The package's layering: every module imports on its own, and the lower layers (blocks, models, data,
the NumPy scratch code) never import the higher ones (training, tasks, command line, pictures, the
explorer, parallelism) — not even inside a function, where an import cycle would otherwise hide."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import seqlab

SRC = Path(seqlab.__file__).parent
LOWER = ("seqlab.nn", "seqlab.models", "seqlab.data", "seqlab.scratch")
HIGHER = ("seqlab.train", "seqlab.tasks", "seqlab.cli", "seqlab.viz", "seqlab.explore", "seqlab.parallel")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(p): p for p in sorted(SRC.rglob("*.py")) if p.name != "__main__.py"}


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an import statement anywhere in ``source`` (top level or inside a function) names,
    relative imports resolved against ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found.add(target)
            # ``from seqlab import train`` / ``from .. import tasks``: the names may be modules.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_import_parser_sees_relative_and_function_level_imports():
    source = "import os\ndef f():\n    from ..train.loop import Trainer\n    from .. import viz\n"
    found = imported_modules(source, "seqlab.models.pretrained")
    assert {"os", "seqlab.train.loop", "seqlab.viz"} <= found
    assert "seqlab.nn.layers" in imported_modules("from .layers import Encoder", "seqlab.nn", is_package=True)


def test_lower_layers_never_import_higher_ones():
    lower = [name for name in SOURCES if within(name, LOWER)]
    assert len(lower) > 20  # nn, models, data and scratch were all found
    wrong = []
    for name in lower:
        path = SOURCES[name]
        for target in imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"):
            if within(target, HIGHER):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_io_module_imports_nothing_from_seqlab_but_errors():
    found = imported_modules(SOURCES["seqlab.io"].read_text(encoding="utf-8"), "seqlab.io")
    assert {name for name in found if within(name, ("seqlab",)) and not within(name, ("seqlab.errors",))} == set()


# One interpreter imports the third-party libraries seqlab uses at module level (torch, scikit-learn, ...:
# seconds each on a small machine) but nothing of seqlab; a child forked from it imports one seqlab
# module into a sys.modules without any of seqlab, and exits. So each module is imported on its own, in
# a process of its own, without paying for torch again each time.
FORK_EACH = r"""
import importlib, os, sys, traceback

for library in sys.argv[2:]:
    try:
        importlib.import_module(library)
    except Exception:
        pass
assert not [m for m in sys.modules if m == "seqlab" or m.startswith("seqlab.")]
failed = []
for name in sys.argv[1].split(","):
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            print(f"--- import {name} failed:", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(name)
print(",".join(failed))
"""


def module_level_libraries() -> set[str]:
    """The non-seqlab modules that seqlab's files import at module level (not inside functions)."""
    libraries = set()
    for name, path in SOURCES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import):
                libraries.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module != "__future__":
                libraries.add(node.module)
    return {name for name in libraries if not within(name, ("seqlab",))}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_module_imports_on_its_own():
    names = sorted(SOURCES)
    assert len(names) > 50 and "seqlab.models.pretrained" in names and "seqlab.viz.curves" in names
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC.parent), os.environ.get("PYTHONPATH", "")]),
           "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-c", FORK_EACH, ",".join(names), *sorted(module_level_libraries())],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    failed = [name for name in run.stdout.strip().splitlines()[-1].split(",") if name] if run.stdout.strip() else []
    assert not failed, f"these modules fail to import on their own: {failed}\n{run.stderr}"
