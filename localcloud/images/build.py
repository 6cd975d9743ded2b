"""Building one image environment's venv: pip installs the pins, the env reports what it has."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from localcloud.images.catalog import Image, ImageError

PULL_LOG = "pull.log"
Log = Callable[[str], None]

# Run by the env's own python: what it has installed, and its marker environment.
_REPORT = r"""
import json, os, platform, re, sys
from importlib import metadata
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
packages, modules = {}, {}
for d in metadata.distributions():
    name = norm(d.metadata["Name"])
    packages[name] = d.version
    # Python 3.10 reads only top_level.txt, which wheels like xgboost-cpu's lack: RECORD tells
    tops = (d.read_text("top_level.txt") or "").split() or {
        f.parts[0] if len(f.parts) > 1 else f.with_suffix("").name
        for f in (d.files or []) if f.suffix == ".py"
    }
    for top in tops:
        modules.setdefault(top, set()).add(name)
modules = {k: sorted(v) for k, v in modules.items()}
info = sys.implementation
markers = {
    "implementation_name": info.name,
    "implementation_version": "%d.%d.%d" % info.version[:3],
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
print(json.dumps({"python": platform.python_version(), "packages": packages,
                  "modules": modules, "markers": markers}))
"""


def _pip(python: str, args: list[str], log_file: Path, env: Mapping[str, str]) -> int:
    with log_file.open("a") as out:
        out.write(f"\n$ {python} -m pip {' '.join(args)}\n")
        out.flush()
        command = [python, "-m", "pip", "--disable-pip-version-check", *args]
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=dict(env))
        return done.returncode


def _last_error(log_file: Path) -> str:
    """The line of pip's output that says what went wrong (its last ERROR line, else its last)."""
    lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith(("ERROR", "error"))]
    return (errors or lines or ["pip failed"])[-1][:300]


def install(build: Path, image: Image, base_python: str, log: Log) -> dict[str, str]:
    """Make the venv in build and install the pins, then the optional lines; {left out: why}."""
    log_file = build / PULL_LOG
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    made = subprocess.run(
        [base_python, "-m", "venv", str(build)], capture_output=True, text=True, env=env
    )
    if made.returncode != 0:
        raise ImageError(f"{base_python} -m venv failed: {made.stderr.strip()[-300:]}")
    python = str(build / "bin" / "python")
    pins = build / "pins.txt"
    pins.write_text("\n".join(image.install_lines()) + "\n")
    log(f"installing {len(image.pins)} pins with pip (its output: {log_file.name} in the env)")
    if _pip(python, ["install", "-r", str(pins)], log_file, env) != 0:
        raise ImageError(f"pip could not install {image.name}'s pins: {_last_error(log_file)}")
    left_out = {}
    for line in image.install_lines(image.optional):
        log(f"installing {line} (optional)")
        # the pins stay as they are: the optional line may only add packages
        if _pip(python, ["install", line, "-c", str(pins)], log_file, env) != 0:
            left_out[line] = _last_error(log_file)
            log(f"left out {line}: {left_out[line]}")
    return left_out


def retarget_scripts(build: Path, final: Path) -> None:
    """bin/ scripts name the folder they were made in; name the one they will live in."""
    old, new = str(build), str(final)
    for path in (build / "bin").iterdir():
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old.encode() in data[:4096] and b"\0" not in data[:4096]:
            path.write_bytes(data.replace(old.encode(), new.encode()))


def report(python: str) -> dict[str, Any]:
    """What an interpreter has installed, read by that interpreter."""
    done = subprocess.run(
        [python, "-I", "-c", _REPORT], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise ImageError(f"{python} could not report its packages: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)
