"""requirements.txt and environment.yml must pin the same packages at the same versions."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", re.sub(r"\[.*\]", "", name)).lower()


def requirements_pins() -> dict[str, str]:
    """Parse name==version lines of requirements.txt."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_normalise(name)] = version
    return pins


def environment_pins() -> dict[str, str]:
    """Parse conda (name=version) and pip (name==version) pins of environment.yml."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_line in dep["pip"]:
                name, version = pip_line.split("==")
                pins[_normalise(name)] = version
        elif "=" in dep and not dep.startswith("python="):
            name, version = dep.split("=")
            pins[_normalise(name)] = version
    return pins


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.]*", line), line


def test_requirements_and_environment_agree():
    assert requirements_pins() == environment_pins()


def test_python_and_channel():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]


def test_sagemaker_is_v2_and_torch_is_the_cpu_pin():
    pins = requirements_pins()
    major = int(pins["sagemaker"].split(".")[0])
    assert major == 2, "sagemaker v3 removed Estimator; the course needs >=2.250,<3"
    assert int(pins["sagemaker"].split(".")[1]) >= 250
    assert pins["torch"] == "2.13.0"
