# `make demo` and `make test` work on a fresh machine: they create .venv and install pinned versions.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BLENDER_STAMP := .venv-blender/.installed
BLENDER_PYTHON ?= $(shell command -v python3.11 2>/dev/null)
DEMO_OUT ?= out/demo
BPY_VERSION ?= 4.2.23
BENCHMARKS := evaluate resample pipeline shards render caption train sources report
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONHASHSEED := 0

.PHONY: install demo test bench bench-baseline check-lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dymesh run jobs/demo.yaml --out $(DEMO_OUT)
	$(VENV)/bin/dymesh stats $(DEMO_OUT)
	@echo "demo output: $(DEMO_OUT)  (dymesh status $(DEMO_OUT); dymesh stats $(DEMO_OUT) --sql '...')"
	@echo "demo report (open in a browser, no server needed):"; $(VENV)/bin/dymesh report $(DEMO_OUT)

# The Blender-conversion tests (tests/test_sources_blender.py, tests/test_sources_job.py) run against .venv-blender
# when Python 3.11 is there to build it; without it they skip and say why.
test: $(STAMP) $(BLENDER_STAMP)
	DYMESH_BLENDER_PYTHON=$(CURDIR)/.venv-blender/bin/python $(PY) -m pytest -q -p no:cacheprovider --durations=15

bench: $(STAMP) $(BLENDER_STAMP)
	for b in $(BENCHMARKS); do echo "== benchmarks/$$b.py"; DYMESH_BLENDER_PYTHON=$(CURDIR)/.venv-blender/bin/python $(PY) benchmarks/$$b.py || exit 1; done

# Blender as a Python module, in its own venv (bpy 4.2 LTS wheels are cp311): the baseline of benchmarks/evaluate.py,
# and the converter of .fbx/.blend/... files for the tests and benchmarks/sources.py (DYMESH_BLENDER_PYTHON points
# at it; users can instead pip install -e '.[blender]' into their own Python 3.11 environment).
bench-baseline: $(BLENDER_STAMP)

$(BLENDER_STAMP):
	@if [ -z "$(BLENDER_PYTHON)" ]; then \
	  echo "note: no python3.11 on PATH: Blender (bpy $(BPY_VERSION), cp311 wheels only) is not installed; its tests and benchmark columns skip"; \
	else \
	  $(BLENDER_PYTHON) -m venv .venv-blender && \
	  .venv-blender/bin/python -m pip install -q bpy==$(BPY_VERSION) && \
	  .venv-blender/bin/python -c "import bpy; print('Blender', bpy.app.version_string)" && \
	  touch $(BLENDER_STAMP); \
	fi

# Does requirements.lock resolve (wheels only) on Python 3.11, 3.12 and 3.13? Needs a package index.
check-lock: $(STAMP)
	$(PY) tools/check_lock.py

clean:
	rm -rf $(VENV) .venv-blender out
