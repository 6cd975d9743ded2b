"""The output-shape checker: each kind of departure found, beside an answer that conforms; and the
members DescribeTrainingJob always carries, filled in as the service fills them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.model import ShapeResolver

from localcloud.jobs.model import TrainingJob
from localcloud.response_shapes import check_answer, problems

SHAPES: dict[str, Any] = {
    "Answer": {
        "type": "structure",
        "required": ["Name", "Created"],
        "members": {
            "Name": {"shape": "Text"},
            "Created": {"shape": "When"},
            "Count": {"shape": "Count"},
            "Big": {"shape": "Big"},
            "Ratio": {"shape": "Ratio"},
            "Flag": {"shape": "Flag"},
            "Mode": {"shape": "Mode"},
            "Data": {"shape": "Data"},
            "Items": {"shape": "Items"},
            "Params": {"shape": "Params"},
            "Inner": {"shape": "Inner"},
        },
    },
    "Text": {"type": "string", "min": 5, "pattern": "[a-z]+"},  # not checked in answers
    "When": {"type": "timestamp"},
    "Count": {"type": "integer", "min": 1},
    "Big": {"type": "long"},
    "Ratio": {"type": "double"},
    "Flag": {"type": "boolean"},
    "Mode": {"type": "string", "enum": ["File", "Pipe"]},
    "Data": {"type": "blob"},
    "Items": {"type": "list", "member": {"shape": "Inner"}},
    "Params": {"type": "map", "key": {"shape": "Mode"}, "value": {"shape": "Count"}},
    "Inner": {
        "type": "structure",
        "required": ["Key"],
        "members": {"Key": {"shape": "Text"}, "Value": {"shape": "Count"}},
    },
}
SHAPE = ShapeResolver(SHAPES).get_shape_by_name("Answer")
GOOD: dict[str, Any] = {
    "Name": "",  # shorter than its min and off its pattern: the services answer like that
    "Created": 1700000000.25,
    "Count": 0,
    "Big": 2**40,
    "Ratio": 1,
    "Flag": False,
    "Mode": "Pipe",
    "Data": "aGk=",
    "Items": [{"Key": "k", "Value": 3}, {"Key": "j"}],
    "Params": {"File": 1},
    "Inner": {"Key": "x"},
}


def answer(**changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is ...:
            del out[key]
        else:
            out[key] = value
    return out


def test_a_conforming_answer_has_no_problems() -> None:
    assert problems(SHAPE, answer()) == []
    assert problems(SHAPE, {"Name": "n", "Created": 1}) == []  # only the required ones


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"Name": ...}, "Name: missing (required by Answer)"),
        ({"Surprise": 1}, "Surprise: not a member of Answer"),
        ({"Count": None}, "Count: null"),
        ({"Name": 5}, "Name: expected a string, got number 5"),
        ({"Created": "2024-01-01T00:00:00Z"}, "Created: expected epoch seconds (a number)"),
        ({"Created": True}, "Created: expected epoch seconds (a number), got boolean"),
        ({"Count": 1.5}, "Count: expected a whole number, got number 1.5"),
        ({"Big": True}, "Big: expected a whole number, got boolean"),
        ({"Ratio": "1"}, "Ratio: expected a number, got string"),
        ({"Ratio": float("nan")}, "Ratio: expected a number"),
        ({"Flag": 0}, "Flag: expected true or false, got number 0"),
        ({"Mode": "Stream"}, "Mode: 'Stream' is not one of [File, Pipe]"),
        ({"Data": b"hi"}, "Data: expected base64 text"),
        ({"Items": {"Key": "k"}}, "Items: expected an array, got object"),
        ({"Items": [{"Key": "k"}, {"Value": 1}]}, "Items[1].Key: missing (required by Inner)"),
        ({"Items": [{"Key": "k", "Value": "3"}]}, "Items[0].Value: expected a whole number"),
        ({"Params": [["File", 1]]}, "Params: expected an object, got array"),
        ({"Params": {"File": "1"}}, "Params['File']: expected a whole number"),
        ({"Params": {"Stream": 1}}, "Params{'Stream'}: 'Stream' is not one of [File, Pipe]"),
        ({"Inner": [{"Key": "x"}]}, "Inner: expected an object, got array"),
        ({"Inner": {"Key": "x", "Extra": 1}}, "Inner.Extra: not a member of Inner"),
    ],
)
def test_each_departure_is_found_where_it_is(changes: dict[str, Any], expected: str) -> None:
    assert problems(SHAPE, answer()) == []  # the same answer without the change conforms
    found = problems(SHAPE, answer(**changes))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_every_departure_is_listed_not_just_the_first() -> None:
    found = problems(SHAPE, answer(Name=..., Flag="no", Mode="x"))
    assert [p.split(":")[0] for p in found] == ["Name", "Flag", "Mode"]


def test_not_an_object_at_the_top() -> None:
    assert problems(SHAPE, answer()) == []
    assert problems(SHAPE, []) == ["(answer): expected an object, got array []"]


def test_an_overlay_changes_what_is_required() -> None:
    relaxed = {"Answer": {"required": ["Name"]}}
    assert problems(SHAPE, answer(Created=...), relaxed) == []
    assert problems(SHAPE, answer(Created=...)) == ["Created: missing (required by Answer)"]


def test_an_operation_without_output_answers_an_empty_object() -> None:
    assert check_answer("sagemaker", "StopTrainingJob", {}) == []
    assert check_answer("sagemaker", "StopTrainingJob", {"Ok": True}) != []
    assert check_answer("logs", "CreateLogGroup", {}) == []


def test_operations_are_checked_against_their_services_models() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/j"
    assert check_answer("sagemaker", "CreateTrainingJob", {"TrainingJobArn": arn}) == []
    assert check_answer("sagemaker", "CreateTrainingJob", {}) == [
        "TrainingJobArn: missing (required by CreateTrainingJobResponse)"
    ]
    assert check_answer("logs", "GetLogEvents", {"events": [{"timestamp": 1}]}) == []
    assert check_answer("logs", "GetLogEvents", {"events": [{"timestamp": 1.5}]}) == [
        "events[0].timestamp: expected a whole number, got number 1.5"
    ]


# ---- DescribeTrainingJob as the service answers it -----------------------------------------

REQUEST: dict[str, Any] = {  # what a raw CreateTrainingJob may leave out, left out
    "TrainingJobName": "plain",
    "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
    "RoleArn": "arn:aws:iam::123456789012:role/R",
    "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
    "StoppingCondition": {},
}


def wire(job: TrainingJob) -> dict[str, Any]:
    return json.loads(json.dumps(job.describe()))


def job(**extra: Any) -> TrainingJob:
    return TrainingJob(request={**REQUEST, **extra}, region="us-east-1", account="123456789012")


def test_a_plain_job_answers_with_the_services_defaults() -> None:
    described = wire(job())
    assert check_answer("sagemaker", "DescribeTrainingJob", described) == []
    assert described["OutputDataConfig"] == {
        "S3OutputPath": "s3://b/out",
        "KmsKeyId": "",
        "CompressionType": "GZIP",
    }
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert described["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"] is False
    assert described["InputDataConfig"] == []
    assert described["ProfilingStatus"] == "Disabled"
    flags = (
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
    )
    assert [described[flag] for flag in flags] == [False, False, False]
    for only_when_sent in ("RetryStrategy", "Environment", "HyperParameters", "ProfilerConfig"):
        assert only_when_sent not in described
    assert "ModelArtifacts" not in described  # none until there are artifacts


def test_what_the_request_says_wins_over_the_defaults() -> None:
    channel = {
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t"}},
        "CompressionType": "Gzip",
    }
    described = wire(
        job(
            OutputDataConfig={
                "S3OutputPath": "s3://b/o",
                "KmsKeyId": "k1",
                "CompressionType": "NONE",
            },
            StoppingCondition={"MaxRuntimeInSeconds": 60},
            InputDataConfig=[channel],
            EnableNetworkIsolation=True,
            RetryStrategy={"MaximumRetryAttempts": 2},
        )
    )
    assert check_answer("sagemaker", "DescribeTrainingJob", described) == []
    assert described["OutputDataConfig"]["KmsKeyId"] == "k1"
    assert described["OutputDataConfig"]["CompressionType"] == "NONE"
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 60}
    assert described["InputDataConfig"][0]["CompressionType"] == "Gzip"
    assert described["InputDataConfig"][0]["RecordWrapperType"] == "None"
    assert described["EnableNetworkIsolation"] is True
    assert described["RetryStrategy"] == {"MaximumRetryAttempts": 2}


@pytest.mark.parametrize(
    ("profiler", "status", "interval"),
    [
        ({"S3OutputPath": "s3://b/p", "DisableProfiler": False}, "Enabled", 500),
        ({"S3OutputPath": "s3://b/p", "ProfilingIntervalInMilliseconds": 100}, "Enabled", 100),
        ({"DisableProfiler": True}, "Disabled", None),
    ],
)
def test_profiling_status_follows_the_profiler_config(
    profiler: dict[str, Any], status: str, interval: int | None
) -> None:
    described = wire(job(ProfilerConfig=profiler))
    assert check_answer("sagemaker", "DescribeTrainingJob", described) == []
    assert described["ProfilingStatus"] == status
    assert described["ProfilerConfig"].get("ProfilingIntervalInMilliseconds") == interval


def test_an_answer_never_aliases_the_record() -> None:
    plain = job()
    plain.describe()["AlgorithmSpecification"]["TrainingImage"] = "changed"
    assert plain.describe()["AlgorithmSpecification"]["TrainingImage"] == "img"


def test_ended_jobs_and_summaries_conform() -> None:
    ended = job()
    ended.training_start, ended.training_end = 100.0, 160.4
    ended.model_uri = "s3://b/out/plain/output/model.tar.gz"
    ended.record_metrics("loss", 150.0)
    ended.finish("Completed", "Completed", 161.0)
    described = wire(ended)
    assert check_answer("sagemaker", "DescribeTrainingJob", described) == []
    assert described["TrainingTimeInSeconds"] == described["BillableTimeInSeconds"] == 60
    listing = {"TrainingJobSummaries": [json.loads(json.dumps(ended.summary()))]}
    assert check_answer("sagemaker", "ListTrainingJobs", listing) == []
    broken = {"TrainingJobSummaries": [{**listing["TrainingJobSummaries"][0], "Status": "x"}]}
    assert check_answer("sagemaker", "ListTrainingJobs", broken) != []
