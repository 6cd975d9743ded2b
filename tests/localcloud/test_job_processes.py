"""Every process a training job starts ends with the job: daemons, setsid children, pipe holders."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from _lc_jobs import describe, unique, upload_train, wait_for, write_script, xgboost_estimator

from localcloud.hosts import process
from localcloud.hosts.cluster import Cluster
from localcloud.jobs.manager import JobManager
from localcloud.testing import PT_IMAGE, FolderS3, source_tar

LINUX = sys.platform.startswith("linux")
BEAT_S = 15  # a daemon's heartbeat: each job must have ended before any daemon's second one

# Writes its pid, then a heartbeat (to a file, and to stdout with "stdout") every BEAT_S.
DAEMON = f"""
import os, signal, sys, time
name, probe, *flags = sys.argv[1:]
if "ignore-term" in flags:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(f"{{probe}}/{{name}}.tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(f"{{probe}}/{{name}}.tmp", f"{{probe}}/{{name}}.pid")
beat = 0
while True:
    beat += 1
    with open(f"{{probe}}/{{name}}.beats", "a") as f:
        f.write(f"beat {{beat}}\\n")
    if "stdout" in flags:
        print(f"{{name}} beat {{beat}}", flush=True)
    time.sleep({BEAT_S})
"""

# Starts every kind of leftover, waits until each has written its pid, then ends as END says.
TRAIN = """
import os, subprocess, sys, time
probe = os.environ["PROBE_DIR"]
daemon = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "daemon.py")]
names = ["double-fork", "setsid-stdout", "ignores-term", "stdout-child"]
if os.fork() == 0:  # the classic daemon: fork, setsid, fork, stdio to /dev/null
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.execv(sys.executable, [*daemon, "double-fork", probe])
    os._exit(0)
os.wait()
subprocess.Popen([*daemon, "setsid-stdout", probe, "stdout"], start_new_session=True)
subprocess.Popen([*daemon, "ignores-term", probe, "ignore-term"])
subprocess.Popen([*daemon, "stdout-child", probe, "stdout"])
if sys.platform.startswith("linux"):  # no token, no group: only the process tree tells
    names.append("bare")
    subprocess.Popen([*daemon, "bare", probe, "stdout"], env={}, start_new_session=True)
while not all(os.path.exists(f"{probe}/{n}.pid") for n in names):
    time.sleep(0.05)
print("daemons up", flush=True)
time.sleep(float(os.environ["HOLD_S"]))
if os.environ["END"] == "fail":
    raise RuntimeError("failed on purpose")
print("main done", flush=True)
"""

NAMES = ["double-fork", "setsid-stdout", "ignores-term", "stdout-child"] + (["bare"] * LINUX)


def job_request(s3: FolderS3, name: str, env: dict[str, str], train: str = TRAIN) -> dict:
    """A complete CreateTrainingJob request of a script-mode job over the folder S3."""
    s3.put("bkt", f"{name}/source.tar.gz", source_tar({"train.py": train, "daemon.py": DAEMON}))
    s3.put("bkt", "train/data.csv", "1,2\n")
    return {
        "TrainingJobName": name,
        "Region": "us-east-1",
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "AlgorithmSpecification": {"TrainingImage": PT_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": f'"s3://bkt/{name}/source.tar.gz"',
        },
        "Environment": env,
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


class Logs:
    """A log_sink that keeps every line per host."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}

    def __call__(self, host: str, line: str) -> None:
        self.lines.setdefault(host, []).append(line)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def pids(probe: Path) -> dict[str, int]:
    return {n: int((probe / f"{n}.pid").read_text()) for n in NAMES}


def beats(probe: Path) -> dict[str, int]:
    """How many heartbeats each daemon has written so far."""
    return {n: len((probe / f"{n}.beats").read_text().splitlines()) for n in NAMES}


def assert_all_ended(probe: Path, at_end: dict[str, int]) -> None:
    """Every daemon is gone, and the job had ended before any daemon's second heartbeat."""
    started = pids(probe)
    wait_for(lambda: not [n for n, pid in started.items() if alive(pid)], timeout=15)
    assert at_end == {n: 1 for n in NAMES}
    assert beats(probe) == at_end  # nothing beat after the end either


@pytest.fixture
def s3(tmp_path: Path) -> FolderS3:
    return FolderS3(tmp_path / "s3")


@pytest.mark.parametrize("end", ["completed", "failed", "stopped"])
def test_no_process_outlives_the_job(tmp_path: Path, s3: FolderS3, end: str) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    hold = "120" if end == "stopped" else "1.5"  # 1.5 s: the tree watcher sees every daemon
    env = {"PROBE_DIR": str(probe), "HOLD_S": hold, "END": "fail" if end == "failed" else "ok"}
    logs = Logs()
    cluster = Cluster(job_request(s3, "job", env), tmp_path / "job", s3, logs)
    cluster.prepare()
    cluster.start()
    if end == "stopped":
        wait_for(lambda: "daemons up" in logs.lines.get("algo-1", []), timeout=60)
        cluster.stop(grace_s=2)
    assert cluster.wait(60), "the job's end was held open"
    at_end, lines = beats(probe), list(logs.lines["algo-1"])
    assert_all_ended(probe, at_end)
    assert logs.lines["algo-1"] == lines  # no line after the end reached the log
    assert not any("beat 2" in line for line in lines)
    assert list((tmp_path / "job" / process.HOSTS_RECORD).iterdir()) == []
    outcome = cluster.outcome()
    if end == "completed":
        assert outcome.exit_codes == [0] and "main done" in lines
        assert lines[-1].endswith("Reporting training SUCCESS")
    elif end == "failed":
        assert outcome.exit_codes == [1] and "failed on purpose" in outcome.failure_reason
    else:
        assert outcome.exit_codes == [-15] and outcome.failure_reason is None


def test_output_of_a_normal_job_is_complete(tmp_path: Path, s3: FolderS3) -> None:
    train = """
    import subprocess, sys
    for i in range(3000):
        print(f"line {i}")
    subprocess.run([sys.executable, "-c", "print('child finished')"], check=True)
    print("last line", file=sys.stderr)
    """
    logs = Logs()
    cluster = Cluster(job_request(s3, "job", {}, train), tmp_path / "job", s3, logs)
    cluster.prepare()
    cluster.start()
    assert cluster.wait(60) and cluster.outcome().exit_codes == [0]
    printed = [line for line in logs.lines["algo-1"] if line.startswith("line ")]
    assert printed == [f"line {i}" for i in range(3000)]
    assert "child finished" in logs.lines["algo-1"] and "last line" in logs.lines["algo-1"]


ESCAPE = """
import os, subprocess, sys
tick = (
    "import os, sys, time\\n"
    "for i in range(600):\\n"
    "    print('escapee tick', i, flush=True)\\n"
    "    open(sys.argv[1], 'a').write(f'{i}\\\\n')\\n"
    "    time.sleep(0.1)\\n"
)
probe = os.environ["PROBE_DIR"]
child = subprocess.Popen([sys.executable, "-c", tick, f"{probe}/ticks"], env={},
                         start_new_session=True)
open(f"{probe}/escapee.pid", "w").write(str(child.pid))
"""


def test_a_pipe_holder_without_token_or_group_is_ended(tmp_path: Path, s3: FolderS3) -> None:
    # No token, no group, gone from the tree before the tree is looked at: on Linux the pipe it
    # holds gives it away; elsewhere it may escape, but neither holds the end open past the
    # readers' limit nor writes into the log after the end.
    probe = tmp_path / "probe"
    probe.mkdir()
    logs = Logs()
    request = job_request(s3, "job", {"PROBE_DIR": str(probe)}, ESCAPE)
    cluster = Cluster(request, tmp_path / "job", s3, logs)
    cluster.prepare()
    cluster.start()
    pid_file, ticks = probe / "escapee.pid", probe / "ticks"
    escapee = psutil.Process(int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30)))
    count = lambda: len(ticks.read_text().splitlines()) if ticks.exists() else 0  # noqa: E731
    try:
        assert cluster.wait(60) and cluster.outcome().exit_codes == [0]
        lines = list(logs.lines["algo-1"])
        at_end = count()
        assert lines[-1].endswith("Reporting training SUCCESS")
        if LINUX:
            wait_for(lambda: not alive(escapee.pid), timeout=15)
            assert count() == at_end
        else:  # it escaped: it goes on writing, and none of it is logged
            wait_for(lambda: count() > at_end + 3, 30)
        assert logs.lines["algo-1"] == lines
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            escapee.kill()


def _manager(tmp_path: Path, s3: FolderS3) -> JobManager:
    return JobManager(tmp_path / "jobs", s3, lambda *_: None, stop_grace_s=2)


def _finished(mgr: JobManager, name: str) -> dict:
    def done() -> dict | None:
        job = mgr.describe(name)
        return job if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") else None

    return wait_for(done, timeout=90)


def test_max_runtime_ends_every_process(tmp_path: Path, s3: FolderS3) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    mgr = _manager(tmp_path, s3)
    request = job_request(s3, "slow", {"PROBE_DIR": str(probe), "HOLD_S": "120", "END": "ok"})
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = 8
    mgr.create(request, "us-east-1", "123456789012")
    job = _finished(mgr, "slow")
    at_end = beats(probe)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert_all_ended(probe, at_end)
    log = (tmp_path / "jobs" / "slow" / "algo-1.log").read_text()
    assert "daemons up" in log and "beat 2" not in log


def test_manager_shutdown_ends_every_process(tmp_path: Path, s3: FolderS3) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    mgr = _manager(tmp_path, s3)
    env = {"PROBE_DIR": str(probe), "HOLD_S": "120", "END": "ok"}
    mgr.create(job_request(s3, "long", env), "us-east-1", "123456789012")
    wait_for(lambda: all((probe / f"{n}.pid").exists() for n in NAMES), timeout=60)
    mgr.shutdown()  # what the server does on `localcloud stop`
    job = mgr.describe("long")
    at_end = beats(probe)
    assert job["TrainingJobStatus"] == "Stopped"
    assert_all_ended(probe, at_end)


SLEEPER = "import time\nwhile True:\n    time.sleep(1)\n"


def _orphan(env: dict[str, str]) -> psutil.Process:
    """A sleeper in a session of its own whose parent has exited, as a dead server leaves it."""
    spawn = (
        "import subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}], start_new_session=True,\n"
        "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", spawn], env=env, capture_output=True, text=True, check=True
    )
    return psutil.Process(int(out.stdout))


def test_restart_ends_token_marked_daemons_only(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    token = "0123456789abcdef" * 2
    base = {k: v for k, v in os.environ.items() if k != process.TOKEN_VAR}
    marked = _orphan({**base, process.TOKEN_VAR: token})
    other_token = _orphan({**base, process.TOKEN_VAR: token + "0"})
    unrelated = _orphan(base)
    try:
        # control: a record without the token ends nothing
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            text=True,
            capture_output=True,
            check=True,
        )
        pgid = int(dead.stdout)  # a group that is gone: only the token can find its daemons
        records = jobs / "job" / process.HOSTS_RECORD
        records.mkdir(parents=True)
        (records / str(pgid)).write_text(json.dumps({"started": 1.0, "token": ""}))
        assert process.kill_recorded_hosts(jobs) == [] and alive(marked.pid)
        (records / str(pgid)).write_text(json.dumps({"started": 1.0, "token": token}))
        assert process.kill_recorded_hosts(jobs) == [pgid]
        wait_for(lambda: not alive(marked.pid), timeout=15)
        assert alive(other_token.pid) and alive(unrelated.pid)
        assert list(records.iterdir()) == []
    finally:
        for proc in (marked, other_token, unrelated):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


STOP_SCRIPT = """
import os, subprocess, sys, time
probe = os.environ["PROBE_DIR"]
daemon = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "daemon.py")]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [*daemon, "double-fork", probe])
    os._exit(0)
os.wait()
subprocess.Popen([*daemon, "setsid-stdout", probe, "stdout"], start_new_session=True)
time.sleep(120)
"""


@pytest.mark.localcloud
def test_stop_through_the_server_ends_daemons(sm_session, localcloud_server, tmp_path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    source = write_script(tmp_path / "src", STOP_SCRIPT)
    (source / "daemon.py").write_text(DAEMON)
    estimator = xgboost_estimator(sm_session, source, environment={"PROBE_DIR": str(probe)})
    estimator.fit({"train": upload_train(sm_session, unique("daemons"))}, wait=False)
    name = estimator.latest_training_job.name
    names = ["double-fork", "setsid-stdout"]
    wait_for(lambda: all((probe / f"{n}.pid").exists() for n in names), timeout=60)
    started = {n: int((probe / f"{n}.pid").read_text()) for n in names}
    assert all(alive(pid) for pid in started.values())
    sm_session.sagemaker_client.stop_training_job(TrainingJobName=name)
    wait_for(lambda: describe(sm_session, name)["TrainingJobStatus"] == "Stopped", timeout=60)
    at_end = {n: len((probe / f"{n}.beats").read_text().splitlines()) for n in names}
    wait_for(lambda: not [pid for pid in started.values() if alive(pid)], timeout=15)
    assert at_end == {n: 1 for n in names}
    log = (localcloud_server.home / "jobs" / name / "algo-1.log").read_text()
    assert "setsid-stdout beat 1" in log and "beat 2" not in log
