"""Every operation our routes answer, called on the live server: its JSON answer, as sent, fits
botocore's output shape (localcloud/response_shapes.py), for jobs in every state we can reach.

The operations come from the routers' own tables, so one added there without a walk here fails.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _lc_jobs import XGB_IMAGE, unique, wait_for
from botocore import xform_name
from botocore.exceptions import ClientError

from localcloud.config import LOG_GROUP
from localcloud.response_shapes import check_answer
from localcloud.server import logs_api, quotas_api, sagemaker_api
from localcloud.testing import source_tar

pytestmark = pytest.mark.localcloud

TABLES = {
    "sagemaker": sagemaker_api.JOB_ACTIONS | sagemaker_api.TAG_ACTIONS,
    "service-quotas": quotas_api.ACTIONS,
    "logs": logs_api.ACTIONS,
}
OPERATIONS = sorted((service, op) for service, ops in TABLES.items() for op in ops)
STATES = ("InProgress", "Completed", "Failed", "Stopped")
ENDED = ("Completed", "Failed", "Stopped")
LOGS_REGION = "ap-northeast-3"  # no job of the session logs there, so CreateLogGroup succeeds
SLEEPS = "import time\ntime.sleep(600)\n"
FAILS = "raise ValueError('shapes: this job fails on purpose')\n"


class Wire:
    """A client whose calls also return the JSON body the server sent, before botocore reads it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.service = client.meta.service_model.service_name
        self._bodies: list[tuple[str, bytes]] = []
        client.meta.events.register("before-parse", self._keep)

    def _keep(self, operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        self._bodies.append((operation_model.name, response_dict["body"]))

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """The raw JSON answer of one successful call."""
        getattr(self.client, xform_name(operation))(**params)
        name, body = self._bodies[-1]
        assert name == operation
        return json.loads(body or b"{}")


@dataclass
class World:
    """The clients, one job per state, and the answers recorded while making them."""

    sm: Wire
    quotas: Wire
    logs: Wire
    s3: Any
    bucket: str
    role: str
    suffix: str
    log_stream: str = ""
    jobs: dict[str, str] = field(default_factory=dict)  # state -> job name
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # operation -> raw

    def keep(self, wire: Wire, operation: str, **params: Any) -> dict[str, Any]:
        """Call, and keep the raw answer for the walk."""
        raw = wire.call(operation, **params)
        self.answers.setdefault(operation, []).append(raw)
        return raw

    def describe(self, name: str) -> dict[str, Any]:
        return self.sm.client.describe_training_job(TrainingJobName=name)

    def ended(self, name: str) -> dict[str, Any]:
        return wait_for(
            lambda: (d := self.describe(name))["TrainingJobStatus"] in ENDED and d, timeout=300
        )

    def script_job(self, label: str, script: str) -> str:
        """A raw script-mode job with nothing optional: no channels, no MaxRuntimeInSeconds."""
        name = f"shapes-{label}-{self.suffix}"
        key = f"{self.suffix}/{label}/sourcedir.tar.gz"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=source_tar({"train.py": script}))
        self.keep(
            self.sm,
            "CreateTrainingJob",
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
            RoleArn=self.role,
            HyperParameters={
                "sagemaker_program": json.dumps("train.py"),
                "sagemaker_submit_directory": json.dumps(f"s3://{self.bucket}/{key}"),
            },
            OutputDataConfig={"S3OutputPath": f"s3://{self.bucket}/{self.suffix}/output"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            StoppingCondition={},
        )
        return name


def _builtin_job(world: World, session: Any) -> str:
    """The course's kind of built-in XGBoost job, through the SDK (which sends its own extras)."""
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput

    rows = "\n".join(f"{i % 2},{i},{(i * 7) % 5}" for i in range(40)) + "\n"
    channels = {}
    for channel in ("train", "validation"):
        key = f"{world.suffix}/data/{channel}/data.csv"
        world.s3.put_object(Bucket=world.bucket, Key=key, Body=rows.encode())
        uri = f"s3://{world.bucket}/{world.suffix}/data/{channel}/"
        channels[channel] = TrainingInput(uri, content_type="text/csv")
    estimator = Estimator(
        image_uri=sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, "1.7-1"),
        role=world.role,
        instance_count=1,
        instance_type="ml.m5.large",
        output_path=f"s3://{world.bucket}/{world.suffix}/output",
        base_job_name=f"shapes-builtin-{world.suffix}",
        sagemaker_session=session,
    )
    estimator.set_hyperparameters(objective="binary:logistic", num_round=3)
    estimator.fit(channels, wait=False, logs=False)
    return estimator.latest_training_job.name


@pytest.fixture(scope="module")
def world(localcloud_server: Any) -> Iterator[World]:
    import sagemaker

    boto = localcloud_server.boto_session
    session = sagemaker.Session(boto_session=boto)
    w = World(
        sm=Wire(boto.client("sagemaker")),
        quotas=Wire(boto.client("service-quotas")),
        logs=Wire(boto.client("logs", region_name=LOGS_REGION)),
        s3=boto.client("s3"),
        bucket=session.default_bucket(),
        role=localcloud_server.role_arn,
        suffix=unique("w").split("-")[1],
    )
    w.jobs["InProgress"] = w.script_job("sleeps", SLEEPS)
    w.jobs["Failed"] = w.script_job("fails", FAILS)
    gone = w.script_job("deleted", FAILS)
    stopped = w.script_job("stopped", SLEEPS)
    w.jobs["Completed"] = _builtin_job(w, session)
    w.jobs["Stopped"] = stopped
    try:
        for name in (w.jobs["InProgress"], stopped):
            wait_for(lambda n=name: w.describe(n)["SecondaryStatus"] == "Training", timeout=300)
        w.keep(w.sm, "StopTrainingJob", TrainingJobName=stopped)
        for state in ENDED:
            assert w.ended(w.jobs[state])["TrainingJobStatus"] == state
        w.ended(gone)
        w.keep(w.sm, "DeleteTrainingJob", TrainingJobName=gone)
        _log_group(w)
        yield w
    finally:
        with contextlib.suppress(ClientError):
            w.sm.client.stop_training_job(TrainingJobName=w.jobs["InProgress"])
        w.ended(w.jobs["InProgress"])


def _log_group(w: World) -> None:
    """The training-job group in a region of its own, a stream in it, events (some too old)."""
    w.keep(w.logs, "CreateLogGroup", logGroupName=LOG_GROUP)
    w.logs.client.create_log_group(logGroupName=f"/test/shapes-{w.suffix}")  # one of moto's
    w.log_stream = f"{w.jobs['Completed']}/algo-1-{int(time.time())}"
    w.keep(w.logs, "CreateLogStream", logGroupName=LOG_GROUP, logStreamName=w.log_stream)
    now = int(time.time() * 1000)
    stream = {"logGroupName": LOG_GROUP, "logStreamName": w.log_stream}
    events = [{"timestamp": now + i, "message": f"[{i}]#011train-logloss:0.5"} for i in range(3)]
    w.keep(w.logs, "PutLogEvents", **stream, logEvents=events)
    too_old = [{"timestamp": now - 15 * 24 * 3600 * 1000, "message": "too old"}]
    answer = w.keep(w.logs, "PutLogEvents", **stream, logEvents=too_old)
    assert answer["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0}


# ---- the walk: one entry per operation, each giving the raw answers to check -----------------


def _describe(w: World) -> list[dict[str, Any]]:
    answers = [w.sm.call("DescribeTrainingJob", TrainingJobName=w.jobs[s]) for s in STATES]
    assert [a["TrainingJobStatus"] for a in answers] == list(STATES)
    return answers


def _list(w: World) -> list[dict[str, Any]]:
    every = w.sm.call("ListTrainingJobs", NameContains=w.suffix, MaxResults=100)
    assert {j["TrainingJobStatus"] for j in every["TrainingJobSummaries"]} == set(STATES)
    first = w.sm.call("ListTrainingJobs", NameContains=w.suffix, MaxResults=1)
    assert "NextToken" in first
    return [every, first]


def _tags(operation: str) -> Callable[[World], list[dict[str, Any]]]:
    def walk(w: World) -> list[dict[str, Any]]:
        arn = w.describe(w.jobs["Completed"])["TrainingJobArn"]
        w.keep(w.sm, "AddTags", ResourceArn=arn, Tags=[{"Key": "shapes", "Value": "yes"}])
        listed = w.keep(w.sm, "ListTags", ResourceArn=arn)
        assert {"Key": "shapes", "Value": "yes"} in listed["Tags"]
        w.keep(w.sm, "DeleteTags", ResourceArn=arn, TagKeys=["shapes"])
        return w.answers[operation]

    return walk


def _quotas(operation: str) -> Callable[[World], list[dict[str, Any]]]:
    def walk(w: World) -> list[dict[str, Any]]:
        if operation == "GetServiceQuota":
            listed = w.quotas.call("ListServiceQuotas", ServiceCode="sagemaker")
            code = listed["Quotas"][0]["QuotaCode"]
            return [w.quotas.call(operation, ServiceCode="sagemaker", QuotaCode=code)]
        whole = w.quotas.call(operation, ServiceCode="sagemaker")
        paged = w.quotas.call(operation, ServiceCode="sagemaker", MaxResults=2)
        assert "NextToken" in paged and len(paged["Quotas"]) == 2
        return [whole, paged]

    return walk


def _recorded(operation: str) -> Callable[[World], list[dict[str, Any]]]:
    return lambda w: w.answers[operation]


def _log_reads(operation: str) -> Callable[[World], list[dict[str, Any]]]:
    def walk(w: World) -> list[dict[str, Any]]:
        group = {"logGroupName": LOG_GROUP}
        stream = w.log_stream
        if operation == "GetLogEvents":
            calls = [{"logStreamName": stream, "startFromHead": True}, {"logStreamName": stream}]
        elif operation == "FilterLogEvents":
            calls = [{"filterPattern": "logloss"}, {"filterPattern": "logloss", "limit": 1}]
        elif operation == "DescribeLogStreams":
            calls = [{"logStreamNamePrefix": stream}, {"orderBy": "LastEventTime", "limit": 1}]
        else:  # DescribeLogGroups: ours with moto's, and a pattern search
            group = {}
            calls = [{"logGroupNamePrefix": "/"}, {"logGroupNamePattern": "sagemaker"}]
        answers = [w.logs.call(operation, **group, **params) for params in calls]
        assert all(answers), answers
        return answers

    return walk


WALKS: dict[tuple[str, str], Callable[[World], list[dict[str, Any]]]] = {
    ("sagemaker", "CreateTrainingJob"): _recorded("CreateTrainingJob"),
    ("sagemaker", "DescribeTrainingJob"): _describe,
    ("sagemaker", "ListTrainingJobs"): _list,
    ("sagemaker", "StopTrainingJob"): _recorded("StopTrainingJob"),
    ("sagemaker", "DeleteTrainingJob"): _recorded("DeleteTrainingJob"),
    **{("sagemaker", op): _tags(op) for op in ("AddTags", "ListTags", "DeleteTags")},
    **{("service-quotas", op): _quotas(op) for op in quotas_api.ACTIONS},
    ("logs", "CreateLogGroup"): _recorded("CreateLogGroup"),
    ("logs", "CreateLogStream"): _recorded("CreateLogStream"),
    ("logs", "PutLogEvents"): _recorded("PutLogEvents"),
    **{
        ("logs", op): _log_reads(op)
        for op in ("GetLogEvents", "FilterLogEvents", "DescribeLogStreams", "DescribeLogGroups")
    },
}


@pytest.mark.parametrize(
    ("service", "operation"), OPERATIONS, ids=[":".join(o) for o in OPERATIONS]
)
def test_every_answer_of_our_routes_fits_its_output_shape(
    world: World, service: str, operation: str
) -> None:
    walk = WALKS.get((service, operation))
    assert walk is not None, f"{service} {operation} is answered by our routes but not walked here"
    answers = walk(world)
    assert answers
    for answer in answers:
        assert check_answer(service, operation, answer) == [], answer


def test_the_walk_covers_nothing_the_routes_do_not_answer() -> None:
    assert set(WALKS) == set(OPERATIONS)


def test_describe_carries_what_the_service_always_returns(world: World) -> None:
    raw = world.describe(world.jobs["Stopped"])  # a raw request that left every default unset
    assert raw["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{world.bucket}/{world.suffix}/output",
        "KmsKeyId": "",
        "CompressionType": "GZIP",
    }
    assert raw["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert raw["InputDataConfig"] == []
    assert raw["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"] is False
    assert raw["ProfilingStatus"] == "Disabled"
    flags = ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption")
    assert [raw[f] for f in (*flags, "EnableManagedSpotTraining")] == [False, False, False]
    assert "RetryStrategy" not in raw and "Environment" not in raw
    built_in = world.describe(world.jobs["Completed"])
    channel = built_in["InputDataConfig"][0]
    assert (channel["CompressionType"], channel["RecordWrapperType"]) == ("None", "None")


@pytest.mark.parametrize("state", ["Completed", "Stopped"])  # made by the SDK; raw, no defaults
def test_sdk_attach_reads_an_ended_job(world: World, sm_session: Any, state: str) -> None:
    from sagemaker.estimator import Estimator

    name = world.jobs[state]
    estimator = Estimator.attach(name, sagemaker_session=sm_session)
    assert estimator.latest_training_job.name == name
    assert estimator.output_kms_key == ""
    assert estimator.instance_type == "ml.m5.large"
    assert estimator.max_run == 86400  # the SDK's default; the service's when none was sent
    assert estimator.model_data.endswith(f"{name}/output/model.tar.gz")
