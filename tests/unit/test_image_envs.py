"""Image environments: the catalog's facts, the cache, what `find` trusts, the jobs' log lines.

No network: a pull here runs a fake installer whose `bin/python` is a wrapper of this interpreter.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from localcloud.hosts.modules import missing_requirements
from localcloud.images import build, catalog, envs, job_python, pythons
from localcloud.images.catalog import Image, ImageError

ROOT = Path(__file__).resolve().parents[2]
ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com"
XGB32 = catalog.lookup("xgboost:3.2-0")
HERE = ".".join(map(str, sys.version_info[:2]))
PACKAGING = metadata.version("packaging")
# A catalog entry this interpreter satisfies, so the fake env's report matches it.
FAKE = Image(
    repository="sagemaker-fake",
    tag="1.0-1",
    python=HERE,
    pins=(f"packaging=={PACKAGING}",),
    source="tests",
    read_on="2026-12-02",
)


def fake_installer(calls: list[str], gate: threading.Event | None = None):
    """An installer that makes bin/python a wrapper of this interpreter (no venv, no pip)."""

    def install(build: Path, image: Image, base_python: str, log) -> dict[str, str]:
        calls.append(build.name)
        if gate is not None:
            assert gate.wait(10), "the second pull never asked for the lock"
        (build / "bin").mkdir()
        python = build / "bin" / "python"
        python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        python.chmod(0o755)
        (build / "bin" / "tool").write_text(f"#!{build}/bin/python\nprint('hi')\n")
        return {}

    return install


def fake_manifest_env(root: Path, image: Image, changes: dict | None = None) -> Path:
    """A built-looking env of a catalog entry, its packages exactly as pinned."""
    folder = root / image.folder
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("#!/bin/sh\n")
    packages = {}
    for line in image.install_lines():
        req = Requirement(line)
        pinned = [s.version for s in req.specifier if s.operator in ("==", "<=")]
        packages[envs.normalize(req.name)] = pinned[0]
    manifest = {
        "format": envs.MANIFEST_FORMAT,
        "image": image.name,
        "spec": image.digest(),
        "python": f"{image.python}.1",
        "packages": packages,
        "modules": {"xgboost": ["xgboost-cpu"], "sklearn": ["scikit-learn"]},
        "markers": {"python_version": image.python, "python_full_version": f"{image.python}.1"},
        "left_out": {},
    }
    manifest.update(changes or {})
    (folder / envs.MANIFEST).write_text(json.dumps(manifest))
    return folder


# ------------------------------------------------------------------------------- catalog
def test_every_catalog_fact_names_its_source_and_date() -> None:
    assert len(catalog.IMAGES) >= 2
    for entry in catalog.IMAGES:
        assert re.fullmatch(r"aws/deep-learning-containers \S+ @[0-9a-f]{8,40}", entry.source)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry.read_on)
        assert re.fullmatch(r"3\.\d+", entry.python)
        for line in (*entry.pins, *entry.optional):
            Requirement(line)  # every pin is a valid requirement line
    # the course's image, as the DLC repository states it
    assert XGB32.python == "3.12" and "xgboost==3.2.0" in XGB32.pins
    assert "pandas==2.2.3" in XGB32.pins and "scikit-learn==1.8.0" in XGB32.pins
    assert catalog.lookup("xgboost:3.0-5").python == "3.10"


def test_the_cpu_build_replaces_the_images_xgboost_and_the_digest_follows_the_pins() -> None:
    assert "xgboost-cpu==3.2.0" in XGB32.install_lines()
    assert "pandas==2.2.3" in XGB32.install_lines()  # control: other lines stay
    assert catalog.substitute("xgboost-cpu==3") == "xgboost-cpu==3"
    changed = Image(**{**XGB32.__dict__, "pins": (*XGB32.pins[:-1], "protobuf==4.0")})
    assert changed.digest() != XGB32.digest()
    assert Image(**XGB32.__dict__).digest() == XGB32.digest()


@pytest.mark.parametrize(
    "image",
    [
        f"{ECR}/sagemaker-xgboost:3.2-0",
        "sagemaker-xgboost:3.2-0",
        "xgboost:3.2-0",
        " xgboost:3.2-0 ",
    ],
)
def test_an_image_is_named_by_uri_repository_or_short_name(image: str) -> None:
    assert catalog.entry_for(image) is XGB32


@pytest.mark.parametrize(
    "image",
    [
        f"{ECR}/sagemaker-xgboost:1.7-1",
        f"{ECR}/sagemaker-xgboost@sha256:{'a' * 64}",
        "xgboost",
        f"{ECR}/sagemaker-scikit-learn:3.2-0",
    ],
)
def test_images_outside_the_catalog_have_no_entry(image: str) -> None:
    assert catalog.entry_for(image) is None


def test_an_unknown_image_is_refused_naming_the_known_ones() -> None:
    assert catalog.lookup(f"{ECR}/sagemaker-xgboost:3.2-0") is XGB32  # control
    with pytest.raises(ImageError, match=r"'xgboost:9\.9-9'.*xgboost:3\.2-0, xgboost:3\.0-5"):
        catalog.lookup("xgboost:9.9-9")
    with pytest.raises(ImageError):
        envs.pull("xgboost:9.9-9", Path("/nonexistent-cache"))  # refused before any folder


def test_pytorch_tags_tell_torch_and_python() -> None:
    uri = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training"
    assert catalog.pytorch_versions(f"{uri}:2.10-cpu-py313") == ("2.10", "3.13")
    assert catalog.pytorch_versions(f"{uri}:2.8.0-gpu-py312") == ("2.8", "3.12")
    assert catalog.pytorch_versions(f"{uri}:latest") is None
    assert catalog.pytorch_versions(f"{ECR}/sagemaker-xgboost:3.2-0") is None


# --------------------------------------------------------------------------------- cache
def test_cache_root_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LOCALCLOUD_IMAGE_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert envs.cache_root() == tmp_path / "home" / ".cache" / "localcloud" / "images"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # XDG: relative paths are ignored
    assert envs.cache_root() == tmp_path / "home" / ".cache" / "localcloud" / "images"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert envs.cache_root() == tmp_path / "xdg" / "localcloud" / "images"
    monkeypatch.setenv("LOCALCLOUD_IMAGE_CACHE", str(tmp_path / "mine"))
    assert envs.cache_root() == tmp_path / "mine"


def test_the_default_cache_is_outside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOCALCLOUD_IMAGE_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert not envs.cache_root().is_relative_to(ROOT)


# ---------------------------------------------------------------------------------- find
def test_a_matching_manifest_is_found(tmp_path: Path) -> None:
    folder = fake_manifest_env(tmp_path, XGB32)
    env = envs.find("xgboost:3.2-0", tmp_path)
    assert env is not None and env.root == folder and env.python == str(folder / "bin/python")
    assert envs.status(XGB32, tmp_path) == "present"


def test_a_half_built_env_is_not_found(tmp_path: Path) -> None:
    folder = fake_manifest_env(tmp_path, XGB32)
    (folder / envs.MANIFEST).unlink()  # the manifest is written last: without it, not built
    assert envs.find(XGB32, tmp_path) is None
    assert envs.status(XGB32, tmp_path) == "outdated"
    building = fake_manifest_env(tmp_path / "b", XGB32)  # whole, but under a temporary name
    building.rename(tmp_path / f"{envs.BUILDING}{XGB32.folder}-x")
    assert envs.find(XGB32, tmp_path) is None
    assert envs.status(XGB32, tmp_path / "none") == "absent"


@pytest.mark.parametrize(
    "change",
    [
        {"spec": "0" * 16},
        {"format": envs.MANIFEST_FORMAT + 1},
        {"image": "sagemaker-xgboost:3.0-5"},
        {"python": "3.11.7"},
        {"packages": {"pandas": "2.2.3"}},
        {"packages": "not a mapping"},
    ],
)
def test_a_manifest_that_does_not_match_the_catalog_is_not_found(
    tmp_path: Path, change: dict
) -> None:
    fake_manifest_env(tmp_path, XGB32, change)
    assert envs.find(XGB32, tmp_path) is None


def test_an_unpinned_version_is_not_found(tmp_path: Path) -> None:
    folder = fake_manifest_env(tmp_path, XGB32)
    manifest = json.loads((folder / envs.MANIFEST).read_text())
    manifest["packages"]["numpy"] = "2.4.6"
    (folder / envs.MANIFEST).write_text(json.dumps(manifest))
    assert envs.find(XGB32, tmp_path) is None
    manifest["packages"]["numpy"] = "2.1.0"  # control
    (folder / envs.MANIFEST).write_text(json.dumps(manifest))
    assert envs.find(XGB32, tmp_path) is not None


# ---------------------------------------------------------------------------------- pull
def test_pull_builds_then_renames_and_writes_the_manifest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCALCLOUD_IMAGE_PYTHON_" + HERE.replace(".", "_"), sys.executable)
    calls: list[str] = []
    for leftover in (envs.BUILDING, ".stale-"):  # what killed pulls left
        (tmp_path / f"{leftover}{FAKE.folder}-killed").mkdir(parents=True)
    env = envs.pull(FAKE, tmp_path, log=lambda _: None, installer=fake_installer(calls))
    assert env.root == tmp_path / FAKE.folder and len(calls) == 1
    assert env.packages["packaging"] == PACKAGING  # as the env's own python reported it
    assert env.manifest["spec"] == FAKE.digest() and env.manifest["python"].startswith(HERE)
    assert (env.root / "bin" / "tool").read_text().startswith(f"#!{env.root}/bin/python\n")
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [FAKE.folder]
    # a second pull finds it and builds nothing
    assert envs.pull(FAKE, tmp_path, log=lambda _: None, installer=fake_installer(calls)) == env
    assert len(calls) == 1


def test_a_failed_build_leaves_nothing_that_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCALCLOUD_IMAGE_PYTHON_" + HERE.replace(".", "_"), sys.executable)

    def failing(build: Path, image: Image, base_python: str, log) -> dict[str, str]:
        (build / "bin").mkdir()
        raise ImageError("pip could not install the pins: no network")

    with pytest.raises(ImageError, match="no network"):
        envs.pull(FAKE, tmp_path, log=lambda _: None, installer=failing)
    assert envs.find(FAKE, tmp_path) is None
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []


def test_a_pull_that_installs_other_versions_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCALCLOUD_IMAGE_PYTHON_" + HERE.replace(".", "_"), sys.executable)
    wrong = Image(**{**FAKE.__dict__, "pins": ("packaging==0.1",)})
    with pytest.raises(ImageError, match=r"not as pinned: packaging==0\.1"):
        envs.pull(wrong, tmp_path, log=lambda _: None, installer=fake_installer([]))
    assert envs.find(wrong, tmp_path) is None


def test_an_outdated_env_is_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCALCLOUD_IMAGE_PYTHON_" + HERE.replace(".", "_"), sys.executable)
    old = tmp_path / FAKE.folder
    old.mkdir()
    (old / "old-file").write_text("from an older catalog")
    env = envs.pull(FAKE, tmp_path, log=lambda _: None, installer=fake_installer([]))
    assert not (env.root / "old-file").exists() and envs.find(FAKE, tmp_path) == env
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [FAKE.folder]


def test_concurrent_pulls_build_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCALCLOUD_IMAGE_PYTHON_" + HERE.replace(".", "_"), sys.executable)
    asked, calls, results = threading.Event(), [], []
    real_lock = envs._locked

    def lock(path: Path):
        if threading.current_thread().name == "second":
            asked.set()  # the first pull's installer goes on only once this one waits for it
        return real_lock(path)

    monkeypatch.setattr(envs, "_locked", lock)
    install = fake_installer(calls, gate=asked)

    def run() -> None:
        results.append(envs.pull(FAKE, tmp_path, log=lambda _: None, installer=install))

    first = threading.Thread(target=run, name="first")
    first.start()
    while not calls and first.is_alive():  # the first is building before the second starts
        first.join(0.01)
    second = threading.Thread(target=run, name="second")
    second.start()
    first.join(30)
    second.join(30)
    assert len(calls) == 1 and len(results) == 2 and results[0] == results[1]
    assert envs.find(FAKE, tmp_path) == results[0]


def test_find_python_checks_what_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    variable = "LOCALCLOUD_IMAGE_PYTHON_" + HERE.replace(".", "_")
    monkeypatch.setenv(variable, sys.executable)
    assert pythons.probe(pythons.find_python(HERE), HERE)  # control: a real interpreter of HERE
    monkeypatch.setenv(variable, "/bin/false")
    with pytest.raises(ImageError, match=f"is not a Python {HERE}"):
        pythons.find_python(HERE)
    monkeypatch.setenv("LOCALCLOUD_IMAGE_PYTHON_2_7", sys.executable)  # a Python, not that one
    with pytest.raises(ImageError, match="is not a Python 2.7"):
        pythons.find_python("2.7")


# ----------------------------------------------------------------------- a job's python
def test_the_log_line_names_only_the_versions_that_differ() -> None:
    ours = {"xgboost": "3.2.0", "pandas": "3.1.1", "numpy": "2.4.6", "scikit-learn": "1.9.1"}
    assert job_python.mismatch_line(XGB32, ours, "3.11") == (
        "localcloud: the sagemaker-xgboost:3.2-0 image has Python 3.12, pandas 2.2.3, "
        "numpy 2.1.0, scikit-learn 1.8.0; this job runs with Python 3.11, pandas 3.1.1, "
        "numpy 2.4.6, scikit-learn 1.9.1 (python -m localcloud images pull xgboost:3.2-0 "
        "builds the image's environment)"
    )
    same_pandas = job_python.mismatch_line(XGB32, {**ours, "pandas": "2.2.3"}, "3.12")
    assert "pandas" not in same_pandas and "Python" not in same_pandas.split("(")[0]
    assert "numpy 2.1.0" in same_pandas and "xgboost 3" not in same_pandas
    missing = job_python.mismatch_line(XGB32, {**ours, "xgboost": None}, "3.11")
    assert "xgboost 3.2.0" in missing and "xgboost none" in missing
    same = {"xgboost": "3.2.0", "pandas": "2.2.3", "numpy": "2.1.0", "scikit-learn": "1.8.0"}
    assert "runs with the same Python" in job_python.mismatch_line(XGB32, same, "3.12")


def _request(image: str) -> dict:
    return {"AlgorithmSpecification": {"TrainingImage": image}}


def test_a_job_runs_with_the_env_when_it_is_built(tmp_path: Path) -> None:
    folder = fake_manifest_env(tmp_path, XGB32)
    python = job_python.job_python(_request(f"{ECR}/sagemaker-xgboost:3.2-0"), tmp_path)
    assert python.executable == str(folder / "bin" / "python") and python.env is not None
    assert python.notice == (
        "localcloud: this job runs in the sagemaker-xgboost:3.2-0 image's environment "
        "(Python 3.12.1, xgboost 3.2.0, pandas 2.2.3, numpy 2.1.0, scikit-learn 1.8.0)"
    )
    assert str(tmp_path) not in python.notice  # no machine path in a job's log
    env = python.environ({"PATH": "/usr/bin", "PYTHONPATH": "/elsewhere/.sdkv2"})
    assert env["PATH"] == f"{folder}/bin{os.pathsep}/usr/bin" and "PYTHONPATH" not in env
    # control: without the env the same request runs with this interpreter, and says so
    python = job_python.job_python(_request(f"{ECR}/sagemaker-xgboost:3.2-0"), tmp_path / "no")
    assert python.executable == sys.executable and python.env is None
    assert python.notice.startswith("localcloud: the sagemaker-xgboost:3.2-0 image has ")
    assert python.environ({"PYTHONPATH": "x"}) == {"PYTHONPATH": "x"}


def test_the_report_finds_import_names_without_top_level_txt() -> None:
    reported = build.report(sys.executable)  # what pull writes into the manifest
    assert reported["python"] == platform.python_version()
    assert reported["packages"]["xgboost-cpu"] == metadata.version("xgboost-cpu")
    assert reported["modules"]["xgboost"] == ["xgboost-cpu"]  # its wheel has no top_level.txt
    assert reported["markers"]["python_version"] == HERE


def test_the_cpu_build_answers_for_xgboost_in_an_env(tmp_path: Path) -> None:
    fake_manifest_env(tmp_path, XGB32, {"modules": {}})
    python = job_python.job_python(_request("xgboost:3.2-0"), tmp_path)
    assert python.installed_version("xgboost") == "3.2.0"
    assert python.installed_version("xgboost-cpu") == "3.2.0"
    assert python.installed_version("surely-absent") is None


def test_what_an_env_left_out_is_in_its_line(tmp_path: Path) -> None:
    why = {"sagemaker-containers==2.8.6.post2": "error: no C compiler"}
    fake_manifest_env(tmp_path, XGB32, {"left_out": why})
    notice = job_python.job_python(_request("xgboost:3.2-0"), tmp_path).notice
    assert notice.endswith("; not installed there: sagemaker-containers==2.8.6.post2")


def test_pytorch_and_other_images_run_with_this_machine(tmp_path: Path) -> None:
    uri = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10-cpu-py313"
    python = job_python.job_python(_request(uri), tmp_path)
    assert python.executable == sys.executable
    assert python.notice == job_python.pytorch_line(uri, job_python._own_version("torch"))
    assert job_python.pytorch_line(uri, "2.13.0+cpu") == (
        f"localcloud: PyTorch images run with this machine's torch 2.13 and Python {HERE} "
        "(the image has torch 2.10 and Python 3.13; localcloud builds no environment for them, "
        "as other torch builds are several GB)"
    )
    other = job_python.job_python(_request(f"{ECR}/sagemaker-xgboost:1.7-1"), tmp_path)
    assert other.executable == sys.executable and other.notice is None


def test_requirements_are_checked_against_the_jobs_python(tmp_path: Path) -> None:
    folder = fake_manifest_env(tmp_path, XGB32)
    env_python = job_python.job_python(_request("xgboost:3.2-0"), tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pandas==2.2.3\nxgboost>=3.2\nscikit-learn<1\n")
    assert missing_requirements(requirements, env_python) == ["scikit-learn<1 (installed: 1.8.0)"]
    ours = metadata.version("pandas")
    if ours != "2.2.3":  # control: this interpreter's pandas is another one
        assert "pandas==2.2.3 (installed: " in missing_requirements(requirements)[0]
    requirements.write_text('surely-absent; python_version < "3.12"\n')  # the env's markers
    assert missing_requirements(requirements, env_python) == []
    assert folder.exists()


# ------------------------------------------------------------------------------------ CLI
def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOCALCLOUD_IMAGE_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "localcloud", "images", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_lists_images_and_refuses_an_unknown_pull(tmp_path: Path) -> None:
    folder = fake_manifest_env(tmp_path, XGB32)
    listed = _cli("list", cache=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any("sagemaker-xgboost:3.2-0" in line and " present " in line for line in lines)
    assert any("sagemaker-xgboost:3.0-5" in line and " absent " in line for line in lines)
    kept = _cli("pull", f"{ECR}/sagemaker-xgboost:3.2-0", cache=tmp_path)  # present: no build
    assert kept.returncode == 0 and kept.stdout == f"sagemaker-xgboost:3.2-0: {folder}\n"
    refused = _cli("pull", "xgboost:9.9-9", cache=tmp_path)
    assert refused.returncode == 1
    assert "no environment is known for the image 'xgboost:9.9-9'" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [XGB32.folder]
