"""How long 00_setup's install cell takes on a stock notebook kernel, pip's cache cold and warm.

A fresh Python 3.10 venv stands in for `conda_python3`: pandas, numpy and scikit-learn are
installed first, outside the timing, as the kernel has them. Each timed run gets its own copy of
that venv and runs what the cell runs (`kernel_setup.ensure()` on the course's requirements.txt):

- cold: PIP_CACHE_DIR an empty folder, every wheel downloaded (the first run after a start: a
  stop resets the home folder's pip cache with the kernels);
- warm: the cache a cold run filled (a second kernel, or a rerun, on the same instance). Where
  pip's HTTP cache stays empty (a proxy that sends no caching headers, as on the machine this was
  written on) the warm case is stood in for by the same wheels in a local folder, with no index
  (PIP_NO_INDEX, PIP_FIND_LINKS): what a warm cache saves, downloads and index queries;
- all there: a copy already set up, so the cell does not call pip.

Needs the network (PyPI) for the cold runs.

    .venv/bin/python bench/bench_install_cell.py [--cold 1] [--warm 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON310 = "/root/.pyenv/versions/3.10.13/bin/python3.10"
# What a stock kernel already has (the lower ends of requirements.txt's ranges), untimed.
KERNEL_HAS = ["pandas~=2.2.0", "numpy~=1.26.0", "scikit-learn~=1.5.0"]
# This machine's pip settings add local wheel folders and indexes: set aside, so that every wheel
# comes from the index, as on a notebook instance.
PIP_ENV = {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
PIP_UNSET = ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_CACHE_DIR")
CELL = (
    f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
    "from helpers import kernel_setup; kernel_setup.ensure()"
)
CACHED_MB = 1.0  # a pip cache smaller than this after a cold run kept nothing


def pip_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PIP_UNSET}
    return {**env, **PIP_ENV, "PIP_CACHE_DIR": str(cache), **extra}


def pip(venv: Path, *args: str, env: dict[str, str]) -> str:
    command = [str(venv / "bin" / "python"), "-m", "pip", *args]
    return subprocess.run(command, check=True, env=env, capture_output=True, text=True).stdout


def make_kernel(python: str, where: Path, cache: Path) -> Path:
    """The stand-in kernel's venv, with the packages a stock kernel has."""
    subprocess.run([python, "-m", "venv", str(where)], check=True)
    env = pip_env(cache)
    pip(where, "install", "--quiet", "--upgrade", "pip", env=env)  # a kept-up kernel's pip
    pip(where, "install", "--quiet", *KERNEL_HAS, env=env)
    return where


def run_cell(venv: Path, env: dict[str, str]) -> tuple[float, str]:
    """Seconds the cell takes in `venv` (interpreter start included) and what it printed."""
    start = time.monotonic()
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CELL], env=env, capture_output=True, text=True
    )
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"the cell failed:\n{done.stdout}{done.stderr}")
    return seconds, done.stdout


def wheelhouse(template: Path, installed: Path, where: Path, cache: Path) -> Path:
    """The wheels the cell installed into `installed`, downloaded again into `where` (untimed)."""
    before = set(pip(template, "freeze", env=pip_env(cache)).split())
    added = [line for line in pip(installed, "freeze", env=pip_env(cache)).split() if line]
    pins = [line for line in added if line not in before]
    pip(template, "download", "--quiet", "--no-deps", "-d", str(where), *pins, env=pip_env(cache))
    return where


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=1, help="runs with an empty pip cache")
    parser.add_argument("--warm", type=int, default=3, help="runs with the cache a cold run left")
    parser.add_argument("--python", default=PYTHON310)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-install-cell-") as scratch:
        tmp = Path(scratch)
        built = time.monotonic()
        template = make_kernel(args.python, tmp / "template", tmp / "kernel-cache")
        print(f"stand-in kernel: {args.python}, with {' '.join(KERNEL_HAS)}")
        print(f"  (made in {time.monotonic() - built:.0f} s, untimed)")

        def copy(name: str) -> Path:
            return Path(shutil.copytree(template, tmp / name, symlinks=True))

        cold, warm = [], []
        for i in range(max(args.cold, 1)):
            seconds, out = run_cell(copy(f"cold-{i}"), pip_env(tmp / f"cache-{i}"))
            cold.append(seconds)
        print(out.rstrip())
        cache = tmp / "cache-0"
        cached = folder_mb(cache)
        warm_env = pip_env(cache)
        if cached < CACHED_MB:
            wheels = wheelhouse(template, tmp / "cold-0", tmp / "wheels", tmp / "kernel-cache")
            downloaded = folder_mb(wheels)
            warm_env = pip_env(cache, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels))
            warm_how = f"pip's cache kept {cached:.1f} MB: warm = local wheels, no index"
        else:
            downloaded, warm_how = cached, "pip's own cache"
        for i in range(args.warm):
            warm.append(run_cell(copy(f"warm-{i}"), warm_env)[0])
        done, out = run_cell(tmp / "cold-0", warm_env)  # everything there: no pip
        print(out.rstrip())

    print()
    figures = [("cold cache", cold), ("warm cache", warm), ("all there", [done])]
    for label, runs in figures:
        if runs:
            each = ", ".join(f"{s:.1f}" for s in runs)
            print(f"{label:<11} median {statistics.median(runs):5.1f} s  of {len(runs)}: {each}")
    print(f"wheels the cell downloads: {downloaded:.0f} MB; warm: {warm_how}")


if __name__ == "__main__":
    main()
