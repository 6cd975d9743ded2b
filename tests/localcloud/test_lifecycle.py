"""Job lifecycle: statuses, messages, queueing, stop and max runtime (unit and through the SDK)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from _lc_jobs import describe, unique, upload_train, wait_for, write_script, xgboost_estimator

from localcloud.jobs.manager import JobManager


class FakeS3:
    """S3Access over a dict."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def list_keys(self, bucket, prefix):
        return sorted(k for k in self.keys if k.startswith(prefix))

    def download(self, bucket, key, dest):
        raise NotImplementedError

    def upload(self, src, bucket, key):
        self.keys.append(key)


class FakeOutcome:
    def __init__(self, codes, reason):
        self.exit_codes = codes
        self.failure_reason = reason


class FakeCluster:
    """Hosts that 'train' for `seconds` unless stopped; configurable failures."""

    seconds = 0.3
    prepare_error: str | None = None
    fail_with: str | None = None

    def __init__(self, request, job_dir, s3, log_sink):
        self.log_sink = log_sink
        self.done = threading.Event()
        self.stopped = False

    def prepare(self):
        if self.prepare_error:
            raise RuntimeError(self.prepare_error)

    def start(self):
        self.log_sink("algo-1", "epoch\t1")
        threading.Timer(self.seconds, self.done.set).start()

    def wait(self, timeout):
        return self.done.wait(timeout)

    def stop(self, grace_s):
        self.stopped = True
        self.done.set()

    def outcome(self):
        if self.fail_with:
            return FakeOutcome([1], self.fail_with)
        return FakeOutcome([-15 if self.stopped else 0], None)

    def collect(self, s3, output):
        return f"{output}/job/output/model.tar.gz"


def request(name: str, max_runtime: int = 3600, **extra):
    body = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }
    body.update(extra)
    return body


def manager(tmp_path: Path, cluster: type = FakeCluster, max_running: int = 4) -> JobManager:
    events: list[tuple[str, str]] = []
    mgr = JobManager(
        tmp_path,
        FakeS3(["train/x.csv"]),
        lambda region, stream, ts, msg: events.append((stream, msg)),
        max_running=max_running,
        stop_grace_s=0.1,
        cluster_factory=cluster,
    )
    mgr.events = events  # type: ignore[attr-defined]
    return mgr


def finished(mgr: JobManager, name: str) -> dict:
    return wait_for(
        lambda: (
            (d := mgr.describe(name))["TrainingJobStatus"] in ("Completed", "Failed", "Stopped")
            and d
        ),
        timeout=10,
    )


def statuses(job: dict) -> list[tuple[str, str]]:
    return [(t["Status"], t["StatusMessage"]) for t in job["SecondaryStatusTransitions"]]


def test_completed_job_goes_through_every_secondary_status(tmp_path):
    mgr = manager(tmp_path)
    mgr.create(request("ok"), "us-east-1", "123456789012")
    job = finished(mgr, "ok")
    assert statuses(job) == [
        ("Starting", "Starting the training job"),
        ("Starting", "Preparing the instances for training"),
        ("Downloading", "Downloading input data"),
        ("Training", "Training image download completed. Training in progress."),
        ("Uploading", "Uploading generated training model"),
        ("Completed", "Training job completed"),
    ]
    assert all("EndTime" in t for t in job["SecondaryStatusTransitions"])
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/output/model.tar.gz")
    assert job["TrainingTimeInSeconds"] == job["BillableTimeInSeconds"] == 1
    stream, message = mgr.events[0]  # type: ignore[attr-defined]
    assert stream == f"ok/algo-1-{int(job['TrainingStartTime'])}"
    assert message == "epoch#0111"
    assert (tmp_path / "ok" / "algo-1.log").read_text() == "epoch\t1\n"


def test_prepare_error_fails_the_job_with_its_text(tmp_path):
    class Broken(FakeCluster):
        prepare_error = "ClientError: Data download failed: nope"

    mgr = manager(tmp_path, Broken)
    mgr.create(request("bad"), "us-east-1", "123456789012")
    job = finished(mgr, "bad")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: Data download failed: nope"
    assert statuses(job)[-1] == ("Failed", "Training job failed")


def test_algorithm_error_goes_through_uploading_then_failed(tmp_path):
    class Raises(FakeCluster):
        fail_with = "AlgorithmError: ExecuteUserScriptError:\nExitCode 1"

    mgr = manager(tmp_path, Raises)
    mgr.create(request("raises"), "us-east-1", "123456789012")
    job = finished(mgr, "raises")
    assert [s for s, _ in statuses(job)][-2:] == ["Uploading", "Failed"]
    assert job["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError:")
    assert "ModelArtifacts" not in job


def test_stop_ends_stopped_with_the_model(tmp_path):
    class Long(FakeCluster):
        seconds = 30

    mgr = manager(tmp_path, Long)
    mgr.create(request("long"), "us-east-1", "123456789012")
    wait_for(lambda: mgr.describe("long")["SecondaryStatus"] == "Training")
    mgr.stop("long")
    assert mgr.describe("long")["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = finished(mgr, "long")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [s for s, _ in statuses(job)][-2:] == ["Stopping", "Stopped"]
    assert "S3ModelArtifacts" in job["ModelArtifacts"]


def test_max_runtime_ends_stopped_max_runtime_exceeded(tmp_path):
    class Long(FakeCluster):
        seconds = 30

    mgr = manager(tmp_path, Long)
    mgr.create(request("slow", max_runtime=1), "us-east-1", "123456789012")
    job = finished(mgr, "slow")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_jobs_beyond_the_limit_wait_pending_in_order(tmp_path):
    class Slow(FakeCluster):
        seconds = 0.5

    mgr = manager(tmp_path, Slow, max_running=2)
    for i in range(4):
        mgr.create(request(f"q{i}"), "us-east-1", "123456789012")
    jobs = [finished(mgr, f"q{i}") for i in range(4)]
    waited = [[t["Status"] for t in j["SecondaryStatusTransitions"]].count("Pending") for j in jobs]
    # the first never waits; the two beyond the limit must (the second may, for a moment, while
    # the first takes its slot)
    assert waited[0] == 0 and waited[2] == 1 and waited[3] == 1 and waited[1] <= 1
    admitted = [
        next(
            t["StartTime"]
            for t in j["SecondaryStatusTransitions"]
            if t["StatusMessage"] == "Preparing the instances for training"
        )
        for j in jobs
    ]
    assert admitted == sorted(admitted)
    assert all(j["TrainingJobStatus"] == "Completed" for j in jobs)


def test_shutdown_stops_running_jobs(tmp_path):
    class Long(FakeCluster):
        seconds = 30

    mgr = manager(tmp_path, Long)
    mgr.create(request("a"), "us-east-1", "123456789012")
    wait_for(lambda: mgr.describe("a")["SecondaryStatus"] == "Training")
    mgr.shutdown(timeout=5)
    assert mgr.describe("a")["TrainingJobStatus"] == "Stopped"


# ---- through the SDK, on the real server and hosts ------------------------------------------

LONG_SCRIPT = """
    import os, time
    print("training for a long time", flush=True)
    open(os.path.join(os.environ["SM_MODEL_DIR"], "partial.txt"), "w").write("p")
    for _ in range(600):
        time.sleep(0.1)
    """


def _host_processes(job_dir: str) -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            where = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
            if job_dir in where:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@pytest.mark.localcloud
def test_stop_while_training_through_the_sdk(sm_session, localcloud_server, tmp_path):
    source = write_script(tmp_path / "src", LONG_SCRIPT)
    estimator = xgboost_estimator(sm_session, source)
    estimator.fit({"train": upload_train(sm_session, unique("stop"))}, wait=False)
    name = estimator.latest_training_job.name
    wait_for(lambda: describe(sm_session, name)["SecondaryStatus"] == "Training")
    wait_for(lambda: (localcloud_server.home / "jobs" / name / "algo-1.log").exists())
    estimator.latest_training_job.stop()
    estimator.latest_training_job.wait(logs="All")  # Stopped: a warning, no exception
    job = describe(sm_session, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"{name}/output/model.tar.gz")
    assert _host_processes(str(localcloud_server.home / "jobs" / name)) == []


@pytest.mark.localcloud
def test_max_runtime_exceeded_through_the_sdk(sm_session, localcloud_server, tmp_path):
    source = write_script(tmp_path / "src", LONG_SCRIPT)
    estimator = xgboost_estimator(sm_session, source, max_run=1)
    estimator.fit({"train": upload_train(sm_session, unique("maxrun"))}, logs=True)
    name = estimator.latest_training_job.name
    job = describe(sm_session, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert _host_processes(str(localcloud_server.home / "jobs" / name)) == []


@pytest.mark.localcloud
def test_fifth_job_waits_pending_through_the_sdk(sm_session, tmp_path):
    release = tmp_path / "release"
    source = write_script(
        tmp_path / "src",
        f"""
        import os, time
        deadline = time.time() + 60
        while not os.path.exists({str(release)!r}) and time.time() < deadline:
            time.sleep(0.05)
        """,
    )
    train = upload_train(sm_session, unique("queue"))
    names = []
    for _ in range(5):
        estimator = xgboost_estimator(sm_session, source)
        estimator.fit({"train": train}, wait=False)
        names.append(estimator.latest_training_job.name)
    wait_for(lambda: describe(sm_session, names[3])["SecondaryStatus"] == "Training")
    fifth = describe(sm_session, names[4])
    assert (fifth["TrainingJobStatus"], fifth["SecondaryStatus"]) == ("InProgress", "Pending")
    release.write_text("go")
    jobs = [
        wait_for(
            lambda n=n: (d := describe(sm_session, n))["TrainingJobStatus"] == "Completed" and d,
            timeout=60,
        )
        for n in names
    ]
    assert jobs[4]["TrainingStartTime"] >= min(j["TrainingEndTime"] for j in jobs[:4])
    assert [t["Status"] for t in jobs[4]["SecondaryStatusTransitions"]][:3] == [
        "Starting",
        "Pending",
        "Starting",
    ]


def test_instance_groups_are_a_validation_error_not_a_500(tmp_path):
    from localcloud.errors import AwsError

    resources = {
        "InstanceGroups": [
            {"InstanceGroupName": "g", "InstanceType": "ml.m5.large", "InstanceCount": 1}
        ],
        "VolumeSizeInGB": 30,
    }
    with pytest.raises(AwsError) as caught:
        manager(tmp_path).create(
            request("hetero", ResourceConfig=resources), "us-east-1", "123456789012"
        )
    assert caught.value.body()["__type"] == "ValidationException"
    assert "heterogeneous clusters" in caught.value.body()["message"]
    assert "not supported by localcloud" in caught.value.body()["message"]
