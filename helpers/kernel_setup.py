"""Gives a stock notebook kernel the course's SDK and xgboost in one cell: seconds when cached.

`ensure()` reads the course's lines for those projects from requirements.txt, leaves what the
kernel already has in range alone, and pip-installs only the rest into the running interpreter.
It imports nothing but the standard library at import time: it runs before anything is installed.

`python -m helpers.kernel_setup --lines` prints the selected lines for the notebook-instance
lifecycle scripts, so they install the same lines as the cell (lifecycle/README.md).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
COURSE_PROJECTS = ("sagemaker", "xgboost-cpu")
# Projects whose distributions install the same module: one must never be installed over another.
SAME_MODULE = (frozenset({"xgboost", "xgboost-cpu"}),)
# The PyTorch kernel has its own build; a pip one is a multi-GB CUDA download.
NEVER = frozenset({"torch", "torchvision", "torchaudio"})
MODULES = {"xgboost-cpu": "xgboost"}  # projects whose top module is not their name
PIP_TAIL = 20  # lines of pip's output shown when it fails


@dataclass(frozen=True)
class Wanted:
    """One requirements.txt line the kernel must satisfy."""

    line: str  # as written, without its comment
    name: str  # canonical project name
    requirement: Any  # packaging.requirements.Requirement


@dataclass(frozen=True)
class Setup:
    """What `ensure` found and did, for the notebook's tests."""

    present: tuple[tuple[str, str], ...]  # (project, version) already in range
    installed: tuple[tuple[str, str], ...]  # (project, version) after pip
    pip_args: tuple[str, ...]  # the requirements given to pip; empty when pip did not run
    restart: bool  # an old version of something installed now was already imported
    seconds: float


def canonical(name: str) -> str:
    """PEP 503 form of a project name, to compare names as pip does."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _packaging() -> tuple[Any, Any, Any]:
    """(Requirement, Version, InvalidVersion): packaging if importable, else pip's vendored copy."""
    try:
        from packaging.requirements import Requirement
        from packaging.version import InvalidVersion, Version
    except ImportError:
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.version import InvalidVersion, Version
    return Requirement, Version, InvalidVersion


def _family(name: str) -> frozenset[str]:
    return next((group for group in SAME_MODULE if name in group), frozenset({name}))


def read_wanted(requirements: str | os.PathLike[str], only: tuple[str, ...]) -> list[Wanted]:
    """The lines of `requirements` for the projects in `only` that apply to this Python."""
    asked = [canonical(name) for name in only]
    refused = sorted(set(asked) & NEVER)
    if refused:
        raise ValueError(
            f"{', '.join(refused)}: not installed from here; the PyTorch kernel "
            "(conda_pytorch) has its own build, and pip's is a multi-GB CUDA download"
        )
    Requirement, _, _ = _packaging()
    file = Path(requirements)
    found: dict[str, Wanted] = {}
    for number, raw in enumerate(file.read_text().splitlines(), start=1):
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()
        if not line or line.startswith("-"):  # blank, comment, or a pip option such as -c
            continue
        try:
            requirement = Requirement(line)
        except Exception as err:  # packaging's InvalidRequirement, vendored or not
            raise ValueError(f"{file.name} line {number}: cannot read {line!r}: {err}") from None
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonical(requirement.name)
        if not any(name in _family(wanted) for wanted in asked):
            continue
        if name in found:
            raise ValueError(f"{file.name} line {number}: {name} is named twice")
        found[name] = Wanted(line, name, requirement)
    missing = [name for name in asked if not _family(name) & set(found)]
    if missing:
        raise ValueError(f"{file.name} has no line for {', '.join(missing)}")
    return list(found.values())


def installed(name: str) -> tuple[str, str] | None:
    """(project, version) of the distribution Python imports `name`'s module from, or None."""
    family = sorted(_family(name))
    for entry in sys.path:
        for member in family:
            for dist in importlib.metadata.distributions(name=member, path=[entry]):
                return canonical(dist.metadata["Name"] or member), dist.version
    return None


def _satisfies(wanted: Wanted, version: str) -> bool:
    _, Version, InvalidVersion = _packaging()
    try:
        return wanted.requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _pip_arg(wanted: Wanted, have: tuple[str, str] | None) -> str:
    """The line as written, or, when another project of the same module is there, that one's."""
    if have is None or have[0] == wanted.name:
        return wanted.line
    extras = f"[{','.join(sorted(wanted.requirement.extras))}]" if wanted.requirement.extras else ""
    return f"{have[0]}{extras}{wanted.requirement.specifier}"


def _imported(name: str) -> tuple[bool, str | None]:
    """Whether this kernel imported `name`'s module already, and the version it says it is."""
    module = sys.modules.get(MODULES.get(name, name.replace("-", "_")))
    version = getattr(module, "__version__", None)
    return module is not None, version if isinstance(version, str) else None


def _run_pip(args: list[str]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-input"]
    command += ["--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-PIP_TAIL:]
        print("\n".join(f"  pip: {line}" for line in tail))
        raise RuntimeError(
            f"pip could not install {' '.join(args)} (exit {done.returncode}): see its lines above"
        )
    for line in done.stderr.strip().splitlines():  # warnings, such as dependency conflicts
        print(f"  pip: {line}")


def ensure(
    requirements: str | os.PathLike[str] | None = None,
    only: tuple[str, ...] = COURSE_PROJECTS,
) -> Setup:
    """Install what this kernel lacks of the course's lines for `only`; pip only when needed."""
    start = time.monotonic()
    wanted = read_wanted(requirements or REQUIREMENTS, only)
    print("Course packages for this kernel (from requirements.txt):")
    present, to_install, stale = [], [], []
    for item in wanted:
        have = installed(item.name)
        if have is not None and _satisfies(item, have[1]):
            present.append(have)
            print(f"  already there  {have[0]} {have[1]}")
            loaded, version = _imported(item.name)
            if loaded and version not in (None, have[1]):  # installed by another process since
                stale.append((have[0], version))
            continue
        arg = _pip_arg(item, have)
        to_install.append((item, arg))
        print(f"  to install     {arg}" + (f" (this kernel has {have[1]})" if have else ""))
        loaded, version = _imported(item.name)
        if loaded and have is not None:
            stale.append((have[0], version or have[1]))
    now: list[tuple[str, str]] = []
    if to_install:
        _run_pip([arg for _, arg in to_install])
        importlib.invalidate_caches()
        for item, _ in to_install:
            have = installed(item.name)
            if have is None:
                raise RuntimeError(f"pip ran, yet no {item.name} is installed for this Python")
            now.append(have)
            print(f"  installed      {have[0]} {have[1]}")
    seconds = time.monotonic() - start
    if to_install:
        names = ", ".join(project for project, _ in now)
        print(f"Installed {names} (and what they need) in {seconds:.1f} s.")
    else:
        print(f"Nothing to install ({seconds:.1f} s).")
    for project, version in stale:
        print(f"{project} {version} was imported before: restart the kernel, then run this again.")
    return Setup(
        present=tuple(present),
        installed=tuple(now),
        pip_args=tuple(arg for _, arg in to_install),
        restart=bool(stale),
        seconds=seconds,
    )


def main(argv: list[str] | None = None) -> int:
    """`--lines`: print the selected lines (the lifecycle scripts); else run `ensure`."""
    parser = argparse.ArgumentParser(prog="python -m helpers.kernel_setup", description=__doc__)
    parser.add_argument("--requirements", default=str(REQUIREMENTS))
    parser.add_argument("--only", nargs="+", default=list(COURSE_PROJECTS), metavar="PROJECT")
    parser.add_argument("--lines", action="store_true", help="print the lines, install nothing")
    args = parser.parse_args(argv)
    try:
        if args.lines:
            for item in read_wanted(args.requirements, tuple(args.only)):
                print(item.line)
        else:
            ensure(args.requirements, tuple(args.only))
    except (ValueError, RuntimeError, OSError) as err:
        print(f"kernel_setup: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
