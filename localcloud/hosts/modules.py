"""The entry point's requirements.txt, checked offline (toolkit modules.py, contract §2.5)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from localcloud.hosts import safepaths
from localcloud.hosts.errors import ClientError
from localcloud.images.job_python import JobPython

# pip options that only say where to look for packages or how to build them: when every
# requirement is already satisfied, `pip install -r` contacts no index and succeeds offline
WHERE_TO_LOOK = frozenset(
    [
        "-f",
        "--find-links",
        "-i",
        "--index-url",
        "--extra-index-url",
        "--no-index",
        "--pre",
        "--trusted-host",
        "--prefer-binary",
        "--only-binary",
        "--no-binary",
        "--use-feature",
        "--progress-bar",
    ]
)
NESTED = {
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
}


def _lines(path: Path) -> list[str]:
    """A requirements file's logical lines: continuations joined, comments and blanks dropped."""
    text = path.read_text().replace("\\\n", " ")
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _option(line: str) -> tuple[str, str]:
    """('-r', 'other.txt') from '-r other.txt', '-rother.txt' or '--requirement=other.txt'."""
    if line.startswith("--"):
        name, _, value = line.replace("=", " ", 1).partition(" ")
    elif len(line) > 2 and line[2] != " ":
        name, value = line[:2], line[2:]
    else:
        name, _, value = line.partition(" ")
    return name, value.strip()


def _read(path: Path, root: Path, depth: int = 0) -> tuple[list[str], list[str], list[str]]:
    """(requirements, constraints, lines pip can't satisfy offline) of a file and its -r/-c."""
    reqs: list[str] = []
    constraints: list[str] = []
    refused: list[str] = []
    for line in _lines(path):
        if not line.startswith("-"):
            reqs.append(line.split(" --", 1)[0].strip())  # per-requirement --hash=... options
            continue
        name, value = _option(line)
        if name in WHERE_TO_LOOK:
            continue
        if name not in NESTED or depth > 5:
            refused.append(line)  # -e (an editable build) and anything else pip would act on
            continue
        try:
            nested = safepaths.inside(root, str(path.parent.relative_to(root) / value))
        except (safepaths.UnsafePath, ValueError):
            refused.append(line)
            continue
        if not nested.is_file():
            refused.append(f"{line} (no such file)")
            continue
        more, more_constraints, more_refused = _read(nested, root, depth + 1)
        if NESTED[name] == "constraint":
            constraints += more
        else:
            reqs += more
        constraints += more_constraints
        refused += more_refused
    return reqs, constraints, refused


def missing_requirements(requirements: Path, python: JobPython | None = None) -> list[str]:
    """Requirement lines the job's interpreter does not satisfy (pip would have to download them).

    python: the job's (an image environment's); default, the interpreter running localcloud.
    Nested `-r`/`-c` files are read from inside the requirements file's folder only.
    """
    python = python or JobPython(sys.executable)
    markers = python.markers()
    environment = dict(markers) if markers else None
    reqs, constraints, missing = _read(requirements, requirements.parent)
    parsed: list[tuple[str, Requirement]] = []
    for line in reqs:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            missing.append(line)
            continue
        if req.marker is None or req.marker.evaluate(environment):
            parsed.append((line, req))
    limits: dict[str, list[Requirement]] = {}
    for line in constraints:
        with contextlib.suppress(InvalidRequirement):
            limit = Requirement(line)
            if limit.marker is None or limit.marker.evaluate(environment):
                limits.setdefault(canonicalize_name(limit.name), []).append(limit)
    for line, req in parsed:
        version = python.installed_version(req.name)
        if version is None:
            missing.append(line)
            continue
        wanted = [req, *limits.get(canonicalize_name(req.name), [])]
        if req.url or not all(w.specifier.contains(version, prereleases=True) for w in wanted):
            missing.append(f"{line} (installed: {version})")
    return missing


def check_requirements(code: Path, python: JobPython | None = None) -> None:
    """Fail as the toolkit's pip install would when code's requirements.txt needs a download.

    A folder with setup.py is a package the toolkit installs instead; nothing is checked then.
    """
    requirements = code / "requirements.txt"
    if not requirements.exists() or (code / "setup.py").exists():
        return
    python = python or JobPython(sys.executable)
    missing = missing_requirements(requirements, python)
    if missing:
        raise ClientError(
            "AlgorithmError: InstallRequirementsError:\nExitCode 1\nErrorMessage "
            f'"localcloud runs offline and these requirements are not installed: '
            f'{", ".join(missing)}"\nCommand "{python.executable} -m pip install -r '
            'requirements.txt"'
        )
