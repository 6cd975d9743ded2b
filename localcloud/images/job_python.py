"""The interpreter a job's hosts run with, and the one line its log says about it.

The image environment's python when `envs.find` has one for the request's TrainingImage, else the
server's own. localcloud's in-job code (the `_boot` sitecustomize, the built-in XGBoost module)
needs only the standard library, botocore and the image's numpy/pandas/scipy/scikit-learn/xgboost,
which every catalog entry pins, so it imports with either.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from localcloud.images import catalog, envs


@dataclass(frozen=True)
class JobPython:
    """A job's interpreter; `env` is the image environment running it, None for the server's."""

    executable: str
    env: envs.Env | None = None
    notice: str | None = None  # the one line for each host's log at job start

    def installed_version(self, name: str) -> str | None:
        """Version of a distribution, or of the one providing that import name, in this python."""
        if self.env is None:
            return _own_version(name)
        packages = self.env.packages
        for key in (envs.normalize(name), envs.normalize(catalog.substitute(name))):
            if key in packages:
                return packages[key]
        for dist in self.env.modules.get(name.replace("-", "_").lower(), []):
            if dist in packages:
                return packages[dist]
        return None

    def markers(self) -> Mapping[str, str] | None:
        """The marker environment of requirement lines (None: this process's)."""
        return None if self.env is None else self.env.markers

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """A host's env for this python: an image env's bin first, the server's PYTHONPATH gone.

        The server's PYTHONPATH may name packages built for its own Python (SDK v2's .sdkv2),
        which the image's Python must not import; the code folder, `_boot` and the repository
        are put back by the entry point's PYTHONPATH.
        """
        env = dict(base)
        if self.env is None:
            return env
        env.pop("PYTHONPATH", None)
        env["VIRTUAL_ENV"] = str(self.env.root)
        env["PATH"] = os.pathsep.join([str(self.env.root / "bin"), env.get("PATH") or os.defpath])
        return env


def _own_version(name: str) -> str | None:
    for dist in dict.fromkeys((name, catalog.substitute(name))):  # xgboost: also xgboost-cpu
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    for dist in metadata.packages_distributions().get(name.replace("-", "_").lower(), []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _image_version(image: catalog.Image, package: str) -> str | None:
    for line in image.pins:
        name, _, version = line.partition("==")
        if envs.normalize(name) == package and version:
            return version
    return None


def mismatch_line(image: catalog.Image, versions: Mapping[str, str | None], python: str) -> str:
    """The log line of a job that runs without the image's env: only what differs is named."""
    theirs = [f"Python {image.python}"] if python != image.python else []
    ours = [f"Python {python}"] if python != image.python else []
    for package in catalog.COMPARED:
        wanted, have = _image_version(image, package), versions.get(package)
        if wanted and wanted != have:
            theirs.append(f"{package} {wanted}")
            ours.append(f"{package} {have or 'none'}")
    hint = f"python -m localcloud images pull {image.short} builds the image's environment"
    if not theirs:
        return (
            f"localcloud: this job runs with the same Python, {', '.join(catalog.COMPARED)} as "
            f"the {image.name} image, but not in its environment ({hint})"
        )
    return (
        f"localcloud: the {image.name} image has {', '.join(theirs)}; this job runs with "
        f"{', '.join(ours)} ({hint})"
    )


def env_line(env: envs.Env) -> str:
    """The log line of a job that runs in an image environment."""
    python = JobPython(env.python, env)
    shown = [f"{p} {v}" for p in catalog.COMPARED if (v := python.installed_version(p))]
    line = (
        f"localcloud: this job runs in the {env.image.name} image's environment (Python "
        f"{env.manifest['python']}, {', '.join(shown)})"
    )
    if env.left_out:
        line += "; not installed there: " + ", ".join(sorted(env.left_out))
    return line


def pytorch_line(image: str, torch: str | None) -> str | None:
    """The log line of a PyTorch job: it runs with this machine's torch, not the image's."""
    versions = catalog.pytorch_versions(image)
    if versions is None:
        return None
    theirs, python = versions
    mine = ".".join((torch or "").split("+")[0].split(".")[:2]) or "none"
    image_python = f" and Python {python}" if python else ""
    return (
        f"localcloud: PyTorch images run with this machine's torch {mine} and Python "
        f"{_short_python()} (the image has torch {theirs}{image_python}; localcloud builds no "
        "environment for them, as other torch builds are several GB)"
    )


def _short_python() -> str:
    return ".".join(platform.python_version_tuple()[:2])


def job_python(request: Mapping[str, Any], root: Path | None = None) -> JobPython:
    """The interpreter of a job's hosts and the line its log says about it."""
    image_uri = str((request.get("AlgorithmSpecification") or {}).get("TrainingImage") or "")
    entry = catalog.entry_for(image_uri)
    if entry is not None:
        env = envs.find(entry, root)
        if env is not None:
            return JobPython(env.python, env, env_line(env))
        versions = {p: _own_version(p) for p in catalog.COMPARED}
        return JobPython(sys.executable, None, mismatch_line(entry, versions, _short_python()))
    if catalog.pytorch_versions(image_uri) is not None:
        return JobPython(sys.executable, None, pytorch_line(image_uri, _own_version("torch")))
    return JobPython(sys.executable)
