# `make demo` and `make test` work on a fresh machine: they create .venv and install pinned versions.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/demo
BPY_VERSION ?= 4.2.23
BENCHMARKS := evaluate resample pipeline shards render caption train report
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONHASHSEED := 0

.PHONY: install demo test bench bench-baseline clean

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

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	for b in $(BENCHMARKS); do echo "== benchmarks/$$b.py"; $(PY) benchmarks/$$b.py || exit 1; done

# Blender as a Python module, in its own venv, for benchmarks/evaluate.py's baseline (bpy 4.2 LTS wheels are cp311).
bench-baseline:
	$(PYTHON) -m venv .venv-blender
	.venv-blender/bin/python -m pip install -q bpy==$(BPY_VERSION)
	.venv-blender/bin/python -c "import bpy; print('Blender', bpy.app.version_string)"

clean:
	rm -rf $(VENV) .venv-blender out
