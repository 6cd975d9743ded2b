"""`python -m course`: outline extraction, results page, link integrity, parameters, failures."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest
from papermill.exceptions import PapermillExecutionError

import course
from course import run as course_run
from course import site as course_site
from course.__main__ import main
from course.jobs import COLUMNS, NUMERIC, normalise
from course.outline import header_markdown, parse_header
from course.run import describe_failure, parameters_for
from course.site import inline_md, render_site
from helpers import AWS_helpers as helpers

HEADER = """# Training XGBoost on SageMaker

Teaching: 20 min
Exercises: 10 min

## Questions
- How do I start a **training job**?
- What does `fit()` cost?

## Objectives
1. Launch a job with the `XGBoost` estimator.
2. Read its billable seconds.

## Setup
- not an objective
"""


def notebook(header: str, *code: str) -> nbformat.NotebookNode:
    """A small notebook: one markdown header, then code cells."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(header)]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in code]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    return nb


def fake_run(out: Path, jobs: pd.DataFrame | None = None) -> None:
    """What `course run` leaves in build/: executed notebooks, run.json, jobs.csv."""
    (out / "notebooks").mkdir(parents=True)
    nbformat.write(notebook(HEADER, "1 + 1"), out / "notebooks" / "00_train.ipynb")
    nbformat.write(
        notebook("# Clean up\n\n**Objectives:**\n- Delete it all.\n", "2"),
        out / "notebooks" / "01_clean_up.ipynb",
    )
    results = [
        {
            "stem": "00_train",
            "wall_s": 3.2,
            "jobs": 2,
            "status": "ok",
            "executed": "notebooks/00_train.ipynb",
            "error": None,
        },
        {
            "stem": "01_clean_up",
            "wall_s": 1.0,
            "jobs": 0,
            "status": "ok",
            "executed": "notebooks/01_clean_up.ipynb",
            "error": None,
        },
    ]
    record = {
        "started": "2025-01-01T00:00:00+00:00",
        "fast": False,
        "kernel": "localcloud",
        "notebooks": results,
        "total_s": 4.2,
        "status": "ok",
    }
    (out / "run.json").write_text(json.dumps(record))
    if jobs is not None:
        normalise(jobs).to_csv(out / "jobs.csv", index=False)


def jobs_table() -> pd.DataFrame:
    """Two configurations, one job without a cost or an accuracy yet."""
    return pd.DataFrame(
        {
            "job_name": ["xgb-a", "xgb-b", "xgb-c"],
            "notebook": ["00_train", "00_train", "99_elsewhere"],
            "instance_type": ["ml.m5.large", "ml.m5.large", "ml.m5.xlarge"],
            "instance_count": [1, 1, 2],
            "config": ["ml.m5.large × 1", "ml.m5.large × 1", "ml.m5.xlarge × 2"],
            "status": ["Completed", "Completed", "Failed"],
            "wall_seconds": [45.0, 55.0, 20.0],
            "training_seconds": [30.0, 50.0, 12.0],
            "billable_seconds": [30, 50, 12],
            "billed_instance_seconds": [30, 50, 24],
            "cost_usd": [0.00096, 0.0016, None],
            "test_accuracy": [0.8, 0.82, None],
        }
    )


class Links(HTMLParser):
    """Every href and src in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.urls.append((tag, value))


def links_of(page: Path) -> list[tuple[str, str]]:
    """(tag, url) of every link and resource a page refers to."""
    parser = Links()
    parser.feed(page.read_text())
    return parser.urls


def test_outline_from_header_cells() -> None:
    lesson = parse_header("03_train", HEADER)
    assert lesson.title == "Training XGBoost on SageMaker"
    assert lesson.questions == ["How do I start a **training job**?", "What does `fit()` cost?"]
    assert lesson.objectives == [
        "Launch a job with the `XGBoost` estimator.",
        "Read its billable seconds.",
    ]
    assert (lesson.teaching_min, lesson.exercises_min) == (20, 10)


def test_outline_bold_labels_and_default_title() -> None:
    lesson = parse_header("08_monitor_and_clean_up", "**Questions:**\n* Is anything running?\n")
    assert lesson.title == "Monitor and clean up"
    assert lesson.questions == ["Is anything running?"]
    assert lesson.objectives == [] and lesson.teaching_min is None


def test_header_stops_at_first_code_cell() -> None:
    nb = notebook("# Title", "x = 1")
    nb.cells.append(nbformat.v4.new_markdown_cell("## Objectives\n- not in the header"))
    assert parse_header("00_x", header_markdown(nb)).objectives == []


def test_inline_markdown_is_escaped() -> None:
    assert str(inline_md("use `<b>` **now**")) == "use <code>&lt;b&gt;</code> <strong>now</strong>"
    assert str(inline_md("data *channels* and 2 * 3 * 4")) == "data <em>channels</em> and 2 * 3 * 4"


def test_index_lists_lessons_with_objectives(tmp_path: Path) -> None:
    fake_run(tmp_path, jobs_table())
    index = render_site(tmp_path).read_text()
    assert 'href="notebooks/00_train.html">Training XGBoost on SageMaker</a>' in index
    assert "teaching 20 min" in index and "exercises 10 min" in index
    assert "<code>XGBoost</code>" in index and "Delete it all." in index
    assert index.index("00_train.html") < index.index("01_clean_up.html")


def test_results_table_and_chart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    charted: list[pd.DataFrame] = []

    def plot_jobs(df: pd.DataFrame) -> object:
        charted.append(df)
        return helpers.plot_jobs(df)

    monkeypatch.setattr(course_site, "plot_jobs", plot_jobs)
    fake_run(tmp_path, jobs_table())
    site = render_site(tmp_path).parent
    page = (site / "results.html").read_text()
    jobs = page[page.index('id="jobs"') :]
    assert jobs.count("<tr>") == 4  # header + 3 jobs
    assert '<a href="notebooks/00_train.html">00_train</a>' in jobs
    assert "99_elsewhere" in jobs and "notebooks/99_elsewhere.html" not in jobs
    assert "0.0016" in jobs and "—" in jobs  # missing cost and accuracy show as a dash
    configs = page[page.index('id="configs"') : page.index('id="jobs"')]
    large = r"ml.m5.large × 1</td><td class=\"num\">2</td>\s*<td class=\"num\">50.0</td>"
    assert re.search(large + r'<td class="num">40.0</td>', configs)  # mean wall 50, billable 40
    assert re.search(r'<td class="num">45.0</td><td class="num">30</td>', jobs)  # wall, billable
    assert (site / "results.png").read_bytes().startswith(b"\x89PNG")
    assert len(charted) == 1 and list(charted[0].job_name) == ["xgb-a", "xgb-b", "xgb-c"]


def test_jobs_table_has_the_helpers_columns() -> None:
    assert COLUMNS[: len(helpers.SUMMARY_COLUMNS)] == helpers.SUMMARY_COLUMNS
    assert "wall_seconds" in NUMERIC
    assert not hasattr(course, "COURSE_TAG")  # one course tag: helpers.COURSE_TAG


def test_results_without_jobs(tmp_path: Path) -> None:
    fake_run(tmp_path)
    site = render_site(tmp_path).parent
    assert "No training jobs were run." in (site / "results.html").read_text()
    assert (site / "results.png").stat().st_size > 0


def test_every_link_resolves_and_nothing_is_remote(tmp_path: Path) -> None:
    fake_run(tmp_path, jobs_table())
    site = render_site(tmp_path).parent
    pages = sorted(site.rglob("*.html"))
    assert {p.relative_to(site).as_posix() for p in pages} == {
        "index.html",
        "results.html",
        "notebooks/00_train.html",
        "notebooks/01_clean_up.html",
    }
    for page in pages:
        urls = links_of(page)
        targets = set()
        for tag, url in urls:
            assert not url.startswith(("http:", "https:", "//")), f"{page.name}: {tag} {url}"
            path = url.split("#", 1)[0]
            if path and not url.startswith("data:"):
                target = (page.parent / path).resolve()
                assert target.is_file(), f"{page.name} -> {url} is missing"
                targets.add(target)
        assert site / "index.html" in targets, f"{page.name} has no link back to the index"
        assert "<script src=" not in page.read_text()


def test_fast_parameters_merge_star_and_own(tmp_path: Path) -> None:
    params = tmp_path / "notebook_params.json"
    params.write_text(json.dumps({"*": {"fast": True, "n": 1}, "01_b": {"n": 2}}))
    assert parameters_for(["00_a", "01_b"], params, fast=True) == {
        "00_a": {"fast": True, "n": 1},
        "01_b": {"fast": True, "n": 2},
    }
    assert parameters_for(["00_a"], params, fast=False) == {"00_a": {}}
    with pytest.raises(FileNotFoundError):
        parameters_for(["00_a"], tmp_path / "missing.json", fast=True)


def test_localcloud_is_stopped_even_when_the_run_breaks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[str] = []
    homes: list[str] = []
    shared = str(tmp_path / ".localcloud")  # a server someone else started there stays up
    monkeypatch.setenv("LOCALCLOUD_HOME", shared)

    def fake_localcloud(command: str, check: bool = True) -> SimpleNamespace:
        calls.append(command)
        homes.append(os.environ["LOCALCLOUD_HOME"])
        assert Path(homes[-1]).is_dir()
        return SimpleNamespace(returncode=0, stdout="")

    monkeypatch.setattr(course_run, "_localcloud", fake_localcloud)
    with pytest.raises(KeyboardInterrupt), course_run.localcloud_running(True, print):
        assert os.environ["LOCALCLOUD_HOME"] == homes[0]  # the kernels inherit the run's own
        raise KeyboardInterrupt
    assert calls == ["install-kernel", "start", "stop"]
    assert len(set(homes)) == 1 and homes[0] != shared
    assert not Path(homes[0]).exists() and os.environ["LOCALCLOUD_HOME"] == shared


def test_failing_notebook_stops_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(notebook("# Fine", "print('ok')"), src / "00_fine.ipynb")
    nbformat.write(
        notebook("# Broken", "x = 1", "raise ValueError('no bucket')"), src / "01_broken.ipynb"
    )
    nbformat.write(notebook("# Never", "print('never')"), src / "02_never.ipynb")
    out = tmp_path / "build"
    (out / "notebooks").mkdir(parents=True)
    nbformat.write(notebook("# Stale", "1"), out / "notebooks" / "02_never.ipynb")
    (out / "keep.txt").write_text("not the run's to clear")
    argv = [
        "run",
        "--notebooks",
        str(src),
        "--out",
        str(out),
        "--kernel",
        "python3",
        "--no-localcloud",
    ]
    assert main(argv) == 1
    said = capsys.readouterr().out
    assert re.search(r"00_fine\s+\d+\.\d s\s+0 jobs\s+ok", said)
    assert "FAILED 01_broken: cell 2 (In [2]) raised ValueError: no bucket" in said
    assert "| raise ValueError('no bucket')" in said
    executed = out / "notebooks" / "01_broken.ipynb"
    assert f"executed copy: {executed}" in said
    assert "no bucket" in executed.read_text()
    assert not (out / "notebooks" / "02_never.ipynb").exists()  # a stale copy is cleared
    assert (out / "keep.txt").exists()
    assert not (out / "site").exists()
    record = json.loads((out / "run.json").read_text())
    assert [r["status"] for r in record["notebooks"]] == ["ok", "FAILED"]


def test_failure_shown_as_display_data_is_still_reported(tmp_path: Path) -> None:
    """sagemaker installs rich tracebacks: the error arrives as display data, not an error."""
    nb = notebook("# Rich", "subprocess.run(cmd, check=True)")
    nb.cells[1].execution_count = 4
    text = "╰──╯\nCalledProcessError: Command '['train.py']' returned non-zero exit status 2.\n"
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": text})]
    executed = tmp_path / "02_rich.ipynb"
    nbformat.write(nb, executed)
    err = PapermillExecutionError(1, 4, nb.cells[1].source, "CellExecutionError", "", [])
    said = describe_failure("02_rich", err, executed)
    assert said.startswith("FAILED 02_rich: cell 1 (In [4]) raised CalledProcessError: Command")
    assert "| subprocess.run(cmd, check=True)" in said
    assert said.endswith(f"executed copy: {executed}")


def test_refresh_tidy_merges_streams_and_restores_the_kernel_name() -> None:
    import nbformat

    from course.refresh import tidy

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('.')")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=t) for t in (".", ".", "\n")
    ]
    cell.metadata["papermill"] = {"duration": 1.0}
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "localcloud", "display_name": "Python 3 (localcloud)"}
    nb.metadata["papermill"] = {"parameters": {}}
    tidy(nb)
    assert [o.text for o in nb.cells[0].outputs] == ["..\n"]
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "papermill" not in nb.metadata and "papermill" not in nb.cells[0].metadata


def test_refresh_tidy_drops_the_sdks_live_wait_panel_and_keeps_real_output() -> None:
    import nbformat

    from course.refresh import tidy

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("trainer.train()")
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "Out"}
    cell.outputs = [
        nbformat.v4.new_output("display_data", data=widget),
        nbformat.v4.new_output("display_data", data={"text/html": "<pre style='x'>\n</pre>\n"}),
        nbformat.v4.new_output("display_data", data={"text/html": "<pre>a table</pre>"}),
        nbformat.v4.new_output("stream", name="stdout", text="job done\n"),
    ]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"state": "\x1b[34mpanel\x1b[0m"}
    tidy(nb)
    kept = nb.cells[0].outputs
    assert [o.output_type for o in kept] == ["display_data", "stream"]
    assert kept[0].data["text/html"] == "<pre>a table</pre>"  # real output stays
    assert "widgets" not in nb.metadata


def test_every_notebook_hides_its_solutions_and_shows_no_noise() -> None:
    import re

    import nbformat

    for path in sorted(
        (Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb")
    ):
        nb = nbformat.read(path, as_version=4)
        solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
        assert solutions, f"{path.name}: an exercise needs a solution cell"
        for cell in solutions:
            assert cell.metadata.get("jupyter", {}).get("source_hidden"), path.name
        assert "widgets" not in nb.metadata, path.name
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                text = "".join(output.get("text", "")) + "".join(
                    output.get("data", {}).get("text/plain", "")
                )
                assert "\x1b[" not in text, f"{path.name}: colour codes"
                assert not re.search(
                    r"(?<![\w.])/(?:work|root|home|tmp)/|sagemaker\.config INFO|telemetry",
                    text,
                    re.IGNORECASE,
                ), f"{path.name}: {text[:120]}"
                for line in text.splitlines():  # a table row: two or more aligned column gaps
                    if len(re.findall(r"\S {2,}\S", line)) >= 2:
                        assert len(line) <= 100, f"{path.name}: a table wider than the page"


def test_the_runs_jobs_table_keeps_jobs_a_later_notebook_deleted() -> None:
    from course.run import _remembering

    full = jobs_table()
    calls = iter([full.iloc[:2], full.iloc[[1, 2]].assign(status="Stopped"), full.iloc[[2]]])
    table = _remembering(lambda: next(calls))
    assert list(table().job_name) == ["xgb-a", "xgb-b"]
    second = table()  # xgb-a was deleted (08 cleans up); xgb-b changed status
    assert list(second.job_name) == ["xgb-a", "xgb-b", "xgb-c"]
    assert list(second.status) == ["Completed", "Stopped", "Stopped"]
    assert list(table().job_name) == ["xgb-a", "xgb-b", "xgb-c"]  # positive: nothing lost
