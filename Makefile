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

# SDK v3 beside the course's v2: localcloud's ModelTrainer tests run in this second, small venv
# (requirements-sdkv3.txt); the server and the jobs keep the course venv's interpreter.
SDKV3 := .venv-sdkv3
SDKV3_STAMP := $(SDKV3)/.installed

.PHONY: setup sdkv3 test-sdkv3 test test-notebooks nbval notebooks lint format course course-fast lab live-check clean

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

sdkv3: $(SDKV3_STAMP)  ## the SDK v3 side venv (quick when done)

$(SDKV3_STAMP): requirements-sdkv3.txt
	@test -x $(SDKV3)/bin/python || $(PYTHON) -m venv $(SDKV3)
	$(SDKV3)/bin/python -m pip install --quiet --no-deps -r requirements-sdkv3.txt
	@# the repository on its path: `localcloud` and the tests import as in the course venv
	$(SDKV3)/bin/python -c 'import site, pathlib; pathlib.Path(site.getsitepackages()[0], "sagemaker-course.pth").write_text("$(CURDIR)\n")'
	@touch $@

test-sdkv3: setup sdkv3  ## localcloud's SDK v3 (ModelTrainer) tests, in the side venv
	LOCALCLOUD_PYTHON=$(CURDIR)/$(PY) $(SDKV3)/bin/python -m pytest -p no:cacheprovider tests/sdkv3

lint: setup  ## ruff on code and notebooks
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/nbqa ruff notebooks

format: setup  ## apply ruff's formatting to code and notebooks
	$(PY) -m ruff format .
	$(VENV)/bin/nbqa ruff --fix notebooks
	$(VENV)/bin/nbqa "ruff format" notebooks

test: lint  ## unit and localcloud tests, then notebooks, nbval and SDK v3 side by side
	@# two workers (one localcloud server each): most of these tests wait on job processes
	$(PY) -m pytest -n 2 tests/unit tests/localcloud
	@# each of these uses about one core and its own localcloud; output is kept per target
	$(MAKE) --no-print-directory -j 3 --output-sync=target test-notebooks nbval test-sdkv3

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
	rm -rf build .localcloud .pytest_cache .ruff_cache .coverage $(SDKV3)
