"""Execute the course notebooks in order, in the `localcloud` kernel, with small parameters.

One test per notebook, in teaching order, against one localcloud server started for the session
in a temporary state folder. Executed copies go to build/test-notebooks/. Parameters come from
tests/notebook_params.json: the "*" entry for every notebook, then the notebook's own entry.

Run:  .venv/bin/python -m pytest -m notebooks tests/test_notebooks.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
OUT_DIR = REPO / "build" / "test-notebooks"
PARAMS_FILE = Path(__file__).with_name("notebook_params.json")
ORDER = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
KERNEL = "localcloud"
CELL_TIMEOUT_S = 300

# The server and every job process inherit these. OMP_WAIT_POLICY=PASSIVE stops OpenMP threads
# (xgboost, torch) from busy-waiting, which makes them 10-100x slower on a shared 2-core machine.
SERVER_ENV = {
    "LOCALCLOUD_STOP_GRACE_S": "2",
    "LOCALCLOUD_NOTEBOOK_INSTANCE": "localcloud-notebook",
    "OMP_WAIT_POLICY": "PASSIVE",
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
}

pytestmark = pytest.mark.notebooks


def _params(stem: str) -> dict:
    table = json.loads(PARAMS_FILE.read_text())
    return {**table.get("*", {}), **table.get(stem, {})}


@pytest.fixture(scope="module")
def localcloud_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One background localcloud for all notebooks; the kernels find it via LOCALCLOUD_HOME."""
    home = tmp_path_factory.mktemp("localcloud-notebooks")
    saved = {k: os.environ.get(k) for k in (*SERVER_ENV, "LOCALCLOUD_HOME", "LOCALCLOUD_PORT")}
    os.environ.update(SERVER_ENV)
    os.environ["LOCALCLOUD_HOME"] = str(home)
    os.environ.pop("LOCALCLOUD_PORT", None)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "localcloud"]
    subprocess.run([*cli, "install-kernel"], check=True, env=env, capture_output=True)
    subprocess.run([*cli, "start"], check=True, env=env, capture_output=True, cwd=REPO)
    try:
        yield home
    finally:
        subprocess.run([*cli, "stop"], env=env, capture_output=True, cwd=REPO)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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


@pytest.mark.parametrize("stem", ORDER)
def test_notebook_runs(stem: str, localcloud_home: Path) -> None:
    import papermill

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    executed = OUT_DIR / f"{stem}.ipynb"
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{stem}.ipynb"),
            str(executed),
            parameters=_params(stem),
            kernel_name=KERNEL,
            cwd=str(NOTEBOOKS),
            execution_timeout=CELL_TIMEOUT_S,
            progress_bar=False,
        )
    except Exception as exc:  # noqa: BLE001 - reported with the failing cell
        pytest.fail(_failure_message(stem, executed, exc), pytrace=False)
    finally:
        TIMINGS[stem] = time.perf_counter() - start
        print(f"{stem}: {TIMINGS[stem]:.1f} s")
