"""What a learner made outlives the server; one server per state folder; `run` tidies up."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import psutil
import pytest

from localcloud import config, control, credentials
from localcloud.jobs.records import LOST_REASON
from localcloud.testing import source_tar, wait_for

pytestmark = pytest.mark.localcloud
PYTHON = sys.executable
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _clients(home: Path, endpoint: str) -> tuple[Any, Any]:
    session = credentials.load(home).boto_session()
    return session.client("s3", endpoint_url=endpoint), session.client(
        "sagemaker", endpoint_url=endpoint
    )


def _start_job(home: Path, endpoint: str, name: str, script: str) -> None:
    s3, sm = _clients(home, endpoint)
    bucket = "restart-tests"
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    archive = source_tar({"train.py": script})
    s3.put_object(Bucket=bucket, Key=f"{name}/sourcedir.tar.gz", Body=archive)
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=config.role_arn(),
        HyperParameters={
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": f'"s3://{bucket}/{name}/sourcedir.tar.gz"',
        },
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/{name}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        Tags=[{"Key": "owner", "Value": "tests"}],
    )


def _status(sm: Any, name: str) -> dict[str, Any]:
    return sm.describe_training_job(TrainingJobName=name)


def _model_bytes(home: Path, endpoint: str, description: dict[str, Any]) -> bytes:
    s3, _ = _clients(home, endpoint)
    bucket, _, key = description["ModelArtifacts"]["S3ModelArtifacts"][5:].partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _hosts_of(job_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if Path(proc.cwd()).is_relative_to(job_dir) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def test_jobs_survive_a_stop_and_a_crash_and_a_running_one_is_reported_lost(tmp_path):
    home = tmp_path / "home"
    port = _free_port()
    endpoint = control.ensure_running(home, port)
    try:
        _start_job(home, endpoint, "done-before", "print('trained', flush=True)\n")
        _, sm = _clients(home, endpoint)
        wait_for(lambda: _status(sm, "done-before")["TrainingJobStatus"] == "Completed", 120)
        arn = _status(sm, "done-before")["TrainingJobArn"]
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "accuracy", "Value": "0.8"}])
        before = _status(sm, "done-before")
        model_before = _model_bytes(home, endpoint, before)
        with tarfile.open(fileobj=io.BytesIO(model_before)) as archive:
            assert archive.getnames() == []  # the script saved no model: an empty archive

        assert control.stop(home)
        endpoint = control.ensure_running(home, port)
        _, sm = _clients(home, endpoint)
        after = _status(sm, "done-before")
        for key in ("TrainingJobStatus", "ModelArtifacts", "SecondaryStatusTransitions"):
            assert after[key] == before[key], key
        tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}
        assert tags == {"owner": "tests", "accuracy": "0.8"}
        assert _model_bytes(home, endpoint, after) == model_before

        _start_job(
            home, endpoint, "cut-short", "import time\nprint('up', flush=True)\ntime.sleep(300)\n"
        )
        wait_for(lambda: _status(sm, "cut-short")["SecondaryStatus"] == "Training", 120)
        job_dir = home / "jobs" / "cut-short"
        wait_for(lambda: _hosts_of(job_dir), 60)
        os.kill(control.server_pid(home), signal.SIGKILL)  # a crash: nothing is tidied

        endpoint = control.ensure_running(home, port)
        _, sm = _clients(home, endpoint)
        lost = _status(sm, "cut-short")
        assert (lost["TrainingJobStatus"], lost["FailureReason"]) == ("Failed", LOST_REASON)
        assert wait_for(lambda: _hosts_of(job_dir) == [], 30)
        assert _status(sm, "done-before")["TrainingJobStatus"] == "Completed"
        names = [j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]]
        assert sorted(names) == ["cut-short", "done-before"]
    finally:
        control.stop(home)


def test_a_second_server_for_the_folder_refuses_and_touches_nothing(tmp_path):
    home = tmp_path / "home"
    endpoint = control.ensure_running(home, _free_port())
    try:
        _start_job(home, endpoint, "keeps-going", "import time\ntime.sleep(3)\nprint('done')\n")
        _, sm = _clients(home, endpoint)
        wait_for(lambda: _status(sm, "keeps-going")["SecondaryStatus"] == "Training", 120)
        pid_before = control.server_pid(home)
        second = subprocess.run(
            [PYTHON, "-m", "localcloud", "serve", "--home", str(home), "--port", str(_free_port())],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert "already serving" in second.stderr
        assert control.server_pid(home) == pid_before
        wait_for(lambda: _status(sm, "keeps-going")["TrainingJobStatus"] != "InProgress", 120)
        assert _status(sm, "keeps-going")["TrainingJobStatus"] == "Completed"
    finally:
        control.stop(home)


def test_run_stops_the_server_it_started_and_keeps_one_that_was_running(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "LOCALCLOUD_PORT": str(_free_port())}
    code = "import boto3, sys; boto3.client('sts').get_caller_identity(); sys.exit(3)"
    alone = subprocess.run(
        [PYTHON, "-m", "localcloud", "run", "--home", str(home), "--", PYTHON, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert alone.returncode == 3, alone.stderr  # the command's exit code
    assert "it stops when the command ends" in alone.stderr
    assert control.running_endpoint(home) is None

    endpoint = control.ensure_running(home, _free_port())
    try:
        shared = subprocess.run(
            [PYTHON, "-m", "localcloud", "run", "--home", str(home), "--", PYTHON, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shared.returncode == 3
        assert "started a server" not in shared.stderr
        assert control.running_endpoint(home) == endpoint
    finally:
        control.stop(home)


def test_clean_keeps_folders_whose_hosts_may_still_run(tmp_path):
    home = tmp_path / "home"
    jobs = home / "jobs"
    for name, status, recorded in (
        ("ended", "Completed", False),
        ("ended-with-hosts", "Failed", True),
        ("running", "InProgress", False),
    ):
        (jobs / name).mkdir(parents=True)
        (jobs / name / "job.json").write_text(f'{{"TrainingJobStatus": "{status}"}}')
        if recorded:
            (jobs / name / ".host-groups").mkdir()
            (jobs / name / ".host-groups" / "123").write_text("x")
    out = subprocess.run(
        [PYTHON, "-m", "localcloud", "clean", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in jobs.iterdir()) == ["ended-with-hosts", "running"]
    assert "removed 1 job folder(s), kept 2" in out.stdout


FIT_CHILD = """
import sys, tempfile, time
from pathlib import Path
import sagemaker
from sagemaker.xgboost import XGBoost

session = sagemaker.Session()
source = Path(tempfile.mkdtemp())
(source / "train.py").write_text("import time\\nprint('training', flush=True)\\ntime.sleep(300)\\n")
estimator = XGBoost(entry_point="train.py", source_dir=str(source), framework_version="1.7-1",
                    role=sagemaker.get_execution_role(), instance_count=1,
                    instance_type="ml.m5.large", sagemaker_session=session, max_run=600)
print("fitting", flush=True)
try:
    estimator.fit(wait=True, logs=True)
except Exception as exc:
    print(f"\\nfit ended: {type(exc).__name__}: {exc}", flush=True)
    sys.exit(4)
"""


def test_a_fit_waiting_on_a_job_hears_in_one_line_that_the_server_is_gone(tmp_path):
    home = tmp_path / "home"
    control.ensure_running(home, _free_port())
    child = subprocess.Popen(
        [PYTHON, "-m", "localcloud", "run", "--home", str(home), "--", PYTHON, "-c", FIT_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        while "training" not in "".join(lines):  # the job's own line, tailed by fit()
            line = child.stdout.readline()
            assert line, child.stderr.read()
            lines.append(line)
        os.kill(control.server_pid(home), signal.SIGKILL)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
        control.ensure_running(home)  # ends the host the crash left, then stop
        control.stop(home)
    assert child.returncode == 4, out + err
    said = out.strip().splitlines()[-1]
    assert said.startswith("fit ended: LocalcloudNotRunning: localcloud is not running at"), said
    assert "python -m localcloud start" in said
    assert "Traceback" not in err
