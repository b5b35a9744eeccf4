# Quickstart: `make demo` (the main job) and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean browser

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

clean:
	rm -rf runs build *.egg-info src/*.egg-info
