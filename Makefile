# The course's commands. `make course` and `make test` are the two a new machine needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBVAL := --nbval-lax --nbval-kernel-name localcloud --nbval-sanitize-with tests/nbval_sanitize.cfg
# Idle OpenMP threads (xgboost, torch) spin by default, which starves a small shared machine.
export OMP_WAIT_POLICY ?= PASSIVE
export SAGEMAKER_SUPPRESS_V2_WARNING ?= 1
# No __pycache__ in scripts/: the SDK would upload it with the training code.
export PYTHONDONTWRITEBYTECODE ?= 1

# SDK v2 beside the course's v3: localcloud's v2 compatibility tests import `sagemaker` from this
# folder (requirements-sdkv2.txt) and everything else from the course venv.
SDKV2 := .sdkv2
SDKV2_STAMP := $(SDKV2)/.installed
WORKERS ?= 2  # pytest-xdist workers for the localcloud tests

.PHONY: setup sdkv2 test-sdkv2 test test-notebooks nbval notebooks lint format course course-fast lab live-check clean

setup: $(STAMP)  ## create .venv, install the pinned requirements and the course (quick when done)

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@# the course's packages, editable: `localcloud`, `course` and imports work from any folder
	$(PY) -m pip install --quiet -e '.[dev]'
	@# a venv made by an older setup had the repository on its path through this file
	$(PY) -c 'import site, pathlib; pathlib.Path(site.getsitepackages()[0], "sagemaker-course.pth").unlink(missing_ok=True)'
	$(PY) -m localcloud install-kernel
	@touch $(STAMP)

sdkv2: $(SDKV2_STAMP)  ## the SDK v2 layer for localcloud's v2 tests (quick when done)

$(SDKV2_STAMP): requirements-sdkv2.txt | $(STAMP)
	rm -rf $(SDKV2)
	$(PY) -m pip install --quiet --no-deps --target $(SDKV2) -r requirements-sdkv2.txt
	@touch $@

test-sdkv2: setup sdkv2  ## localcloud's tests, with SDK v2 estimators as the seed lesson uses them
	PYTHONPATH=$(CURDIR)/$(SDKV2) SAGEMAKER_SUPPRESS_V2_WARNING=1 $(PY) -m pytest -n $(WORKERS) tests/localcloud

lint: setup  ## ruff on code and notebooks
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/nbqa ruff notebooks

format: setup  ## apply ruff's formatting to code and notebooks
	$(PY) -m ruff format .
	$(VENV)/bin/nbqa ruff --fix notebooks
	$(VENV)/bin/nbqa "ruff format" notebooks

test: lint  ## unit and SDK v3 tests, then localcloud's v2 tests, notebooks and nbval side by side
	@# two workers (one localcloud server each): most of these tests wait on job processes
	$(PY) -m pytest -n 2 tests/unit tests/sdkv3
	@# side by side, each about one core and its own localcloud; output is kept per target
	$(MAKE) --no-print-directory -j 3 --output-sync=target WORKERS=1 test-sdkv2 test-notebooks nbval

test-notebooks: setup  ## every notebook under papermill (test parameters), and the results site
	$(PY) -m pytest tests/test_site_browser.py tests/test_notebooks.py

nbval: setup  ## re-run the committed notebooks in a fresh localcloud and compare their outputs
	@export LOCALCLOUD_HOME=$$(mktemp -d); $(PY) -m localcloud start >/dev/null && \
	{ $(PY) -m pytest $(NBVAL) notebooks; rc=$$?; $(PY) -m localcloud stop >/dev/null; \
	  rm -rf "$$LOCALCLOUD_HOME"; exit $$rc; }

course: setup  ## run every notebook offline with the lesson's parameters; site in build/site
	$(PY) -m course run --out build

notebooks: setup  ## re-execute the committed notebooks in place (after changing a lesson)
	$(PY) -m course refresh $(LESSONS)

course-fast: setup  ## the same with the test parameters: a two-minute check before a workshop
	$(PY) -m course run --fast --out build

lab: setup  ## JupyterLab with the localcloud kernel available
	$(VENV)/bin/jupyter lab notebooks

live-check: setup  ## 00, 02 and 08 against real AWS (needs credentials; see README for the cost cap)
	$(PY) -m course live-check

clean:  ## remove build outputs and localcloud state (keeps .venv)
	-$(PY) -m localcloud stop 2>/dev/null
	rm -rf build .localcloud .pytest_cache .ruff_cache .coverage $(SDKV2)
