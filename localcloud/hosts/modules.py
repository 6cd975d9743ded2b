"""The entry point's requirements.txt, checked offline (toolkit modules.py, contract §2.5)."""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from localcloud.hosts.errors import ClientError
from localcloud.images.job_python import JobPython


def missing_requirements(requirements: Path, python: JobPython | None = None) -> list[str]:
    """Requirement lines the job's interpreter does not satisfy (pip would have to download them).

    python: the job's (an image environment's); default, the interpreter running localcloud.
    """
    python = python or JobPython(sys.executable)
    markers = python.markers()
    missing = []
    for raw in requirements.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            missing.append(line)  # options, -r, -e: nothing pip could do offline
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            missing.append(line)
            continue
        if req.marker is not None and not req.marker.evaluate(dict(markers) if markers else None):
            continue
        version = python.installed_version(req.name)
        if version is None:
            missing.append(line)
            continue
        if req.url or not req.specifier.contains(version, prereleases=True):
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
