"""Malformed training-job requests, as a client with parameter validation off sends them.

Each is refused with the service's exception and text, the same request done right beside it
succeeds, and the listings every learner relies on still answer afterwards.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _lc_jobs import unique, upload_train, wait_for, write_script, xgboost_estimator
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.localcloud

TERMINAL = ("Completed", "Failed", "Stopped")
NAME_RULE = "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"


@pytest.fixture(scope="module")
def raw(localcloud_server: Any) -> Any:
    """A SageMaker client that sends whatever it is given."""
    config = Config(parameter_validation=False)
    return localcloud_server.boto_session.client("sagemaker", config=config)


@pytest.fixture(scope="module")
def good(localcloud_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The CreateTrainingJob request the SDK sent for a quick script job (which it created)."""
    import sagemaker

    session = sagemaker.Session(boto_session=localcloud_server.boto_session)
    source = write_script(tmp_path_factory.mktemp("src"), "print('ok')\n")
    sent: list[dict[str, Any]] = []

    def keep(params: dict[str, Any], **_: Any) -> None:
        sent.append(copy.deepcopy(params))

    event = "provide-client-params.sagemaker.CreateTrainingJob"
    session.sagemaker_client.meta.events.register(event, keep)
    try:
        train = upload_train(session, unique("valid"))
        xgboost_estimator(session, source).fit({"train": train}, wait=False)
    finally:
        session.sagemaker_client.meta.events.unregister(event, keep)
    return sent[0]


@pytest.fixture(scope="module")
def anchor_arn(raw: Any, good: dict[str, Any]) -> str:
    """The SDK's job: listed and tagged by the checks that the server still answers."""
    return raw.describe_training_job(TrainingJobName=good["TrainingJobName"])["TrainingJobArn"]


def error_of(call: Callable[..., Any], **params: Any) -> dict[str, str]:
    """The error's code and message."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response["Error"]
    return {"Code": error["Code"], "Message": error["Message"]}


def still_answers(raw: Any, arn: str) -> None:
    """ListTrainingJobs (every way it reads the names) and ListTags work for everyone."""
    for params in ({}, {"SortBy": "Name"}, {"NameContains": "a", "MaxResults": 100}):
        for summary in raw.list_training_jobs(**params)["TrainingJobSummaries"]:
            assert isinstance(summary["TrainingJobName"], str)
    assert isinstance(raw.list_tags(ResourceArn=arn)["Tags"], list)


def created(raw: Any, body: dict[str, Any]) -> str:
    """Create the job, then stop it at once (it only had to be accepted); its ARN."""
    arn = raw.create_training_job(**body)["TrainingJobArn"]
    name = body["TrainingJobName"]
    try:
        raw.stop_training_job(TrainingJobName=name)
    except ClientError as exc:  # it may have ended already
        assert exc.response["Error"]["Code"] == "ValidationException"
    wait_for(
        lambda: raw.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in TERMINAL,
        timeout=60,
    )
    return arn


def with_changes(good: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(good), "TrainingJobName": unique("ok"), **changes}


def hyperparameters(good: dict[str, Any], count: int, **extra: Any) -> dict[str, Any]:
    """The SDK's hyperparameters, filled up to `count` entries, with `extra` among them."""
    params = {**good["HyperParameters"], **extra}
    params.update({f"filler{i}": "1" for i in range(count - len(params))})
    return params


def channel(good: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [{**good["InputDataConfig"][0], "ChannelName": name}]


# (bad changes, the same request done right, exception, text it starts with, text it ends with)
Case = tuple[Callable[[dict], dict], Callable[[dict], dict], str, str, str]
CREATE_CASES: dict[str, Case] = {
    "numeric-name": (
        lambda g: {"TrainingJobName": 12345},
        lambda g: {},
        "SerializationException",
        "NUMBER_VALUE can not be converted to a String",
        "",
    ),
    "underscore-name": (
        lambda g: {"TrainingJobName": "my_job"},
        lambda g: {},
        "ValidationException",
        "1 validation error detected: Value 'my_job' at 'trainingJobName' failed to satisfy "
        f"constraint: {NAME_RULE}",
        "{0,62}",
    ),
    "zero-max-runtime": (
        lambda g: {"StoppingCondition": {"MaxRuntimeInSeconds": 0}},
        lambda g: {"StoppingCondition": {"MaxRuntimeInSeconds": 1800}},
        "ValidationException",
        "1 validation error detected: Value '0' at 'stoppingCondition.maxRuntimeInSeconds' "
        "failed to satisfy constraint: Member must have value greater than or equal to 1",
        "1",
    ),
    "text-max-runtime": (
        lambda g: {"StoppingCondition": {"MaxRuntimeInSeconds": "abc"}},
        lambda g: {"StoppingCondition": {"MaxRuntimeInSeconds": 1800}},
        "SerializationException",
        "STRING_VALUE can not be converted to an Integer",
        "",
    ),
    "over-28-days": (
        lambda g: {"StoppingCondition": {"MaxRuntimeInSeconds": 2419201}},
        lambda g: {"StoppingCondition": {"MaxRuntimeInSeconds": 2419200}},
        "ValidationException",
        "1 validation error detected: Value '2419201' at 'stoppingCondition.maxRuntimeInSeconds'",
        "Member must have value less than or equal to 2419200",
    ),
    "101-hyperparameters": (
        lambda g: {"HyperParameters": hyperparameters(g, 101)},
        lambda g: {"HyperParameters": hyperparameters(g, 100)},
        "ValidationException",
        "1 validation error detected: Value '{",
        "at 'hyperParameters' failed to satisfy constraint: Member must have length less than "
        "or equal to 100",
    ),
    "long-hyperparameter": (
        lambda g: {"HyperParameters": hyperparameters(g, 10, notes="x" * 2501)},
        lambda g: {"HyperParameters": hyperparameters(g, 10, notes="x" * 2500)},
        "ValidationException",
        "1 validation error detected: Value '{",
        "at 'hyperParameters' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 2500, Member must have length greater "
        "than or equal to 0, Member must satisfy regular expression pattern: .*]",
    ),
    "numeric-hyperparameter": (
        lambda g: {"HyperParameters": hyperparameters(g, 10, epochs=5)},
        lambda g: {"HyperParameters": hyperparameters(g, 10, epochs="5")},
        "SerializationException",
        "NUMBER_VALUE can not be converted to a String",
        "",
    ),
    "hostile-channel": (
        lambda g: {"InputDataConfig": channel(g, "../../escape")},
        lambda g: {"InputDataConfig": channel(g, "train")},
        "ValidationException",
        "1 validation error detected: Value '../../escape' at "
        "'inputDataConfig.1.member.channelName' failed to satisfy constraint: Member must "
        r"satisfy regular expression pattern: [A-Za-z0-9\.\-_]+",
        "+",
    ),
    "dot-dot-channel": (
        lambda g: {"InputDataConfig": channel(g, "..")},
        lambda g: {"InputDataConfig": channel(g, "train")},
        "ValidationException",
        "ChannelName '..' is not supported by localcloud",
        "",
    ),
}


@pytest.mark.parametrize("case", CREATE_CASES)
def test_a_malformed_create_is_refused_and_harms_no_one(case, raw, good, anchor_arn):
    bad, fixed, code, starts, ends = CREATE_CASES[case]
    error = error_of(raw.create_training_job, **with_changes(good, **bad(good)))
    assert error["Code"] == code
    assert error["Message"].startswith(starts) and error["Message"].endswith(ends)
    still_answers(raw, anchor_arn)
    arn = created(raw, with_changes(good, **fixed(good)))
    assert ":training-job/ok-" in arn


def test_describe_and_stop_read_only_well_formed_names(raw, good, anchor_arn):
    assert error_of(raw.describe_training_job, TrainingJobName=12345) == {
        "Code": "SerializationException",
        "Message": "NUMBER_VALUE can not be converted to a String",
    }
    error = error_of(raw.describe_training_job, TrainingJobName="my_job")
    assert error["Message"].endswith(
        f"at 'trainingJobName' failed to satisfy constraint: {NAME_RULE}"
    )
    name = good["TrainingJobName"]
    assert raw.describe_training_job(TrainingJobName=name)["TrainingJobArn"] == anchor_arn
    error = error_of(raw.stop_training_job, TrainingJobName={"Name": name})
    assert error["Code"] == "SerializationException"
    assert error["Message"] == "Start of structure or map found where not expected"
    created(raw, with_changes(good))  # which stops it with a well-formed name
    still_answers(raw, anchor_arn)


@pytest.mark.parametrize(
    ("bad", "code", "text", "fixed"),
    [
        (
            {"MaxResults": 0},
            "ValidationException",
            "1 validation error detected: Value '0' at 'maxResults' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1",
            {"MaxResults": 1},
        ),
        (
            {"SortBy": "Size"},
            "ValidationException",
            "1 validation error detected: Value 'Size' at 'sortBy' failed to satisfy "
            "constraint: Member must satisfy enum value set: [Name, CreationTime, Status]",
            {"SortBy": "Status"},
        ),
        (
            {"NameContains": 5},
            "SerializationException",
            "NUMBER_VALUE can not be converted to a String",
            {"NameContains": "5"},
        ),
        (
            {"StatusEquals": "Done"},
            "ValidationException",
            "1 validation error detected: Value 'Done' at 'statusEquals' failed to satisfy "
            "constraint: Member must satisfy enum value set: [InProgress, Completed, Failed, "
            "Stopping, Stopped, Deleting]",
            {"StatusEquals": "Completed"},
        ),
    ],
    ids=["max-results", "sort-by", "name-contains", "status"],
)
def test_list_training_jobs_checks_its_filters(bad, code, text, fixed, raw, anchor_arn):
    assert error_of(raw.list_training_jobs, **bad) == {"Code": code, "Message": text}
    assert "TrainingJobSummaries" in raw.list_training_jobs(**fixed)
    still_answers(raw, anchor_arn)


def test_tags_on_a_training_job_are_checked(raw, anchor_arn):
    error = error_of(raw.add_tags, ResourceArn=anchor_arn, Tags=[{"Key": 5, "Value": "v"}])
    assert (error["Code"], error["Message"]) == (
        "SerializationException",
        "NUMBER_VALUE can not be converted to a String",
    )
    error = error_of(raw.add_tags, ResourceArn=anchor_arn, Tags=[{"Key": "a,b", "Value": "v"}])
    assert error["Message"] == (
        "1 validation error detected: Value 'a,b' at 'tags.1.member.key' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
    )
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    error = error_of(raw.add_tags, ResourceArn=anchor_arn, Tags=many)
    assert error["Message"].endswith(
        "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"
    )
    raw.add_tags(ResourceArn=anchor_arn, Tags=[{"Key": "checked", "Value": "yes"}])
    assert {"Key": "checked", "Value": "yes"} in raw.list_tags(ResourceArn=anchor_arn)["Tags"]

    error = error_of(raw.delete_tags, ResourceArn=anchor_arn, TagKeys=[])
    assert error["Message"] == (
        "1 validation error detected: Value '[]' at 'tagKeys' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )
    raw.delete_tags(ResourceArn=anchor_arn, TagKeys=["checked"])
    assert {"Key": "checked", "Value": "yes"} not in raw.list_tags(ResourceArn=anchor_arn)["Tags"]

    error = error_of(raw.list_tags, ResourceArn=anchor_arn, MaxResults=10)
    assert error["Message"].endswith("Member must have value greater than or equal to 50")
    error = error_of(raw.list_tags, ResourceArn=anchor_arn, NextToken="abc")
    assert error["Code"] == "ValidationException"
    assert "Tags" in raw.list_tags(ResourceArn=anchor_arn, MaxResults=50, NextToken="0")
    still_answers(raw, anchor_arn)


@pytest.fixture
def body_sent_as(raw: Any) -> Iterator[Callable[[str, Any], None]]:
    """Replace the JSON body of the next call to an operation (signed after the change)."""
    hooks: list[tuple[str, Callable[..., None]]] = []

    def replace(operation: str, body: Any) -> None:
        pending = [body]

        def swap(request: Any, **_: Any) -> None:
            if pending:
                request.data = json.dumps(pending.pop()).encode()

        event = f"before-sign.sagemaker.{operation}"
        raw.meta.events.register(event, swap)
        hooks.append((event, swap))

    yield replace
    for event, swap in hooks:
        raw.meta.events.unregister(event, swap)


def test_unknown_members_are_ignored_as_the_service_ignores_them(raw, good, body_sent_as):
    body = with_changes(good, Bogus={"anything": [1, 2]})
    body_sent_as("CreateTrainingJob", body)
    arn = created(raw, with_changes(good, TrainingJobName=body["TrainingJobName"]))
    assert arn.endswith(body["TrainingJobName"].lower())
    # the same path refuses what is malformed: the server reads the replaced body
    body_sent_as("CreateTrainingJob", {**body, "TrainingJobName": 5})
    error = error_of(raw.create_training_job, **with_changes(good))
    assert error == {
        "Code": "SerializationException",
        "Message": "NUMBER_VALUE can not be converted to a String",
    }
