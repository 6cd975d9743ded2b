"""The base interpreter an image environment is made from: a real Python X.Y of this machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from localcloud.images.catalog import ImageError


def probe(candidate: str, version: str) -> str | None:
    """The real interpreter behind candidate (a pyenv shim is not one) if it is Python version."""
    code = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"
    try:
        done = subprocess.run(
            [candidate, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2 or lines[0] != version:
        return None
    return lines[1]


def _patch_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parents[1].name))


def find_python(version: str) -> str:
    """An interpreter of Python `version`: $LOCALCLOUD_IMAGE_PYTHON_X_Y, PATH, then pyenv's."""
    variable = "LOCALCLOUD_IMAGE_PYTHON_" + version.replace(".", "_")
    override = os.environ.get(variable)
    if override:
        found = probe(override, version)
        if found is None:
            raise ImageError(f"${variable} is {override!r}, which is not a Python {version}")
        return found
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pattern = f"versions/{version}.*/bin/python{version}"
    candidates += [str(p) for p in sorted(pyenv.glob(pattern), key=_patch_key, reverse=True)]
    for candidate in filter(None, candidates):
        found = probe(candidate, version)
        if found:
            return found
    raise ImageError(
        f"no Python {version} found (python{version} on PATH, {pyenv}/versions/{version}.*); "
        f"install one (e.g. `pyenv install {version}`) or set ${variable} to its interpreter"
    )
