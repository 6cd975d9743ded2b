"""The install cell of 00_setup installs only what the kernel lacks, and never torch.

Installed packages are fake *.dist-info folders in temporary site folders that replace sys.path;
pip is a stand-in that records its arguments and "installs" by writing such folders.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import packaging.requirements  # imported before the tests replace sys.path
import pytest

from helpers import kernel_setup

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = """\
# The course
sagemaker>=3.27,<4
boto3>=1.43.90,<2
xgboost-cpu==3.2.0     # the XGBoost 3.2-0 image's version
pandas>=2.2,<4
torch>=2.7             # 05-07; the PyTorch kernel has its own
-c constraints.txt
"""


def add_dist(site: Path, name: str, version: str) -> None:
    """A distribution as importlib.metadata finds it."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


class FakePip:
    """subprocess.run for `python -m pip install`: records the requirements, installs into site."""

    def __init__(self, site: Path, version: str = "3.2.0", returncode: int = 0) -> None:
        self.site, self.version, self.returncode = site, version, returncode
        self.commands: list[list[str]] = []

    @property
    def requirements(self) -> list[list[str]]:
        return [
            [arg for arg in command[4:] if not arg.startswith("-")] for command in self.commands
        ]

    def __call__(self, command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(command))
        if self.returncode:
            return subprocess.CompletedProcess(command, self.returncode, "", "ERROR: no network\n")
        for arg in command[4:]:
            if not arg.startswith("-"):
                name = packaging.requirements.Requirement(arg).name
                for old in self.site.glob(f"{name.replace('-', '_')}-*.dist-info"):
                    (old / "METADATA").unlink()
                    old.rmdir()
                add_dist(self.site, name, self.version)
        return subprocess.CompletedProcess(command, 0, "", "")


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A kernel with nothing installed: two site folders (first wins), requirements and pip."""
    sites = [tmp_path / "venv-site", tmp_path / "kernel-site"]
    for site in sites:
        site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site) for site in sites])
    monkeypatch.delitem(sys.modules, "sagemaker", raising=False)
    monkeypatch.delitem(sys.modules, "xgboost", raising=False)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(REQUIREMENTS)
    pip = FakePip(sites[1])
    monkeypatch.setattr(subprocess, "run", pip)
    return types.SimpleNamespace(first=sites[0], site=sites[1], requirements=requirements, pip=pip)


def test_a_satisfied_kernel_never_calls_pip(kernel, capsys):
    add_dist(kernel.site, "sagemaker", "3.28.1")
    add_dist(kernel.site, "xgboost-cpu", "3.2.0")
    done = kernel_setup.ensure(kernel.requirements)
    assert kernel.pip.commands == []
    assert done.present == (("sagemaker", "3.28.1"), ("xgboost-cpu", "3.2.0"))
    assert done.pip_args == () and not done.restart
    out = capsys.readouterr().out
    assert "  already there  sagemaker 3.28.1\n" in out and "Nothing to install" in out
    assert "/" not in out  # no machine paths


def test_only_the_missing_and_the_out_of_range_go_to_pip_as_written(kernel, capsys):
    add_dist(kernel.site, "sagemaker", "2.245.0")  # the SDK v2 a stock kernel may have
    done = kernel_setup.ensure(kernel.requirements)
    (command,) = kernel.pip.commands
    assert command[:5] == [sys.executable, "-m", "pip", "install", "--quiet"]
    assert "--upgrade" not in command and "-U" not in command
    assert kernel.pip.requirements == [["sagemaker>=3.27,<4", "xgboost-cpu==3.2.0"]]
    assert done.installed == (("sagemaker", "3.2.0"), ("xgboost-cpu", "3.2.0"))
    out = capsys.readouterr().out
    assert "to install     sagemaker>=3.27,<4 (this kernel has 2.245.0)" in out
    assert "Installed sagemaker, xgboost-cpu" in out and "/" not in out


def test_one_missing_project_is_all_that_pip_gets(kernel):
    add_dist(kernel.site, "sagemaker", "3.27.0")
    kernel_setup.ensure(kernel.requirements)
    assert kernel.pip.requirements == [["xgboost-cpu==3.2.0"]]


def test_an_xgboost_distribution_of_the_right_version_satisfies_xgboost_cpu(kernel):
    add_dist(kernel.site, "sagemaker", "3.27.0")
    add_dist(kernel.site, "xgboost", "3.2.0")
    done = kernel_setup.ensure(kernel.requirements)
    assert kernel.pip.commands == []
    assert ("xgboost", "3.2.0") in done.present


def test_an_xgboost_distribution_of_another_version_is_replaced_by_xgboost_not_xgboost_cpu(kernel):
    add_dist(kernel.site, "sagemaker", "3.27.0")
    add_dist(kernel.site, "xgboost", "2.1.4")
    done = kernel_setup.ensure(kernel.requirements)
    assert kernel.pip.requirements == [["xgboost==3.2.0"]]
    assert done.installed == (("xgboost", "3.2.0"),)
    assert not list(kernel.site.glob("xgboost_cpu-*"))  # one distribution for the module


def test_the_xgboost_distribution_first_on_the_path_is_the_one_checked(kernel):
    add_dist(kernel.site, "sagemaker", "3.27.0")
    add_dist(kernel.first, "xgboost-cpu", "3.2.0")  # e.g. the lifecycle's venv, ahead
    add_dist(kernel.site, "xgboost", "2.1.4")  # the kernel's own, shadowed
    assert kernel_setup.ensure(kernel.requirements).pip_args == ()

    sys.path.reverse()  # now the old one is what `import xgboost` finds
    assert kernel_setup.ensure(kernel.requirements).pip_args == ("xgboost==3.2.0",)


def test_torch_is_refused_beside_an_accepted_project(kernel, capsys):
    with pytest.raises(ValueError, match=r"torch: not installed from here.*conda_pytorch"):
        kernel_setup.ensure(kernel.requirements, only=("sagemaker", "Torch"))
    assert kernel.pip.commands == []

    kernel_setup.ensure(kernel.requirements, only=("sagemaker",))  # the torch line is not asked
    assert kernel.pip.requirements == [["sagemaker>=3.27,<4"]]


def test_an_unreadable_requirements_line_is_a_clear_error(kernel):
    kernel.requirements.write_text(REQUIREMENTS + "scikit learn>=1.4\n")
    with pytest.raises(ValueError, match=r"txt line 8: cannot read 'scikit learn>=1.4'"):
        kernel_setup.ensure(kernel.requirements)
    assert kernel.pip.commands == []

    kernel.requirements.write_text(REQUIREMENTS + "scikit-learn>=1.4,<2  # fine\n")
    kernel_setup.ensure(kernel.requirements)
    assert len(kernel.pip.commands) == 1


def test_a_project_without_a_line_is_refused_and_one_with_a_line_read(kernel):
    with pytest.raises(ValueError, match="requirements.txt has no line for matplotlib"):
        kernel_setup.read_wanted(kernel.requirements, ("sagemaker", "matplotlib"))
    assert [w.line for w in kernel_setup.read_wanted(kernel.requirements, ("pandas",))] == [
        "pandas>=2.2,<4"
    ]


def test_a_line_whose_marker_does_not_apply_is_skipped(kernel):
    kernel.requirements.write_text(
        'sagemaker>=3.27,<4 ; python_version < "3"\nsagemaker>=3.20 ; python_version >= "3"\n'
    )
    (wanted,) = kernel_setup.read_wanted(kernel.requirements, ("sagemaker",))
    assert wanted.line == 'sagemaker>=3.20 ; python_version >= "3"'


def test_an_sdk_imported_at_another_version_asks_for_a_restart(kernel, monkeypatch, capsys):
    add_dist(kernel.site, "sagemaker", "3.27.0")
    add_dist(kernel.site, "xgboost-cpu", "3.2.0")
    monkeypatch.setitem(sys.modules, "sagemaker", types.SimpleNamespace(__version__="3.27.0"))
    assert not kernel_setup.ensure(kernel.requirements).restart  # imported, and the right one
    assert "restart" not in capsys.readouterr().out

    kernel.requirements.write_text(REQUIREMENTS.replace(">=3.27,<4", ">=3.28,<4"))
    pip = FakePip(kernel.site, version="3.28.0")
    monkeypatch.setattr(subprocess, "run", pip)
    done = kernel_setup.ensure(kernel.requirements)
    assert done.restart and pip.requirements == [["sagemaker>=3.28,<4"]]
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[-1]
        == "sagemaker 3.27.0 was imported before: restart the kernel, then run this again."
    )


def test_an_sdk_installed_meanwhile_by_another_process_asks_for_a_restart(kernel, monkeypatch):
    add_dist(kernel.site, "sagemaker", "3.28.0")  # the lifecycle's background install, say
    add_dist(kernel.site, "xgboost-cpu", "3.2.0")
    monkeypatch.setitem(sys.modules, "sagemaker", types.SimpleNamespace(__version__="2.245.0"))
    done = kernel_setup.ensure(kernel.requirements)
    assert done.restart and kernel.pip.commands == []


def test_a_failing_pip_is_an_error_that_shows_pips_words(kernel, monkeypatch, capsys):
    monkeypatch.setattr(subprocess, "run", FakePip(kernel.site, returncode=1))
    with pytest.raises(
        RuntimeError, match=r"pip could not install sagemaker>=3.27,<4 .*\(exit 1\)"
    ):
        kernel_setup.ensure(kernel.requirements)
    assert "  pip: ERROR: no network" in capsys.readouterr().out


def test_the_lines_command_prints_what_the_cell_would_install_and_refuses_torch(kernel, capsys):
    assert kernel_setup.main(["--lines", "--requirements", str(kernel.requirements)]) == 0
    assert capsys.readouterr().out.splitlines() == ["sagemaker>=3.27,<4", "xgboost-cpu==3.2.0"]
    assert kernel.pip.commands == []

    argv = ["--lines", "--requirements", str(kernel.requirements), "--only", "sagemaker", "torch"]
    assert kernel_setup.main(argv) == 1
    assert "torch: not installed from here" in capsys.readouterr().err


def test_the_courses_requirements_name_the_sdk_and_xgboost():
    wanted = kernel_setup.read_wanted(ROOT / "requirements.txt", kernel_setup.COURSE_PROJECTS)
    assert [w.name for w in wanted][0] == "sagemaker"
    assert {w.name for w in wanted} & {"xgboost", "xgboost-cpu"} and len(wanted) == 2


def test_importing_it_needs_only_the_standard_library():
    probe = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import helpers.kernel_setup"
    done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    broken = subprocess.run(
        [sys.executable, "-S", "-c", probe + "; import packaging"], capture_output=True, text=True
    )
    assert "No module named 'packaging'" in broken.stderr  # -S really hides site-packages
