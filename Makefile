# Quickstart: `make demo` (the main job) and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean browser mutation

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/seqlab demo --out runs/demo --overwrite

test: $(STAMP) browser
	$(PY) -m pytest

# The explorer's browser test drives Debian's Chromium; install it if we can, else that one test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && apt-get update -qq >/dev/null 2>&1 && \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) || \
	  echo "note: Chromium could not be installed; the explorer's browser test will be skipped"

bench: $(STAMP)
	$(PY) benchmarks/attention.py
	$(PY) benchmarks/lm_throughput.py
	$(PY) benchmarks/generate.py

# Mutation testing (docs/testing.md): mutmut changes one operator, constant or call at a time in the
# MUTATE files and runs the MUTATION_TESTS that reach the changed function; a mutant no test notices
# "survived". It works in build/mutation/, a copy, so the tree is never left mutated; MUTATION_JOBS
# workers of one thread each. Hours on 2 cores for the default set; one file:
#   make mutation MUTATE=src/seqlab/nn/masks.py MUTATION_TESTS=tests/nn
MUTATE         ?= src/seqlab/nn/* src/seqlab/models/* src/seqlab/train/* src/seqlab/data/*
# tests/train/test_kill.py trains in fresh processes, which mutmut's counters do not see: minutes a mutant, no kill
MUTATION_TESTS ?= tests/nn tests/models tests/train tests/test_config.py tests/data --ignore=tests/train/test_kill.py
MUTATION_JOBS  ?= $(shell nproc)

MUTATION_DIR   ?= build/mutation

mutation: $(STAMP)
	@$(PY) -c 'import mutmut' 2>/dev/null || $(PY) -m pip install --quiet 'mutmut==3.8.1'
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR) && cp -r src tests pyproject.toml $(MUTATION_DIR)/
	$(PY) tests/mutation.py config '$(MUTATE)' '$(MUTATION_TESTS)' >> $(MUTATION_DIR)/pyproject.toml
	cd $(MUTATION_DIR) && OMP_NUM_THREADS=1 $(abspath $(PY)) -m mutmut run --max-children $(MUTATION_JOBS) \
	  && $(abspath $(PY)) $(abspath tests/mutation.py) score

clean:
	rm -rf runs build *.egg-info src/*.egg-info
