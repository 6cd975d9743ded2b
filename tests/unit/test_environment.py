"""requirements.txt, environment.yml and pyproject.toml must pin the same packages and versions."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# name[extras]==version, the only form the three files use
_PIN = re.compile(r"([A-Za-z0-9_.\-]+)(\[[A-Za-z0-9_,\-]+\])?==([0-9][\w.]*)")


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
                if pip_line == "-e .":  # the course itself, as `make setup` installs it
                    continue
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


def test_sagemaker_is_v3_and_torch_is_the_cpu_pin():
    pins = requirements_pins()
    assert pins["sagemaker"].split(".")[:2] >= ["3", "27"], "the course uses ModelTrainer (v3)"
    assert pins["sagemaker"].startswith("3."), "v3's ModelTrainer, not v2's Estimator"
    for part in ("sagemaker-core", "sagemaker-train", "sagemaker-serve", "sagemaker-mlops"):
        assert part in pins, f"{part}: sagemaker {pins['sagemaker']} requires it; pin it too"
    assert pins["torch"] == "2.13.0"


def pyproject() -> dict[str, Any]:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def exact_pins(lines: list[str]) -> dict[str, str]:
    """{'moto[server]': '5.2.5', ...}: names normalised, extras kept; every line must be a pin."""
    pins = {}
    for line in lines:
        match = _PIN.fullmatch(line.split("#", 1)[0].strip())
        assert match, f"not an exact pin: {line!r}"
        name, extras, version = match.groups()
        pins[_normalise(name) + (extras or "").lower()] = version
    return pins


def requirement_lines() -> list[str]:
    """The requirement lines of requirements.txt, in file order, comments dropped."""
    lines = (
        line.split("#", 1)[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
    )
    return [line for line in lines if line]


def test_pyproject_pins_what_requirements_pins():
    project = pyproject()["project"]
    runtime = exact_pins(project["dependencies"])
    dev = exact_pins(project["optional-dependencies"]["dev"])
    assert not runtime.keys() & dev.keys()
    assert {**runtime, **dev} == exact_pins(requirement_lines())


def test_pyproject_runtime_part_is_the_head_of_requirements():
    # requirements.txt lists what the course runs on first and the tests and style tools last
    project = pyproject()["project"]
    runtime = exact_pins(project["dependencies"])
    names = list(exact_pins(requirement_lines()))
    assert set(names[: len(runtime)]) == set(runtime)
    assert {"pytest", "ruff", "nbval"} <= set(names[len(runtime) :])
    assert {"sagemaker", "moto[server]", "papermill", "psutil"} <= set(runtime)


def test_exact_pins_refuses_a_range_and_reads_extras():
    assert exact_pins(["moto[server]==5.2.5", "PyYAML==6.0.4"]) == {
        "moto[server]": "5.2.5",
        "pyyaml": "6.0.4",
    }
    with pytest.raises(AssertionError, match="not an exact pin"):
        exact_pins(["moto[server]>=5.2"])


def test_python_floor_matches_the_pins():
    # pandas 3 and numpy 2.4 need 3.11; environment.yml and ruff say the same
    assert pyproject()["project"]["requires-python"] == ">=3.11"
    assert pyproject()["tool"]["ruff"]["target-version"] == "py311"


def _script(name: str) -> Any:
    """The function a console script of pyproject.toml runs."""
    module_name, func_name = pyproject()["project"]["scripts"][name].split(":")
    return getattr(importlib.import_module(module_name), func_name)


def test_console_scripts_return_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # the wrapper pip writes does sys.exit(main()): main must return the code, not print it
    assert _script("localcloud")(["--home", str(tmp_path), "status"]) == 1
    assert "not running" in capsys.readouterr().out
    assert _script("course")(["refresh", "no_such_lesson"]) == 2
    assert "no such lesson" in capsys.readouterr().out


def test_package_data_globs_match_files():
    setuptools = pyproject()["tool"]["setuptools"]
    for package, globs in setuptools["package-data"].items():
        folder = ROOT.joinpath(*package.split("."))
        for pattern in globs:
            assert list(folder.glob(pattern)), f"{package}: {pattern} matches nothing"
    assert set(setuptools["packages"]["find"]["include"]) == {"localcloud*", "helpers*", "course*"}


def sdkv2_pins() -> dict[str, str]:
    """requirements-sdkv2.txt: SDK v2 for localcloud's compatibility tests (`make sdkv2`)."""
    pins = {}
    for line in (ROOT / "requirements-sdkv2.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.]*", line), line
            name, version = line.split("==")
            pins[_normalise(name)] = version
    return pins


def test_the_sdkv2_layer_is_v2_and_needs_nothing_the_course_venv_lacks():
    from importlib import metadata

    from packaging.requirements import Requirement

    side = sdkv2_pins()
    assert side["sagemaker"].startswith("2.") and side["sagemaker-core"].startswith("1.")
    assert set(side) == {"sagemaker", "sagemaker-core"}  # everything else: the course venv's
    layer = ROOT / ".sdkv2"
    if not layer.is_dir():
        pytest.skip("make sdkv2 has not run")
    for dist in metadata.distributions(path=[str(layer)]):
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker and not req.marker.evaluate({"extra": ""}):
                continue
            if _normalise(req.name) in side:
                continue
            assert metadata.version(req.name), f"{dist.metadata['Name']} needs {req.name}"
