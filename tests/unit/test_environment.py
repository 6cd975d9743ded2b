"""The requirement files, the locks, environment.yml and pyproject.toml say the same thing."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip(
    "tomllib", reason="Python 3.11+: the in-step checks run in the main venv"
)

ROOT = Path(__file__).resolve().parents[2]
# name[extras]==version, the only form the lock files use
_PIN = re.compile(r"([A-Za-z0-9_.\-]+)(\[[A-Za-z0-9_,\-]+\])?==([0-9][\w.+]*)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", re.sub(r"\[.*\]", "", name)).lower()


def _load_lowest() -> Any:
    """.ci/lowest.py: the requirement files' reader, and what the Python 3.10 set leaves out."""
    spec = importlib.util.spec_from_file_location("lowest", ROOT / ".ci" / "lowest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lowest = _load_lowest()
requirement_lines = lowest.requirement_lines


def ranges(name: str) -> dict[str, Requirement]:
    """{normalised name: requirement} of requirements.txt or requirements-dev.txt."""
    return {_normalise(r.name): r for r in lowest.requirements(name)}


def exact_pins(lines: list[str]) -> dict[str, str]:
    """{'moto': '5.2.5', ...}: names normalised, extras dropped; every line must be a pin."""
    pins = {}
    for line in lines:
        match = _PIN.fullmatch(line)
        assert match, f"not an exact pin: {line!r}"
        name, _extras, version = match.groups()
        pins[_normalise(name)] = version
    return pins


def lock(name: str = "requirements-lock.txt") -> dict[str, str]:
    return exact_pins(requirement_lines(name))


def pyproject() -> dict[str, Any]:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


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


def test_the_learners_file_and_the_tools_file_are_ranges_with_a_floor():
    course, tools = ranges("requirements.txt"), ranges("requirements-dev.txt")
    assert not course.keys() & tools.keys()
    for req in [*course.values(), *tools.values()]:
        assert {s.operator for s in req.specifier} & {">=", "=="}, f"{req}: no lower bound"
    assert {"sagemaker", "xgboost-cpu", "pandas", "numpy", "torch"} <= course.keys()
    assert {"moto", "papermill", "pytest", "ruff"} <= tools.keys()


def test_pyproject_says_what_the_requirement_files_say():
    project = pyproject()["project"]
    assert project["dependencies"] == requirement_lines("requirements.txt")
    assert project["optional-dependencies"]["dev"] == requirement_lines("requirements-dev.txt")


def test_the_lock_pins_every_requirement_inside_its_range():
    pins = lock()
    for req in [*ranges("requirements.txt").values(), *ranges("requirements-dev.txt").values()]:
        version = pins.get(_normalise(req.name))
        assert version, f"{req.name} is not in requirements-lock.txt"
        assert req.specifier.contains(version, prereleases=True), f"{req.name}=={version}: {req}"
    assert pins["torch"] == "2.13.0"  # the CPU wheel on these machines' disk
    assert pins["sagemaker"].startswith("3.")  # ModelTrainer (SDK v3), not v2's Estimator
    assert all(pins.get(part) for part in ("sagemaker-core", "sagemaker-train", "mlflow"))


def test_the_lock_check_refuses_a_pin_outside_its_range():
    assert not Requirement("pandas>=2.2,<4").specifier.contains("4.0.0")
    assert Requirement("pandas>=2.2,<4").specifier.contains("3.1.1")
    with pytest.raises(AssertionError, match="not an exact pin"):
        exact_pins(["moto[server]>=5.2"])
    assert exact_pins(["moto[server]==5.2.5", "PyYAML==6.0.4"]) == {
        "moto": "5.2.5",
        "pyyaml": "6.0.4",
    }


def test_environment_yml_names_every_requirement_at_the_locked_version():
    wanted = {*ranges("requirements.txt"), *ranges("requirements-dev.txt")}
    pins, locked = environment_pins(), lock()
    assert set(pins) == wanted
    assert {name: locked[name] for name in wanted} == pins


def test_python_and_channel():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]  # the lock's Python


def test_python_floor_is_the_stock_kernels():
    # notebook-al2023-v1's conda_python3 is Python 3.10; ruff must not suggest 3.11-only code
    assert pyproject()["project"]["requires-python"] == ">=3.10"
    assert pyproject()["tool"]["ruff"]["target-version"] == "py310"


def test_the_python310_set_is_the_lowest_that_requirements_admits():
    pins = lock("requirements-py310-lowest.txt")
    for name, req in ranges("requirements.txt").items():
        if name in lowest.LEFT_OUT:
            assert name not in pins, f"{name} is left out of the Python 3.10 check"
            continue
        assert Version(pins[name]) == Version(lowest.lower_bound(req)), f"{name}=={pins[name]}"
    for name, req in ranges("requirements-dev.txt").items():
        if name not in lowest.LEFT_OUT:
            assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]}"
    with pytest.raises(ValueError, match="needs a lower bound"):
        lowest.lower_bound(Requirement("pandas<4"))


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
