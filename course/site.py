"""Render an executed course run (build/) as a static site a learner can read offline."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import nbformat
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure
from nbconvert import HTMLExporter
from nbconvert.preprocessors import CoalesceStreamsPreprocessor

from course import COURSE_TITLE, JOBS_FILE, RUN_FILE, TEMPLATES_DIR
from course.jobs import empty_jobs, normalise
from course.outline import Lesson, header_markdown, parse_header
from helpers.AWS_helpers import plot_jobs

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_EMPH = re.compile(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])")


def render_site(out_dir: Path) -> Path:
    """Write out_dir/site from out_dir/notebooks, run.json and jobs.csv; return the index path."""
    site = out_dir / "site"
    if site.exists():
        shutil.rmtree(site)
    (site / "notebooks").mkdir(parents=True)
    run = load_run(out_dir)
    jobs = load_jobs(out_dir)
    results = {r["stem"]: r for r in (run or {}).get("notebooks", [])}
    lessons = []
    for path in sorted((out_dir / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        lesson = parse_header(path.stem, header_markdown(nb))
        (site / "notebooks" / f"{path.stem}.html").write_text(notebook_html(nb, lesson))
        lessons.append({**asdict(lesson), "result": results.get(path.stem)})
    env = _environment()
    common = {
        "course_title": COURSE_TITLE,
        "rendered": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "run_label": _run_label(run),
    }
    pages = {lesson["stem"] for lesson in lessons}
    (site / "index.html").write_text(
        env.get_template("index.html.j2").render(
            root="", lessons=lessons, run=run, jobs_count=len(jobs), **common
        )
    )
    (site / "results.html").write_text(
        env.get_template("results.html.j2").render(
            root="",
            jobs=jobs.to_dict("records"),
            configs=per_config(jobs).to_dict("records"),
            pages=pages,
            **common,
        )
    )
    chart(jobs, site / "results.png")
    shutil.copy(TEMPLATES_DIR / "style.css", site / "style.css")
    return site / "index.html"


def load_run(out_dir: Path) -> dict[str, Any] | None:
    """The run summary if a run wrote one (a site can also be made from notebooks alone)."""
    path = out_dir / RUN_FILE
    return json.loads(path.read_text()) if path.exists() else None


def load_jobs(out_dir: Path) -> pd.DataFrame:
    """The jobs table the run saved, or an empty one."""
    path = out_dir / JOBS_FILE
    return normalise(pd.read_csv(path)) if path.exists() else empty_jobs()


def per_config(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per instance type × count: how many jobs, mean times, total cost, mean accuracy."""
    if jobs.empty:
        return pd.DataFrame(
            columns=["config", "jobs", "wall_seconds", "billable_seconds", "cost_usd"]
            + ["test_accuracy"]
        )
    grouped = jobs.groupby("config", sort=True)
    return pd.DataFrame(
        {
            "jobs": grouped.size(),
            "wall_seconds": grouped["wall_seconds"].mean(),
            "billable_seconds": grouped["billable_seconds"].mean(),
            "cost_usd": grouped["cost_usd"].sum(min_count=1),
            "test_accuracy": grouped["test_accuracy"].mean(),
        }
    ).reset_index()


def chart(jobs: pd.DataFrame, dest: Path) -> None:
    """The lessons' own chart (helpers.plot_jobs) of time and cost per configuration, as a PNG."""
    if jobs.empty:
        fig = Figure(figsize=(8, 2))
        fig.text(0.5, 0.5, "No training jobs were run", ha="center", va="center", fontsize=14)
    else:
        fig = plot_jobs(jobs)
    fig.savefig(dest, dpi=100)


def notebook_html(nb: nbformat.NotebookNode, lesson: Lesson) -> str:
    """One executed notebook as a page with no CDN scripts, so it renders without a network."""
    exporter = HTMLExporter(
        template_name="lab",
        template_file="lesson.html.j2",
        extra_template_paths=[str(TEMPLATES_DIR / "nbconvert")],
    )
    nb, _ = CoalesceStreamsPreprocessor(enabled=True).preprocess(nbformat.from_dict(nb), {})
    nb.metadata["title"] = lesson.title
    body, _ = exporter.from_notebook_node(nb)
    return body


def _environment() -> jinja2.Environment:
    """Jinja with autoescaping and the few formatting filters the pages use."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["seconds"] = _seconds
    env.filters["inline_md"] = inline_md
    return env


def inline_md(text: str) -> Markup:
    """The inline markdown lesson headers use in list items: `code`, **bold**, *emphasis*."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    return Markup(_EMPH.sub(r"<em>\1</em>", out))


def _num(value: Any, digits: int) -> str:
    """A number for a table cell; a dash for missing values."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(number) else f"{number:,.{digits}f}"


def _seconds(value: Any) -> str:
    """'95.3 s' or '3 min 12 s': how long something took, as a person would say it."""
    total = float(value)
    if total < 120:
        return f"{total:.1f} s"
    return f"{int(total // 60)} min {int(total % 60)} s"


def _run_label(run: dict[str, Any] | None) -> str:
    """The footer's note of which run a page shows."""
    if run is None:
        return "executed notebooks"
    kind = "test parameters" if run.get("fast") else "lesson parameters"
    return f"the run started {run.get('started', '?')[:19]} ({kind}, kernel {run.get('kernel')})"
