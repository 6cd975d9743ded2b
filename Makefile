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

.PHONY: setup images lock setup-py310 lock-py310 test-py310 sdkv2 test-sdkv2 test test-unit test-notebooks nbval notebooks lint format course course-fast lab live-check clean

setup: $(STAMP)  ## create .venv and install the course at the locked versions (quick when done)

$(STAMP): requirements.txt requirements-dev.txt requirements-lock.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# the ranges of requirements*.txt (via pyproject.toml) at the versions of the lock; the
	@# course's packages editable: `localcloud`, `course` and imports work from any folder
	$(PY) -m pip install --quiet -c requirements-lock.txt -e '.[dev]'
	@# a venv made by an older setup had the repository on its path through this file
	$(PY) -c 'import site, pathlib; pathlib.Path(site.getsitepackages()[0], "sagemaker-course.pth").unlink(missing_ok=True)'
	$(PY) -m localcloud install-kernel
	@touch $(STAMP)

lock: setup  ## re-make requirements-lock.txt: a fresh venv with the newest versions the ranges admit
	rm -rf build/lock && $(PYTHON) -m venv build/lock
	build/lock/bin/pip install --quiet torch==2.13.0 && build/lock/bin/pip install --quiet -e '.[dev]'
	{ sed '/^#/!Q' requirements-lock.txt; build/lock/bin/pip freeze --exclude-editable | \
	  sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > build/lock.txt && mv build/lock.txt requirements-lock.txt

# The other end: Python 3.10 with the lowest versions requirements.txt admits (.ci/lowest.py), as
# on a notebook instance's stock kernel. Runs the unit tests and the torch-free notebooks 00-04.
PYTHON310 ?= $(lastword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python3.10) $(shell command -v python3.10 2>/dev/null | grep -v /shims/))
VENV310 := .venv310
STAMP310 := $(VENV310)/.installed

setup-py310: $(STAMP310)  ## the Python 3.10 venv at requirements-py310-lowest.txt (quick when done)

$(STAMP310): requirements-py310-lowest.txt pyproject.toml
	@test -n "$(PYTHON310)" || { echo "Python 3.10 is needed: set PYTHON310=/path/to/python3.10"; exit 1; }
	rm -rf $(VENV310) && $(PYTHON310) -m venv $(VENV310)
	$(VENV310)/bin/python -m pip install --quiet --upgrade pip
	$(VENV310)/bin/python -m pip install --quiet -r requirements-py310-lowest.txt
	@# the repository on its path (not `pip install -e .`, which writes into the tree beside setup)
	$(VENV310)/bin/python -c 'import site, pathlib; pathlib.Path(site.getsitepackages()[0], "course.pth").write_text("$(CURDIR)\n")'
	$(VENV310)/bin/python -m localcloud install-kernel
	@touch $@

lock-py310: setup  ## re-make requirements-py310-lowest.txt (Python 3.10, the lowest admitted versions)
	@test -n "$(PYTHON310)" || { echo "Python 3.10 is needed: set PYTHON310=/path/to/python3.10"; exit 1; }
	rm -rf build/lock-py310 && $(PYTHON310) -m venv build/lock-py310
	$(PY) .ci/lowest.py > build/lowest.txt
	build/lock-py310/bin/pip install --quiet -r build/lowest.txt
	{ sed '/^#/!Q' requirements-py310-lowest.txt; build/lock-py310/bin/pip freeze --exclude-editable; } \
	  > build/lock-py310.txt && mv build/lock-py310.txt requirements-py310-lowest.txt

test-py310: setup-py310  ## unit tests and notebooks 00-04 on Python 3.10 with the lowest versions
	$(VENV310)/bin/python -m pytest -p no:cacheprovider -n $(WORKERS) tests/unit
	NOTEBOOK_TEST_OUT=build/test-notebooks-py310 NOTEBOOK_SCRATCH=../build/test-work-py310 \
	  $(VENV310)/bin/python -m pytest -p no:cacheprovider tests/test_notebooks.py \
	  -k 'test_notebook_runs and not pytorch and not monitor'

# Offline XGBoost 3.2-0 jobs run with that image's Python and libraries once this is built (in a
# cache outside the repository, shared by every state folder; localcloud/README.md).
images:  ## build the XGBoost 3.2-0 image's environment for offline jobs (quick when built)
	$(PYTHON) -m localcloud images pull xgboost:3.2-0

sdkv2: $(SDKV2_STAMP)  ## the SDK v2 layer for localcloud's v2 tests (quick when done)

$(SDKV2_STAMP): requirements-sdkv2.txt | $(STAMP)
	rm -rf $(SDKV2)
	$(PY) -m pip install --quiet --no-deps --target $(SDKV2) -r requirements-sdkv2.txt
	@touch $@

test-sdkv2: setup sdkv2  ## localcloud's tests, with SDK v2 estimators as the seed lesson uses them
	PYTHONPATH=$(CURDIR)/$(SDKV2) SAGEMAKER_SUPPRESS_V2_WARNING=1 $(PY) -m pytest -n $(WORKERS) \
	  --durations=10 tests/localcloud

lint: setup  ## ruff on code and notebooks
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/nbqa ruff notebooks

format: setup  ## apply ruff's formatting to code and notebooks
	$(PY) -m ruff format .
	$(VENV)/bin/nbqa ruff --fix notebooks
	$(VENV)/bin/nbqa "ruff format" notebooks

test:  ## everything CI checks, as one graph: each part starts as soon as what it needs is built
	@# four at a time on two cores: most of these wait on pip downloads or on job processes;
	@# the longest parts first. Output is kept per target; a failure stops new parts starting.
	$(MAKE) --no-print-directory -j 4 --output-sync=target WORKERS=1 \
	  lint test-sdkv2 test-notebooks nbval test-unit test-py310

test-unit: setup sdkv2 images  ## unit and SDK v3 tests, on two workers (a localcloud server each)
	$(PY) -m pytest -n 2 --durations=10 tests/unit tests/sdkv3

test-notebooks: setup  ## every notebook under papermill (test parameters), and the results site
	$(PY) -m pytest --durations=5 tests/test_site_browser.py tests/test_notebooks.py

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
	rm -rf build .localcloud .pytest_cache .ruff_cache .coverage $(SDKV2) $(VENV310)
