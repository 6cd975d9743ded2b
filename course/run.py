"""Execute every lesson notebook in order against localcloud and record what each one did."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import papermill
from papermill.exceptions import PapermillExecutionError

from course import FAST_PARAMS, JOBS_FILE, NOTEBOOK_GLOB, NOTEBOOKS_DIR, ROOT, RUN_FILE
from course.jobs import JobSource, empty_jobs, localcloud_jobs, no_jobs, normalise

Echo = Callable[[str], None]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Warning)\b:?")


@dataclass
class Options:
    """What to run and where; the defaults are `make course`."""

    notebooks_dir: Path = NOTEBOOKS_DIR
    out_dir: Path = ROOT / "build"
    fast: bool = False
    params_file: Path = FAST_PARAMS
    kernel: str = "localcloud"
    use_localcloud: bool = True
    render_site: bool = True
    only: tuple[str, ...] = ()
    extra_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class NotebookResult:
    """One line of the run summary, also kept in build/run.json for the site."""

    stem: str
    wall_s: float
    jobs: int
    status: str
    executed: str
    error: str | None = None


@dataclass
class RunRecord:
    """Everything the site needs to know about a run besides the notebooks and the jobs table."""

    started: str
    fast: bool
    kernel: str
    notebooks: list[NotebookResult] = field(default_factory=list)
    total_s: float = 0.0
    status: str = "running"


def discover(notebooks_dir: Path) -> list[Path]:
    """The lessons, in the order the course teaches them."""
    return sorted(notebooks_dir.glob(NOTEBOOK_GLOB))


def parameters_for(stems: list[str], params_file: Path, fast: bool) -> dict[str, dict[str, Any]]:
    """Per-notebook parameters: none for the lesson run, the test values ('*' + own) for --fast."""
    if not fast:
        return {stem: {} for stem in stems}
    if not params_file.exists():
        raise FileNotFoundError(f"--fast needs the test parameters in {params_file}")
    table = json.loads(params_file.read_text())
    return {stem: {**table.get("*", {}), **table.get(stem, {})} for stem in stems}


def run_course(opts: Options, jobs: JobSource | None = None, echo: Echo = print) -> int:
    """Run the whole course; 0 when every notebook passed, 1 at the first failure."""
    notebooks = discover(opts.notebooks_dir)
    if opts.only:
        notebooks = [nb for nb in notebooks if nb.stem in opts.only]
    if not notebooks:
        echo(f"no notebooks matching {NOTEBOOK_GLOB} in {opts.notebooks_dir}")
        return 1
    params = parameters_for([nb.stem for nb in notebooks], opts.params_file, opts.fast)
    executed_dir = opts.out_dir / "notebooks"
    if executed_dir.exists():  # copies from an earlier run must not reach the site
        shutil.rmtree(executed_dir)
    executed_dir.mkdir(parents=True)
    started = datetime.now(timezone.utc)
    record = RunRecord(started=started.isoformat(), fast=opts.fast, kernel=opts.kernel)
    t0 = time.monotonic()
    with localcloud_running(opts.use_localcloud, echo):
        jobs = _remembering(jobs if jobs is not None else _job_source(opts, started, echo))
        for nb in notebooks:
            nb_params = {**params[nb.stem], **_declared(nb, opts.extra_params)}
            result = run_one(nb, executed_dir, opts, nb_params, jobs)
            record.notebooks.append(result)
            echo(summary_line(result))
            if result.status != "ok":
                echo(result.error or "")
                break
        record.total_s = time.monotonic() - t0
        record.status = "failed" if any(r.status != "ok" for r in record.notebooks) else "ok"
        table = _safe_jobs(jobs, echo)
    save_record(opts.out_dir, record, table)
    echo(f"{'total':<32}{record.total_s:7.1f} s  {len(table):3d} jobs  {record.status}")
    if record.status != "ok":
        echo("stopped at the first failing notebook; the site was not rendered")
        return 1
    if opts.render_site:
        from course.site import render_site

        index = render_site(opts.out_dir)
        echo(f"site: {index}")
    return 0


def _declared(nb: Path, params: dict[str, Any]) -> dict[str, Any]:
    """The run-wide parameters (e.g. live-check's max_run cap) this notebook declares."""
    if not params:
        return {}
    declared = papermill.inspect_notebook(str(nb))
    return {k: v for k, v in params.items() if k in declared}


def run_one(
    nb: Path, executed_dir: Path, opts: Options, params: dict[str, Any], jobs: JobSource
) -> NotebookResult:
    """Execute one notebook with its own progress bar and count the training jobs it started."""
    dst = executed_dir / nb.name
    rel = _relative(dst)
    t0 = time.monotonic()
    error = None
    try:
        papermill.execute_notebook(
            str(nb),
            str(dst),
            kernel_name=opts.kernel,
            parameters=params,
            cwd=str(opts.notebooks_dir),
            progress_bar={"desc": nb.stem, "leave": False, "dynamic_ncols": True},
        )
    except PapermillExecutionError as err:
        error = describe_failure(nb.stem, err, dst)
    except Exception as err:  # kernel died, no such kernel, ...: still a failing notebook
        error = f"FAILED {nb.stem}: {type(err).__name__}: {err}\n  executed copy: {rel}"
    wall = time.monotonic() - t0
    table = _safe_jobs(jobs, None)
    count = int((table["notebook"] == nb.stem).sum())
    status = "ok" if error is None else "FAILED"
    return NotebookResult(nb.stem, round(wall, 2), count, status, f"notebooks/{nb.name}", error)


def describe_failure(stem: str, err: PapermillExecutionError, executed: Path) -> str:
    """What a learner needs to fix a failing lesson: the cell, the error, the executed copy."""
    lines = str(err.source).splitlines()
    source = [f"    | {line}" for line in lines[:8]] + (["    | ..."] if len(lines) > 8 else [])
    trace = _ANSI.sub("", "\n".join(err.traceback)).strip().splitlines()
    if not trace or not err.evalue:  # e.g. a rich traceback shown as display data, not an error
        trace = _cell_output(executed, err.exec_count) or trace
    error = f"{err.ename}: {err.evalue}" if err.evalue else _last_exception(trace, err.ename)
    return "\n".join(
        [
            f"FAILED {stem}: cell {err.cell_index} (In [{err.exec_count}]) raised {error}",
            *source,
            "  output (last lines):",
            *[f"    {line}" for line in trace[-8:]],
            f"  executed copy: {_relative(executed)}",
        ]
    )


def _last_exception(trace: list[str], default: str) -> str:
    """The 'SomeError: message' line of a traceback that was printed rather than raised."""
    found = [line.strip() for line in trace if _EXCEPTION_LINE.match(line.strip())]
    return found[-1] if found else default


def _cell_output(executed: Path, exec_count: int | None) -> list[str]:
    """The text a failing cell printed, read back from the executed copy."""
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:
        return []
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("execution_count") == exec_count:
            text = []
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    text += out.traceback
                elif out.output_type == "stream":
                    text.append(out.text)
                else:
                    text.append(str(out.get("data", {}).get("text/plain", "")))
            return _ANSI.sub("", "\n".join(text)).strip().splitlines()
    return []


def summary_line(r: NotebookResult) -> str:
    """name, wall time, jobs run, status: one line per notebook."""
    return f"{r.stem:<32}{r.wall_s:7.1f} s  {r.jobs:3d} jobs  {r.status}"


def save_record(out_dir: Path, record: RunRecord, table: Any) -> None:
    """Keep the run summary and jobs table next to the executed notebooks for `course site`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RUN_FILE).write_text(json.dumps(asdict(record), indent=2))
    normalise(table).to_csv(out_dir / JOBS_FILE, index=False)


@contextmanager
def localcloud_running(enabled: bool, echo: Echo) -> Iterator[None]:
    """Start a fresh localcloud of the run's own (kernels inherit its LOCALCLOUD_HOME); stop it.

    Its temporary state folder means a server someone else started is never reused or stopped.
    """
    if not enabled:
        yield
        return
    saved = os.environ.get("LOCALCLOUD_HOME")
    with tempfile.TemporaryDirectory(prefix="localcloud-course-") as home:
        os.environ["LOCALCLOUD_HOME"] = home
        try:
            _localcloud("install-kernel")
            try:
                _localcloud("start")
                yield
            finally:
                done = _localcloud("stop", check=False)
                if done.returncode != 0:
                    echo(f"warning: `python -m localcloud stop` exited {done.returncode}:")
                    echo(done.stdout)
        finally:
            if saved is None:
                os.environ.pop("LOCALCLOUD_HOME", None)
            else:
                os.environ["LOCALCLOUD_HOME"] = saved


def _localcloud(command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a localcloud CLI command with this interpreter, from the repository root.

    Output goes to a file, not a pipe: a server that `start` leaves behind would hold a pipe open.
    """
    with tempfile.TemporaryFile("w+") as log:
        done = subprocess.run(
            [sys.executable, "-m", "localcloud", command],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        log.seek(0)
        done.stdout = log.read()
    if check and done.returncode != 0:
        raise RuntimeError(
            f"`python -m localcloud {command}` exited {done.returncode}:\n{done.stdout.strip()}"
        )
    return done


def _job_source(opts: Options, started: datetime, echo: Echo) -> JobSource:
    """Read jobs from localcloud when it runs; without it the run still runs, with no jobs table."""
    if not opts.use_localcloud:
        return no_jobs
    try:
        return localcloud_jobs(started)
    except Exception as err:
        echo(f"warning: cannot read training jobs from localcloud: {type(err).__name__}: {err}")
        return no_jobs


def _remembering(jobs: JobSource) -> JobSource:
    """The run's jobs so far, including those a later notebook deleted (08 cleans up its own)."""
    seen = empty_jobs()

    def table() -> pd.DataFrame:
        nonlocal seen
        now = normalise(jobs())
        both = now if seen.empty else pd.concat([seen, now], ignore_index=True)
        first = both.drop_duplicates("job_name", keep="first")["job_name"]  # the order they began
        latest = both.drop_duplicates("job_name", keep="last").set_index("job_name")
        seen = latest.loc[first].reset_index()[both.columns]
        return seen

    return table


def _safe_jobs(jobs: JobSource, echo: Echo | None) -> Any:
    """The jobs table, or an empty one if localcloud can't answer: notebooks decide the verdict."""
    try:
        return normalise(jobs())
    except Exception as err:
        if echo:
            echo(f"warning: could not read training jobs: {type(err).__name__}: {err}")
        return empty_jobs()


def _relative(path: Path) -> str:
    """Paths as the learner would type them from the repository root."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
