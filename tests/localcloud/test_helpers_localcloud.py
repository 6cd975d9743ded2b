"""The helpers (AWS_helpers and its modules) against a running localcloud: jobs, quotas, clean-up.

The session fixture `localcloud_server` (tests/localcloud/conftest.py) starts the server with
LOCALCLOUD_QUOTAS making ZERO_QUOTA 0, so the zero-quota path is exercised for real.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from helpers import AWS_helpers as h
from helpers import quotas

pytestmark = pytest.mark.localcloud

ZERO_QUOTA = "ml.p3.2xlarge for training job usage"
XGB_IMAGE = "683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:1.7-1"
SCRIPT_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-training:2.1.0-cpu-py310"
OTHER = "arn:aws:sts::123456789012:assumed-role/SageMakerCourseExecutionRole/someone-else"
DATA = Path(__file__).resolve().parents[2] / "data" / "titanic_train.csv"


@dataclass
class Cloud:
    """What these tests need from a server, whichever fixture provided it."""

    session: boto3.Session
    region: str
    role_arn: str

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region)


def _adapt(server: Any) -> Cloud:
    session = getattr(server, "boto_session", None) or server.session
    region = getattr(server, "region", None) or session.region_name
    return Cloud(session, region, server.role_arn)


@pytest.fixture(scope="module")
def cloud(localcloud_server: Any) -> Cloud:
    """The session's server (tests/localcloud/conftest.py), as these tests use it."""
    return _adapt(localcloud_server)


def _new_bucket(cloud: Cloud, region: str | None = None) -> str:
    name = f"helpers-{uuid.uuid4().hex[:10]}"
    region = region or cloud.region
    config = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3 = cloud.session.client("s3", region_name=region)
    s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": config} if config else {}))
    return name


@pytest.fixture(scope="module")
def bucket(cloud: Cloud) -> str:
    """A bucket with a built-in-XGBoost training file and a script-mode code archive."""
    name = _new_bucket(cloud)
    s3 = cloud.client("s3")
    raw = pd.read_csv(DATA)
    prepared = raw[["Survived", "Pclass", "SibSp", "Parch", "Fare"]].assign(
        Sex=(raw.Sex == "male").astype(int)
    )
    s3.put_object(
        Bucket=name,
        Key=f"{h.COURSE_PREFIX}/train.csv",
        Body=prepared.to_csv(header=False, index=False).encode(),
    )
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        script = b"import time\ntime.sleep(90)\n"
        info = tarfile.TarInfo("sleepy.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    s3.put_object(Bucket=name, Key="code/sourcedir.tar.gz", Body=archive.getvalue())
    return name


def _create_job(cloud: Cloud, bucket: str, tags: list[dict], *, sleeper: bool = False) -> str:
    """Start a small built-in XGBoost job, or a script-mode job that only sleeps."""
    name = f"helpers-{'sleep' if sleeper else 'xgb'}-{uuid.uuid4().hex[:8]}"
    if sleeper:
        image = SCRIPT_IMAGE.format(region=cloud.region)
        hps = {
            "sagemaker_program": json.dumps("sleepy.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/code/sourcedir.tar.gz"),
            "sagemaker_region": json.dumps(cloud.region),
        }
        channels: list[dict] = []
    else:
        image = XGB_IMAGE.format(region=cloud.region)
        hps = {"objective": "binary:logistic", "num_round": "10", "max_depth": "3"}
        uri = f"s3://{bucket}/{h.COURSE_PREFIX}/train.csv"
        source = {
            "S3DataType": "S3Prefix",
            "S3Uri": uri,
            "S3DataDistributionType": "FullyReplicated",
        }
        channels = [
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": source},
            }
        ]
    cloud.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        RoleArn=cloud.role_arn,
        HyperParameters=hps,
        **({"InputDataConfig": channels} if channels else {}),
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/{h.COURSE_PREFIX}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 120},
        Tags=[{"Key": t["key"], "Value": t["value"]} for t in tags],  # the API form
    )
    return name


ENDED = ("Completed", "Failed", "Stopped")


def _wait(cloud: Cloud, name: str, until: tuple[str, ...], timeout: float = 180) -> dict:
    sm = cloud.client("sagemaker")
    deadline = time.monotonic() + timeout
    while True:
        desc = sm.describe_training_job(TrainingJobName=name)
        if desc["TrainingJobStatus"] in until or time.monotonic() > deadline:
            return desc
        time.sleep(1)


def _stop_quietly(cloud: Cloud, *names: str) -> None:
    sm = cloud.client("sagemaker")
    for name in names:
        with contextlib.suppress(sm.exceptions.ClientError):  # it had already ended
            sm.stop_training_job(TrainingJobName=name)


@pytest.fixture(scope="module")
def finished_job(cloud: Cloud, bucket: str) -> dict:
    name = _create_job(cloud, bucket, h.course_tags("helpers-test", session=cloud.session))
    desc = _wait(cloud, name, ("Completed", "Failed", "Stopped"))
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    return desc


def test_notebook_info_of_this_instance(cloud: Cloud) -> None:
    assert os.environ.get("NOTEBOOK_INSTANCE_NAME")
    info = h.get_notebook_instance_info(session=cloud.session)
    assert (info.status, info.instance_type) == ("InService", "ml.t3.medium")
    with pytest.raises(h.HelperError, match="check the name in SageMaker → Notebooks"):
        h.get_notebook_instance_info("no-such-notebook", region=cloud.region)


def test_resolve_role_is_the_course_role(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGEMAKER_ROLE", raising=False)
    with pytest.raises(h.HelperError, match="set SAGEMAKER_ROLE"):  # never the caller's own
        h.resolve_role(session=cloud.session)
    monkeypatch.setenv("SAGEMAKER_ROLE", cloud.role_arn.rsplit("/", 1)[-1])  # a role name
    assert h.resolve_role(session=cloud.session) == cloud.role_arn


def test_owner_and_prefix_name_this_notebook(cloud: Cloud) -> None:
    here = os.environ["NOTEBOOK_INSTANCE_NAME"]
    assert h.owner_id(session=cloud.session).endswith(f"/notebook-instance/{here}")
    assert (
        h.course_prefix(session=cloud.session)
        == f"{h.COURSE_PREFIX}/{h.learner_id(session=cloud.session)}"
    )
    assert h.learner_id(session=cloud.session) == here.lower()


def test_s3_helpers(cloud: Cloud, bucket: str) -> None:
    keys = h.list_objects(bucket, f"{h.COURSE_PREFIX}/", session=cloud.session)
    assert f"{h.COURSE_PREFIX}/train.csv" in keys
    size = h.bucket_size(bucket, f"{h.COURSE_PREFIX}/train.csv", session=cloud.session)
    assert size > 10_000
    expected = size / 1024**3 * 0.023
    cost = h.storage_cost(bucket, f"{h.COURSE_PREFIX}/train.csv", session=cloud.session)
    assert cost == pytest.approx(expected)
    assert h.check_bucket_region(bucket, session=cloud.session) == cloud.region
    with pytest.raises(h.HelperError, match="check the bucket name"):
        h.list_objects("helpers-no-such-bucket", session=cloud.session)
    elsewhere = _new_bucket(cloud, "eu-west-1")
    with pytest.raises(
        h.HelperError, match=f"is in eu-west-1 but your session uses {cloud.region}"
    ):
        h.check_bucket_region(elsewhere, session=cloud.session)


def test_preflight_reads_quotas_by_name(cloud: Cloud, bucket: str) -> None:
    report = h.preflight(
        ["ml.m5.large", "ml.g4dn.xlarge", "ml.p3.2xlarge"], bucket=bucket, session=cloud.session
    ).set_index("check")
    assert report.loc["credentials", "ok"] and report.loc[f"bucket {bucket}", "ok"]
    assert report.loc["quota: ml.m5.large for training job usage", "value"] > 0
    assert report.loc[f"quota: {quotas.INSTANCE_COUNT_QUOTA}", "value"] > 0
    zero = report.loc[f"quota: {ZERO_QUOTA}"]  # tests/conftest.py sets it to 0
    assert zero.value == 0
    assert not zero.ok and "Request increase" in zero.fix and "--quota-code L-" in zero.fix


def test_zero_quota_is_what_create_training_job_hits(cloud: Cloud, bucket: str) -> None:
    applied = quotas.applied_quotas(cloud.client("service-quotas"))
    assert applied[ZERO_QUOTA]["Value"] == 0  # tests/conftest.py sets it to 0
    request = {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5}
    with pytest.raises(cloud.client("sagemaker").exceptions.ClientError) as caught:
        cloud.client("sagemaker").create_training_job(
            TrainingJobName=f"helpers-quota-{uuid.uuid4().hex[:6]}",
            AlgorithmSpecification={
                "TrainingImage": XGB_IMAGE.format(region=cloud.region),
                "TrainingInputMode": "File",
            },
            RoleArn=cloud.role_arn,
            OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
            ResourceConfig=request,
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
    assert ZERO_QUOTA in str(caught.value)


def test_cost_summary_accuracy_and_plot(cloud: Cloud, finished_job: dict) -> None:
    name = finished_job["TrainingJobName"]
    billable = finished_job["BillableTimeInSeconds"]
    assert billable >= 1
    assert h.estimate_job_cost(name, session=cloud.session) == pytest.approx(
        billable * 0.115 / 3600
    )
    assert h.record_test_accuracy(name, 0.8212, session=cloud.session) == "0.8212"
    df = h.job_summary("helpers-xgb-", session=cloud.session)
    row = df.set_index("job_name").loc[name]
    assert (row.config, row.status, row.notebook) == (
        "ml.m5.large × 1",
        "Completed",
        "helpers-test",
    )
    assert row.billable_seconds == billable and row.billed_instance_seconds == billable
    assert row.training_seconds == finished_job["TrainingTimeInSeconds"]
    wall = finished_job["TrainingEndTime"] - finished_job["CreationTime"]
    assert row.wall_seconds == pytest.approx(wall.total_seconds())
    assert row.wall_seconds >= row.training_seconds - 1  # training seconds are whole seconds
    assert row.test_accuracy == 0.8212
    for metric in finished_job.get("FinalMetricDataList", []):
        assert row[metric["MetricName"]] == pytest.approx(metric["Value"])
    fig = h.plot_jobs(df)
    assert len(fig.axes) == 2
    fig.savefig(io.BytesIO(), format="png")


def test_unknown_job_is_a_clear_error(cloud: Cloud) -> None:
    for call in (h.estimate_job_cost, h.stop_my_training_job):
        with pytest.raises(h.HelperError, match="check the name with job_summary"):
            call("helpers-no-such-job", session=cloud.session)


def test_stop_only_my_own_job(cloud: Cloud, bucket: str) -> None:
    mine = _create_job(cloud, bucket, h.course_tags(session=cloud.session), sleeper=True)
    theirs_tags = [{"key": "course", "value": h.COURSE_TAG}, {"key": "owner", "value": OTHER}]
    theirs = _create_job(cloud, bucket, theirs_tags, sleeper=True)
    try:
        with pytest.raises(h.HelperError, match="belongs to .*someone-else, not you"):
            h.stop_my_training_job(theirs, session=cloud.session)
        assert h.stop_my_training_job(mine, session=cloud.session) == "Stopping"
        assert _wait(cloud, mine, ("Stopped",), 60)["TrainingJobStatus"] == "Stopped"
        status = cloud.client("sagemaker").describe_training_job(TrainingJobName=theirs)
        assert status["TrainingJobStatus"] == "InProgress"
    finally:
        _stop_quietly(cloud, mine, theirs)


def test_clean_up_dry_run_then_exactly_what_it_listed(cloud: Cloud, bucket: str) -> None:
    clean_bucket = _new_bucket(cloud)
    s3 = cloud.client("s3")
    mine_prefix = h.course_prefix(session=cloud.session)
    theirs_key = f"{h.COURSE_PREFIX}/someone-else/d.csv"  # a shared bucket: not ours to delete
    for key in (f"{mine_prefix}/a.csv", f"{mine_prefix}/deep/b.csv", "keep/c.csv", theirs_key):
        s3.put_object(Bucket=clean_bucket, Key=key, Body=b"1,2\n")
    mine = _create_job(cloud, bucket, h.course_tags(session=cloud.session), sleeper=True)
    theirs_tags = [{"key": "course", "value": h.COURSE_TAG}, {"key": "owner", "value": OTHER}]
    theirs = _create_job(cloud, bucket, theirs_tags, sleeper=True)
    mine_ended = _create_job(cloud, bucket, h.course_tags(session=cloud.session))
    theirs_ended = _create_job(cloud, bucket, theirs_tags)
    for name in (mine_ended, theirs_ended):
        assert _wait(cloud, name, ENDED)["TrainingJobStatus"] in ENDED
    sm = cloud.client("sagemaker")
    here = os.environ["NOTEBOOK_INSTANCE_NAME"]

    def snapshot() -> tuple:
        jobs = {
            n: sm.describe_training_job(TrainingJobName=n)["TrainingJobStatus"]
            for n in (mine, theirs)
        }
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=clean_bucket)["Contents"])
        return jobs, keys

    try:
        listed = h.list_my_resources(clean_bucket, session=cloud.session)
        assert mine in set(listed.name) and theirs not in set(listed.name)
        actions = dict(zip(listed.name, listed.action, strict=True))
        assert (actions[mine], actions[mine_ended]) == ("stop", "delete")
        assert theirs_ended not in actions
        assert here in set(listed.name)  # the notebook instance this process "runs on"
        assert {n for n in listed.name if n.startswith("s3://")} == {
            f"s3://{clean_bucket}/{mine_prefix}/a.csv",
            f"s3://{clean_bucket}/{mine_prefix}/deep/b.csv",
        }
        before = snapshot()
        plan = h.clean_up(clean_bucket, session=cloud.session)
        assert snapshot() == before and not plan.done.any()

        done = h.clean_up(
            clean_bucket, dry_run=False, stop_this_notebook=True, session=cloud.session
        )
        assert set(done.name) == set(plan.name) and done.done.all()
        jobs, keys = snapshot()
        assert jobs[mine] in ("Stopping", "Stopped") and jobs[theirs] == "InProgress"
        with pytest.raises(sm.exceptions.ClientError, match="ResourceNotFound|ValidationException"):
            sm.describe_training_job(TrainingJobName=mine_ended)  # DeleteTrainingJob forgot it
        assert sm.describe_training_job(TrainingJobName=theirs_ended)["TrainingJobStatus"] in ENDED
        assert keys == ["keep/c.csv", theirs_key]
        assert h.get_notebook_instance_info(here).status in ("Stopping", "Stopped")
    finally:
        _stop_quietly(cloud, mine, theirs)
        _restart_notebook(cloud, here)


def _restart_notebook(cloud: Cloud, name: str) -> None:
    """Give the shared server its notebook instance back in service for the tests after ours."""
    sm = cloud.client("sagemaker")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"]
        if status == "InService":
            return
        if status == "Stopped":
            sm.start_notebook_instance(NotebookInstanceName=name)
        time.sleep(0.5)
