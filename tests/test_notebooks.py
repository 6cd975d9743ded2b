"""Execute the course notebooks in order, in the `localcloud` kernel, with small parameters.

One test per notebook, in teaching order, against the session's one localcloud server
(tests/conftest.py). Executed copies go to build/test-notebooks/. Parameters come from
tests/notebook_params.json: the "*" entry for every notebook, then the notebook's own entry.

Run:  .venv/bin/python -m pytest -m notebooks tests/test_notebooks.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
# `make test-py310` runs beside `make test-notebooks`: its own executed copies and scratch
OUT_DIR = REPO / os.environ.get("NOTEBOOK_TEST_OUT", "build/test-notebooks")
PARAMS_FILE = Path(__file__).with_name("notebook_params.json")
ORDER = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT_S = 300

pytestmark = pytest.mark.notebooks


def _params(stem: str) -> dict:
    table = json.loads(PARAMS_FILE.read_text())
    params = {**table.get("*", {}), **table.get(stem, {})}
    if os.environ.get("NOTEBOOK_SCRATCH"):
        params["scratch"] = os.environ["NOTEBOOK_SCRATCH"]
    return params


def _failure_message(stem: str, executed: Path, exc: BaseException) -> str:
    """ename, evalue and the source of the failing cell, from the executed copy."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:  # noqa: BLE001 - the copy may not exist if papermill failed early
        return f"{stem}: {type(exc).__name__}: {exc}"
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return (
                    f"{stem}, cell {index}: {output['ename']}: {output['evalue']}\n"
                    f"--- cell source ---\n{cell.source}\n--- executed copy: {executed}"
                )
    return f"{stem}: {type(exc).__name__}: {str(exc)[-3000:]}"


TIMINGS: dict[str, float] = {}


def _execute(stem: str, kernel: str, parameters: dict, executed: Path) -> None:
    """Run one lesson with papermill; a failure names the cell and its error."""
    import papermill

    executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{stem}.ipynb"),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(NOTEBOOKS),
            execution_timeout=CELL_TIMEOUT_S,
            progress_bar=False,
        )
    except Exception as exc:  # noqa: BLE001 - reported with the failing cell
        pytest.fail(_failure_message(stem, executed, exc), pytrace=False)


@pytest.mark.parametrize("stem", ORDER)
def test_notebook_runs(stem: str, localcloud_kernel: str) -> None:
    start = time.perf_counter()
    try:
        _execute(stem, localcloud_kernel, _params(stem), OUT_DIR / f"{stem}.ipynb")
    finally:
        TIMINGS[stem] = time.perf_counter() - start
        print(f"{stem}: {TIMINGS[stem]:.1f} s")


def test_a_late_lesson_runs_alone_after_setup(localcloud_kernel: str) -> None:
    """07 needs only what 00 uploads: under a fresh prefix it prepares its own arrays."""
    prefix = f"titanic-course/alone-{int(time.time())}"
    for stem in ("00_setup", "07_pytorch_multi_instance"):
        parameters = {**_params(stem), "prefix": prefix}
        _execute(stem, localcloud_kernel, parameters, OUT_DIR / "alone" / f"{stem}.ipynb")
