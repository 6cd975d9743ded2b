"""Client side: redirection, `run`, the kernel, the scaled SDK clock, and a server that is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from localcloud import client, config
from localcloud.server import control

PYTHON = sys.executable


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_scaled_clock_runs_faster_for_sleep_and_time():
    clock = client.ScaledClock(20)
    before_real, before_scaled = time.time(), clock.time()
    clock.sleep(2)
    real, scaled = time.time() - before_real, clock.time() - before_scaled
    assert real < 0.5
    assert scaled == pytest.approx(real * 20, rel=0.2)
    assert clock.strftime("%Y") == time.strftime("%Y")


@pytest.mark.localcloud
def test_only_the_sdk_clock_is_scaled(localcloud_server):
    import sagemaker.session

    assert isinstance(sagemaker.session.time, client.ScaledClock)
    assert time.sleep.__module__ == "time"


@pytest.mark.localcloud
def test_run_redirects_a_child_and_returns_its_exit_code(localcloud_server):
    code = textwrap.dedent("""
        import boto3, os, sys
        print(boto3.client("sts").get_caller_identity()["Arn"])
        print(os.environ["NOTEBOOK_INSTANCE_NAME"])
        print(os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"])
        sys.exit(3)
        """)
    done = subprocess.run(
        [
            PYTHON,
            "-m",
            "localcloud",
            "run",
            "--home",
            str(localcloud_server.home),
            "--",
            PYTHON,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        cwd=config.REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    arn, notebook, sdk_config = done.stdout.split()
    assert ":assumed-role/SageMakerCourseExecutionRole/" in arn
    assert notebook == "localcloud-notebook"
    with open(sdk_config) as handle:
        assert "TelemetryOptOut: true" in handle.read()


def test_kernel_spec_runs_ipykernel_through_localcloud_run(tmp_path, monkeypatch):
    from localcloud import kernel

    monkeypatch.setattr(kernel, "kernels_dir", lambda user=False: tmp_path)
    folder = kernel.install_kernel()
    spec = json.loads((folder / "kernel.json").read_text())
    assert folder.name == "localcloud"
    assert spec["display_name"] == "Python 3 (localcloud)"
    assert spec["argv"][1:5] == ["-m", "localcloud", "run", "--"]
    assert spec["argv"][-4:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]


@pytest.mark.localcloud
def test_kernel_sessions_talk_to_localcloud(localcloud_server, tmp_path, monkeypatch):
    from jupyter_client.manager import start_new_kernel

    from localcloud import kernel

    monkeypatch.setattr(kernel, "kernels_dir", lambda user=False: tmp_path / "kernels")
    kernel.install_kernel()
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    manager, kc = start_new_kernel(kernel_name="localcloud", startup_timeout=120)
    try:
        reply = kc.execute_interactive(
            "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])", timeout=60
        )
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_stopped_server_gives_one_clear_message(tmp_path):
    home = tmp_path / "home"
    endpoint = control.ensure_running(home, _free_port())
    flag = tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, time, boto3
        sm = boto3.client("sagemaker")
        sm.list_training_jobs()
        print("ready", flush=True)
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.05)
        try:
            sm.list_training_jobs()
        except Exception as exc:
            print(type(exc).__name__ + ": " + str(exc))
        """)
    child = subprocess.Popen(
        [PYTHON, "-m", "localcloud", "run", "--home", str(home), "--", PYTHON, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.REPO_ROOT,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        assert control.stop(home)
        flag.write_text("go")
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert out.strip() == "LocalcloudNotRunning: " + client.not_running_message(endpoint)
    assert "Retrying" not in err and "urllib3" not in err
    status = subprocess.run(
        [PYTHON, "-m", "localcloud", "status", "--home", str(home)],
        capture_output=True,
        text=True,
        cwd=config.REPO_ROOT,
        env={**os.environ},
    )
    assert status.returncode == 1
    assert "not running" in status.stdout


ORPHAN_CHILD = """
import io, json, sys, tarfile, time, boto3
s3, sm = boto3.client("s3"), boto3.client("sagemaker")
s3.create_bucket(Bucket="orphans")
s3.put_object(Bucket="orphans", Key="data/x.csv", Body=b"1,2\\n")
script = b"import time\\nprint('sleeping', flush=True)\\ntime.sleep(120)\\n"
blob = io.BytesIO()
with tarfile.open(fileobj=blob, mode="w:gz") as tar:
    info = tarfile.TarInfo("train.py")
    info.size = len(script)
    tar.addfile(info, io.BytesIO(script))
s3.put_object(Bucket="orphans", Key="src/sourcedir.tar.gz", Body=blob.getvalue())
sm.create_training_job(
    TrainingJobName="orphan-check",
    AlgorithmSpecification={"TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                            "sagemaker-xgboost:1.7-1", "TrainingInputMode": "File"},
    RoleArn=sys.argv[1],
    HyperParameters={"sagemaker_program": '"train.py"',
                     "sagemaker_submit_directory": '"s3://orphans/src/sourcedir.tar.gz"'},
    InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": "s3://orphans/data"}}}],
    OutputDataConfig={"S3OutputPath": "s3://orphans/out"},
    ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    StoppingCondition={"MaxRuntimeInSeconds": 600},
)
while sm.describe_training_job(TrainingJobName="orphan-check")["SecondaryStatus"] != "Training":
    time.sleep(0.1)
"""


def test_stopping_the_server_leaves_no_host_behind(tmp_path):
    import psutil

    home = tmp_path / "home"
    control.ensure_running(home, _free_port())
    try:
        subprocess.run(
            [
                PYTHON,
                "-m",
                "localcloud",
                "run",
                "--home",
                str(home),
                "--",
                PYTHON,
                "-c",
                ORPHAN_CHILD,
                config.role_arn(),
            ],
            check=True,
            cwd=config.REPO_ROOT,
            timeout=120,
            capture_output=True,
        )
        job_dir = home / "jobs" / "orphan-check"
        deadline = time.monotonic() + 30
        while not (job_dir / "algo-1.log").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        assert control.stop(home)
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(job_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
    record = json.loads((job_dir / "job.json").read_text())
    assert record["TrainingJobStatus"] == "Stopped"
