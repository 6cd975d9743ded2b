"""The packages framework images ship that localcloud lacks: the table and the one-line reason."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib import metadata

import pytest

from localcloud.algorithms import image_kind
from localcloud.hosts.errors import ErrorCapture, failure_text
from localcloud.hosts.image_packages import IMAGE_NAMES, IMAGE_PACKAGES, missing_package_reason
from localcloud.testing import PT_IMAGE, XGB_IMAGE

NO_TORCHVISION = "ModuleNotFoundError: No module named 'torchvision'"
COMMAND = f"{sys.executable} -- train.py"


def _today(exit_code: int, message: str) -> str:
    """The toolkit's text, as failure_text gives it without the image's kind."""
    return failure_text(exit_code, message, COMMAND)


def test_table_kinds_are_the_kinds_of_the_real_images() -> None:
    assert set(IMAGE_PACKAGES) == {image_kind(PT_IMAGE), image_kind(XGB_IMAGE)}
    assert set(IMAGE_NAMES) == set(IMAGE_PACKAGES)


@pytest.mark.parametrize(
    "module", [p.module for packages in IMAGE_PACKAGES.values() for p in packages]
)
def test_every_listed_package_is_missing_from_the_job_interpreter(module: str) -> None:
    # jobs run with this interpreter: a listed package it has would make the reason untrue
    assert importlib.util.find_spec(module) is None


def test_a_package_the_venv_has_is_not_listed() -> None:
    assert importlib.util.find_spec("sagemaker_training") is not None
    listed = {p.module for packages in IMAGE_PACKAGES.values() for p in packages}
    assert "sagemaker_training" not in listed


def test_torchvision_in_a_pytorch_job_is_one_line_naming_the_package_and_the_fix() -> None:
    text = failure_text(1, NO_TORCHVISION, COMMAND, kind="pytorch")
    assert "\n" not in text
    assert text.startswith(NO_TORCHVISION + ": the PyTorch training image ships the torchvision")
    try:
        assert f"torch {metadata.version('torch')}" in text
    except metadata.PackageNotFoundError:  # the Python 3.10 check has no torch
        assert "install the torchvision release built for the torch you install" in text
    assert sys.executable not in text  # no machine path in a FailureReason
    assert text.endswith("or remove the import.")


def test_sagemaker_containers_in_an_xgboost_job_names_the_legacy_toolkit() -> None:
    message = "ModuleNotFoundError: No module named 'sagemaker_containers'"
    text = failure_text(1, message, COMMAND, kind="xgboost")
    assert "\n" not in text
    assert text.startswith(message + ": the XGBoost framework image ships sagemaker-containers")
    assert "SM_MODEL_DIR" in text


def test_an_unrelated_missing_module_keeps_todays_text() -> None:
    message = "ModuleNotFoundError: No module named 'my_helpers'"
    assert failure_text(1, message, COMMAND, kind="pytorch") == _today(1, message)
    assert _today(1, message).startswith("ExecuteUserScriptError:\nExitCode 1\nErrorMessage")


@pytest.mark.parametrize(
    ("kind", "exit_code", "message"),
    [
        (None, 1, NO_TORCHVISION),  # the old call, without the kind
        ("xgboost", 1, NO_TORCHVISION),  # torchvision is not the XGBoost image's
        ("other", 1, NO_TORCHVISION),
        ("pytorch", 1, "ModuleNotFoundError: No module named 'torchvision.ops'"),  # it's there
        ("pytorch", 137, NO_TORCHVISION),  # killed: the import is not why
        ("pytorch", 1, "ImportError: cannot import name 'ops' from 'torchvision'"),
    ],
)
def test_other_failures_keep_todays_text(kind: str | None, exit_code: int, message: str) -> None:
    assert failure_text(exit_code, message, COMMAND, kind=kind) == _today(exit_code, message)
    assert missing_package_reason("pytorch", NO_TORCHVISION) is not None  # the same, done right


def test_the_reason_is_found_behind_torchruns_own_error() -> None:
    message = (
        f"[rank0]: {NO_TORCHVISION}\n"
        " torch.distributed.elastic.multiprocessing.errors.ChildFailedError"
    )
    assert failure_text(1, message, COMMAND, kind="pytorch").startswith(NO_TORCHVISION + ": ")


def test_a_real_failed_import_as_the_capture_keeps_it() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import torchvision"], capture_output=True, text=True, check=False
    )
    capture = ErrorCapture()
    for line in proc.stderr.splitlines(keepends=True):
        capture.feed(line, is_stderr=True)
    text = failure_text(proc.returncode, capture.error_message(), COMMAND, kind="pytorch")
    assert text.startswith(NO_TORCHVISION + ": the PyTorch training image")
