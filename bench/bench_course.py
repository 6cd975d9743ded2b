"""Time `make course` (after setup) against its 4-minute target, notebook by notebook.

Usage: .venv/bin/python bench/bench_course.py [--repeat N] [--cmd "make course"] [--target 240]
Per-notebook times come from build/run.json, which `python -m course run` writes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(cmd: str, run_file: Path) -> tuple[float, dict[str, float], dict[str, int]]:
    """Run the command once, streaming its output; return its wall time and the run's record."""
    run_file.unlink(missing_ok=True)
    t0 = time.monotonic()
    done = subprocess.run(shlex.split(cmd), cwd=ROOT)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        sys.exit(f"`{cmd}` exited {done.returncode} after {wall:.1f} s")
    record = json.loads(run_file.read_text())
    times = {r["stem"]: r["wall_s"] for r in record["notebooks"]}
    jobs = {r["stem"]: r["jobs"] for r in record["notebooks"]}
    return wall, times, jobs


def report(
    walls: list[float], times: list[dict[str, float]], jobs: dict[str, int], target: float, cmd: str
) -> str:
    """Per-notebook mean (min-max) seconds, the total, and how it compares with the target."""
    lines = [f"{'notebook':<32}{'mean s':>8}{'min s':>8}{'max s':>8}{'jobs':>6}"]
    for stem in times[0]:
        values = [t[stem] for t in times if stem in t]
        lines.append(
            f"{stem:<32}{statistics.mean(values):8.1f}{min(values):8.1f}{max(values):8.1f}"
            f"{jobs.get(stem, 0):6d}"
        )
    notebooks = statistics.mean(sum(t.values()) for t in times)
    wall = statistics.mean(walls)
    lines += [
        f"{'notebooks total':<32}{notebooks:8.1f}",
        f"{'command wall':<32}{wall:8.1f}{min(walls):8.1f}{max(walls):8.1f}",
        f"target {target:.0f} s: ratio {wall / target:.2f} "
        f"({'within' if wall <= target else 'OVER'} target, {len(walls)} run(s))",
    ]
    return "\n".join(lines)


def main() -> int:
    """Parse arguments, run the benchmark, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs to average (default 1)")
    parser.add_argument("--cmd", default="make course", help="command to time")
    parser.add_argument("--target", type=float, default=240.0, help="target seconds (240)")
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="the run's output folder")
    args = parser.parse_args()
    walls, times, jobs = [], [], {}
    for i in range(args.repeat):
        print(f"--- run {i + 1}/{args.repeat}: {args.cmd}", flush=True)
        wall, per_notebook, jobs = run_once(args.cmd, args.out / "run.json")
        walls.append(wall)
        times.append(per_notebook)
    print(report(walls, times, jobs, args.target, args.cmd))
    return 0 if statistics.mean(walls) <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
