"""PyTorch script-mode jobs: importing torchvision fails in one line; torch alone completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _lc_jobs import describe, unique, upload_train, wait_for, write_script

pytestmark = pytest.mark.localcloud


def _run_pytorch_job(session: Any, source_dir: Path) -> dict[str, Any]:
    """Start a v2 PyTorch estimator's job and return its description once it has ended."""
    from sagemaker.pytorch import PyTorch

    estimator = PyTorch(
        entry_point="train.py",
        source_dir=str(source_dir),
        framework_version="2.1.0",
        py_version="py310",
        role=session.get_caller_identity_arn(),
        instance_count=1,
        instance_type="ml.m5.large",
        sagemaker_session=session,
    )
    estimator.fit({"train": upload_train(session, unique("pkgs"))}, wait=False)
    name = estimator.latest_training_job.name
    return wait_for(
        lambda: (d := describe(session, name))["TrainingJobStatus"] != "InProgress" and d,
        timeout=180,
    )


def test_a_torch_only_script_completes(sm_session: Any, tmp_path: Path) -> None:
    source = write_script(tmp_path / "src", "import torch\nprint(torch.ones(2).sum())\n")
    job = _run_pytorch_job(sm_session, source)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")


def test_importing_torchvision_fails_in_one_line_and_logs_the_traceback(
    sm_session: Any, localcloud_server: Any, tmp_path: Path
) -> None:
    source = write_script(tmp_path / "src", "import torch\nimport torchvision\n")
    job = _run_pytorch_job(sm_session, source)
    reason = job.get("FailureReason", "")
    assert job["TrainingJobStatus"] == "Failed"
    assert reason.startswith(
        "AlgorithmError: ModuleNotFoundError: No module named 'torchvision': "
        "the PyTorch training image ships the torchvision"
    ), reason
    assert "\n" not in reason
    assert reason.endswith("or remove the import.")
    log = (localcloud_server.home / "jobs" / job["TrainingJobName"] / "algo-1.log").read_text()
    assert "Traceback (most recent call last)" in log
    assert "import torchvision" in log


def test_another_missing_module_keeps_the_toolkits_text(sm_session: Any, tmp_path: Path) -> None:
    source = write_script(tmp_path / "src", "import torch\nimport my_course_helpers\n")
    job = _run_pytorch_job(sm_session, source)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1")
    assert "No module named 'my_course_helpers'" in job["FailureReason"]
