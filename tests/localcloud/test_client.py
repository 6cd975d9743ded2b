"""Client side: redirection, `run`, the kernel, the scaled SDK clock, and a server that is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from localcloud import client, config, control, credentials

PYTHON = sys.executable


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_scaled_clock_runs_faster_for_sleep_and_time(monkeypatch):
    slept: list[float] = []
    real_now = [1_000.0]
    monkeypatch.setattr(client._real_time, "sleep", slept.append)
    monkeypatch.setattr(client._real_time, "time", lambda: real_now[0])
    clock = client.ScaledClock(20)
    clock.sleep(2)
    assert slept == [pytest.approx(0.1)]  # 2 SDK seconds are a tenth of a real second
    clock.sleep(-1)
    assert slept[-1] == 0.0
    real_now[0] += 0.1
    assert clock.time() == pytest.approx(1_000.0 + 0.1 * 20)
    monkeypatch.undo()
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
    assert spec["argv"][1:6] == ["-m", "localcloud", "run", "--keep-server", "--"]
    assert spec["argv"][-5:-1] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]


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


def _hosts_of(job_dir) -> list:
    """Live processes working in the job folder (a host's cwd is its code or host folder)."""
    import psutil

    job_dir = job_dir.resolve()
    found = []
    for proc in psutil.process_iter():
        try:
            cwd = Path(proc.cwd())
        except (psutil.Error, OSError):
            continue
        if cwd.is_relative_to(job_dir) and proc.status() != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def _wait(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _run_child(home, code: str, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(
        [PYTHON, "-m", "localcloud", "run", "--home", str(home), "--", PYTHON, "-c", code, *args],
        cwd=config.REPO_ROOT,
        timeout=180,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_stopping_the_server_leaves_no_host_behind(tmp_path):
    home = tmp_path / "home"
    control.ensure_running(home, _free_port())
    job_dir = home / "jobs" / "orphan-check"
    try:
        _run_child(home, ORPHAN_CHILD, config.role_arn())
        _wait(lambda: _hosts_of(job_dir))  # the check below sees a host while there is one
    finally:
        assert control.stop(home)
    assert _hosts_of(job_dir) == []
    record = json.loads((job_dir / "job.json").read_text())
    assert record["TrainingJobStatus"] == "Stopped"


def test_hosts_of_a_killed_server_are_ended_at_its_next_start(tmp_path):
    import signal

    home = tmp_path / "home"
    port = _free_port()
    control.ensure_running(home, port)
    job_dir = home / "jobs" / "orphan-check"
    try:
        _run_child(home, ORPHAN_CHILD, config.role_arn())
        [host] = _wait(lambda: _hosts_of(job_dir))
        os.kill(control.server_pid(home), signal.SIGKILL)
        time.sleep(0.5)
        assert host.is_running()  # the host outlived its server...
        control.ensure_running(home, port)
        _wait(lambda: not _hosts_of(job_dir), timeout=10)  # ...until the next server started
    finally:
        control.stop(home)
        for proc in _hosts_of(job_dir):
            proc.kill()


JOB_CHILD = """
import io, os, sys, tarfile, time, boto3
name, script = sys.argv[1], sys.argv[2].encode()
s3, sm = boto3.client("s3"), boto3.client("sagemaker")
s3.create_bucket(Bucket=name)
s3.put_object(Bucket=name, Key="data/x.csv", Body=b"1,2\\n")
blob = io.BytesIO()
with tarfile.open(fileobj=blob, mode="w:gz") as tar:
    info = tarfile.TarInfo("train.py")
    info.size = len(script)
    tar.addfile(info, io.BytesIO(script))
s3.put_object(Bucket=name, Key="src/sourcedir.tar.gz", Body=blob.getvalue())
sm.create_training_job(
    TrainingJobName=name,
    AlgorithmSpecification={"TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
                            "pytorch-training:2.1.0-cpu-py310", "TrainingInputMode": "File"},
    RoleArn=os.environ["SAGEMAKER_ROLE"],
    HyperParameters={"sagemaker_program": '"train.py"',
                     "sagemaker_submit_directory": f'"s3://{name}/src/sourcedir.tar.gz"'},
    InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{name}/data"}}}],
    OutputDataConfig={"S3OutputPath": f"s3://{name}/out"},
    ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    StoppingCondition={"MaxRuntimeInSeconds": 600},
)
while True:
    job = sm.describe_training_job(TrainingJobName=name)
    if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
        break
    time.sleep(0.1)
print(job["TrainingJobStatus"], job.get("FailureReason", ""))
"""

WHO_AM_I = """
import os, boto3
s3 = boto3.client("s3")
print("key", os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_PROFILE"))
print("endpoint", s3.meta.endpoint_url)
bucket = os.environ["TRAINING_JOB_NAME"]
print("objects", [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="data/")["Contents"]])
print("identity", boto3.client("sts").get_caller_identity()["Arn"])
"""


def test_jobs_and_server_never_see_the_callers_aws_credentials(tmp_path, monkeypatch):
    real = {
        "AWS_ACCESS_KEY_ID": "AKIAREALUSERKEY12345",
        "AWS_SECRET_ACCESS_KEY": "realUserSecretKey/realUserSecretKey/1234",
        "AWS_PROFILE": "real-user",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "real-credentials"),
    }
    for key, value in real.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LOCALCLOUD_ENDPOINT", raising=False)
    home = tmp_path / "home"
    endpoint = control.ensure_running(home, _free_port())
    try:
        server_env = Path(f"/proc/{control.server_pid(home)}/environ").read_bytes()
        assert b"AKIAREAL" not in server_env and b"real-user" not in server_env
        out = _run_child(home, JOB_CHILD, "who-am-i", WHO_AM_I)
        log = (home / "jobs" / "who-am-i" / "algo-1.log").read_text()
        assert out.startswith("Completed"), out + log
        assert f"key {credentials.load(home).access_key_id} None\n" in log
        assert f"endpoint {endpoint}\n" in log
        assert "objects ['data/x.csv']\n" in log
        assert ":assumed-role/SageMakerCourseExecutionRole/" in log
    finally:
        control.stop(home)


RESTART_CHILD = """
import os, sys, time, sagemaker
print("role", sagemaker.get_execution_role(), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
print("role", sagemaker.get_execution_role(), os.environ["SAGEMAKER_ROLE"], flush=True)
"""


def test_a_client_keeps_its_role_across_a_server_restart(tmp_path):
    home = tmp_path / "home"
    port = _free_port()
    control.ensure_running(home, port)
    flag = tmp_path / "restarted"
    child = subprocess.Popen(
        [PYTHON, "-m", "localcloud", "run", "--home", str(home), "--"]
        + [PYTHON, "-c", RESTART_CHILD, str(flag)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.REPO_ROOT,
    )
    try:
        line = child.stdout.readline()
        while line and not line.startswith("role "):  # the SDK prints its own INFO lines
            line = child.stdout.readline()
        assert line.split() == ["role", config.role_arn()]
        assert control.stop(home)
        control.ensure_running(home, port)
        flag.write_text("go")
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
        control.stop(home)
    assert child.returncode == 0, err
    [line] = [x for x in out.splitlines() if x.startswith("role ")]
    assert line.split() == ["role", config.role_arn(), config.role_arn()]


def test_a_busy_derived_port_moves_the_server_to_the_next(tmp_path):
    import socket

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("LOCALCLOUD_PORT", "LOCALCLOUD_HOME")}
    derived = config.default_port(home) if "LOCALCLOUD_PORT" not in os.environ else None
    if derived is None:
        pytest.skip("LOCALCLOUD_PORT is set for this test run")
    assert config.PORT_RANGE[1] < 32768  # below Linux's ephemeral range
    cli = [PYTHON, "-m", "localcloud"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", derived))
        busy.listen()
        try:
            started = subprocess.run(
                [*cli, "start", "--home", str(home)], env=env, capture_output=True, text=True
            )
            assert started.returncode == 0, started.stderr
            status = subprocess.run(
                [*cli, "status", "--home", str(home)], env=env, capture_output=True, text=True
            )
        finally:
            control.stop(home)
    used = int((home / "server.port").read_text()) if (home / "server.port").exists() else None
    assert status.returncode == 0, status.stdout
    port = int(status.stdout.split("http://127.0.0.1:")[1].split()[0])
    assert derived < port < derived + config.PORT_TRIES
    assert used in (None, port)
