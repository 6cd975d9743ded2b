"""Re-execute the committed notebooks in a fresh localcloud so their outputs never drift.

`python -m course refresh [STEM ...]` (or `make notebooks`) runs the given lessons, or all, with the
lesson's default parameters, in place. Lessons read the data 00_setup puts in S3, so 00_setup always
runs first; it is only rewritten when it was asked for.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
from nbconvert.preprocessors import CoalesceStreamsPreprocessor

from course import NOTEBOOKS_DIR
from course.run import Echo, discover, localcloud_running

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What gets committed: streams merged, no run metadata, the learner's kernel name."""
    nb, _ = CoalesceStreamsPreprocessor(enabled=True).preprocess(nb, {})
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # the state of the SDK's live wait panel, colour codes
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _live_panel(o)]
    return nb


def _live_panel(output: nbformat.NotebookNode) -> bool:
    """What SDK v3's TrainingJob.wait leaves: its transient panel's widget and an empty <pre>."""
    if output.get("output_type") != "display_data":
        return False
    data = output.get("data", {})
    if "application/vnd.jupyter.widget-view+json" in data:
        return True
    html = "".join(data.get("text/html", ""))
    return set(data) <= {"text/html", "text/plain"} and re.fullmatch(
        r"<pre[^>]*>\s*</pre>\s*", html
    )


def refresh(stems: list[str] | None = None, echo: Echo = print) -> int:
    """Execute the lessons in place; 0 when all ran, 1 at the first failure (nothing rewritten)."""
    notebooks = discover(NOTEBOOKS_DIR)
    wanted = set(stems or [nb.stem for nb in notebooks])
    unknown = wanted - {nb.stem for nb in notebooks}
    if unknown:
        echo(f"no such lesson: {', '.join(sorted(unknown))}")
        return 2
    to_run = [nb for nb in notebooks if nb.stem in wanted or nb.stem == notebooks[0].stem]
    with (
        tempfile.TemporaryDirectory(prefix="course-refresh-") as scratch,
        localcloud_running(True, echo),
    ):
        for nb in to_run:
            start = time.monotonic()
            out = Path(scratch) / nb.name
            try:
                papermill.execute_notebook(
                    str(nb),
                    str(out),
                    kernel_name="localcloud",
                    cwd=str(NOTEBOOKS_DIR),
                    progress_bar=False,
                )
            except papermill.PapermillExecutionError as err:
                echo(f"FAILED {nb.stem}: {err.ename}: {err.evalue}")
                return 1
            if nb.stem in wanted:
                nbformat.write(tidy(nbformat.read(out, as_version=4)), nb)
            echo(f"{nb.stem:<32}{time.monotonic() - start:7.1f} s  ok")
    return 0
