"""The entry point's requirements.txt, checked offline (toolkit modules.py, contract §2.5)."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from localcloud.hosts.errors import ClientError


def _installed_version(name: str) -> str | None:
    """Version of a distribution, or of the one providing that import name (xgboost-cpu)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    providers = metadata.packages_distributions().get(name.replace("-", "_").lower(), [])
    for dist in providers:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def missing_requirements(requirements: Path) -> list[str]:
    """Requirement lines this interpreter does not satisfy (pip would have to download them)."""
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
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = _installed_version(req.name)
        if version is None:
            missing.append(line)
            continue
        if req.url or not req.specifier.contains(version, prereleases=True):
            missing.append(f"{line} (installed: {version})")
    return missing


def check_requirements(code: Path) -> None:
    """Fail as the toolkit's pip install would when code's requirements.txt needs a download.

    A folder with setup.py is a package the toolkit installs instead; nothing is checked then.
    """
    requirements = code / "requirements.txt"
    if not requirements.exists() or (code / "setup.py").exists():
        return
    missing = missing_requirements(requirements)
    if missing:
        raise ClientError(
            "AlgorithmError: InstallRequirementsError:\nExitCode 1\nErrorMessage "
            f'"localcloud runs offline and these requirements are not installed: '
            f'{", ".join(missing)}"\nCommand "{sys.executable} -m pip install -r '
            'requirements.txt"'
        )
