"""CloudWatch Logs reads behave as the SDK's log poller needs (contract §6), in moto's groups and in
the training-job group, which the server keeps on disk (localcloud/server/logs_api.py)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from _lc_jobs import unique
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud.config import LOG_GROUP
from localcloud.server.logs_store import MAX_EVENT_BYTES
from localcloud.shapes import service_model

pytestmark = pytest.mark.localcloud


def _in_group(logs: Any, group: str) -> str:
    """A fresh stream in the group (created if missing)."""
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        assert group == LOG_GROUP  # jobs of this session may have made it
    name = unique("job") + "/algo-1-1"
    logs.create_log_stream(logGroupName=group, logStreamName=name)
    return name


@pytest.fixture(params=["moto", "training-jobs"])
def stream(request, localcloud_server):
    logs = localcloud_server.client("logs")
    group = unique("/test/group") if request.param == "moto" else LOG_GROUP
    name = _in_group(logs, group)
    now = int(time.time() * 1000)
    events = [(now, "a"), (now + 10, "b"), (now + 10, "c"), (now + 20, "d")]
    logs.put_log_events(
        logGroupName=group,
        logStreamName=name,
        logEvents=[{"timestamp": t, "message": m} for t, m in events],
    )
    return logs, group, name, now


@pytest.fixture
def ours(localcloud_server):
    logs = localcloud_server.client("logs")
    name = _in_group(logs, LOG_GROUP)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=name,
        logEvents=[{"timestamp": now + i, "message": f"event {i}"} for i in range(10)],
    )
    return logs, name, now


def shape_problems(shape: Any, value: Any, path: str = "") -> list[str]:
    """Where a parsed answer departs from botocore's output shape (required members, types)."""
    kinds = {"string": str, "long": int, "integer": int, "boolean": bool, "list": list}
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return [f"{path}: not a structure"]
        problems = [f"{path}.{m}: missing" for m in shape.required_members if m not in value]
        unknown = set(value) - set(shape.members) - {"ResponseMetadata"}
        problems += [f"{path}.{m}: not in the model" for m in sorted(unknown)]
        for name, member in shape.members.items():
            if name in value:
                problems += shape_problems(member, value[name], f"{path}.{name}")
        return problems
    expected = kinds.get(shape.type_name)
    if expected and not isinstance(value, expected):
        return [f"{path}: {type(value).__name__}, not {shape.type_name}"]
    if shape.type_name == "list":
        return [
            p for i, v in enumerate(value) for p in shape_problems(shape.member, v, f"{path}[{i}]")
        ]
    if shape.type_name == "string" and len(value) < shape.metadata.get("min", 0):
        return [f"{path}: shorter than {shape.metadata['min']}"]
    return []


def conforms(action: str, answer: dict[str, Any]) -> list[str]:
    return shape_problems(service_model("logs").operation_model(action).output_shape, answer)


def test_start_time_is_inclusive_and_equal_timestamps_keep_their_order(stream):
    logs, group, name, now = stream
    page = logs.get_log_events(
        logGroupName=group, logStreamName=name, startTime=now + 10, startFromHead=True
    )
    assert [e["message"] for e in page["events"]] == ["b", "c", "d"]
    assert conforms("GetLogEvents", page) == []


def test_last_page_is_empty_with_the_same_forward_token(stream):
    logs, group, name, now = stream
    first = logs.get_log_events(
        logGroupName=group, logStreamName=name, startTime=now, startFromHead=True
    )
    second = logs.get_log_events(
        logGroupName=group,
        logStreamName=name,
        startTime=now,
        startFromHead=True,
        nextToken=first["nextForwardToken"],
    )
    third = logs.get_log_events(
        logGroupName=group,
        logStreamName=name,
        startTime=now,
        startFromHead=True,
        nextToken=second["nextForwardToken"],
    )
    assert len(first["events"]) == 4
    assert second["events"] == [] and third["events"] == []
    assert third["nextForwardToken"] == second["nextForwardToken"]


def test_describe_log_streams_has_no_next_token_within_limit(stream):
    logs, group, name, _ = stream
    prefix = name.split("/")[0] + "/"
    answer = logs.describe_log_streams(
        logGroupName=group, logStreamNamePrefix=prefix, orderBy="LogStreamName", limit=1
    )
    assert [s["logStreamName"] for s in answer["logStreams"]] == [name]
    assert "nextToken" not in answer
    assert conforms("DescribeLogStreams", answer) == []


def test_the_sdks_paging_reads_every_event_of_a_stream_once(ours):
    logs, name, now = ours
    seen, token = [], None
    while True:
        extra = {"nextToken": token} if token else {}
        page = logs.get_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=name,
            startTime=now,
            startFromHead=True,
            limit=3,
            **extra,
        )
        if not page["events"]:
            break
        seen += [e["message"] for e in page["events"]]
        token = page["nextForwardToken"]
    assert seen == [f"event {i}" for i in range(10)]


def test_without_start_from_head_the_latest_events_come_first_and_backward_tokens_page(ours):
    logs, name, now = ours
    last = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=name, limit=4)
    assert [e["message"] for e in last["events"]] == [f"event {i}" for i in range(6, 10)]
    before = logs.get_log_events(
        logGroupName=LOG_GROUP, logStreamName=name, limit=4, nextToken=last["nextBackwardToken"]
    )
    assert [e["message"] for e in before["events"]] == [f"event {i}" for i in range(2, 6)]


def test_end_time_is_exclusive(ours):
    logs, name, now = ours
    page = logs.get_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=name,
        startTime=now + 2,
        endTime=now + 5,
        startFromHead=True,
    )
    assert [e["message"] for e in page["events"]] == ["event 2", "event 3", "event 4"]


def test_a_token_not_given_by_the_server_is_refused(ours):
    logs, name, _ = ours
    page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=name, startFromHead=True)
    again = logs.get_log_events(
        logGroupName=LOG_GROUP, logStreamName=name, nextToken=page["nextBackwardToken"]
    )
    assert again["events"] == []  # a token it gave is taken (backward from the head: nothing)
    for token in ("x/1", "f/99999", "f/-1"):
        with pytest.raises(logs.exceptions.InvalidParameterException, match="nextToken"):
            logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=name, nextToken=token)


def test_a_stream_that_does_not_exist_is_not_found(ours):
    logs, name, _ = ours
    assert logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=name)["events"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException, match="log stream"):
        logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=name + "-missing")


def test_describe_log_streams_pages_and_orders(localcloud_server):
    logs = localcloud_server.client("logs")
    job = unique("pages")
    names = [f"{job}/algo-{i}-1" for i in (1, 2, 3)]
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=LOG_GROUP)
    for name in names:
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=name)
    first = logs.describe_log_streams(
        logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/", limit=2
    )
    rest = logs.describe_log_streams(
        logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/", limit=2, nextToken=first["nextToken"]
    )
    assert [s["logStreamName"] for s in first["logStreams"] + rest["logStreams"]] == names
    assert "nextToken" not in rest
    down = logs.describe_log_streams(
        logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/", descending=True
    )
    assert [s["logStreamName"] for s in down["logStreams"]] == names[::-1]
    by_time = logs.describe_log_streams(
        logGroupName=LOG_GROUP, orderBy="LastEventTime", descending=True
    )
    assert conforms("DescribeLogStreams", by_time) == []
    with pytest.raises(logs.exceptions.InvalidParameterException, match="LastEventTime"):
        logs.describe_log_streams(
            logGroupName=LOG_GROUP, orderBy="LastEventTime", logStreamNamePrefix=f"{job}/"
        )


def test_describe_log_groups_lists_moto_groups_and_the_training_job_group(stream):
    logs, group, _, _ = stream
    answer = logs.describe_log_groups(logGroupNamePrefix="/")
    names = [g["logGroupName"] for g in answer["logGroups"]]
    assert LOG_GROUP in names and names == sorted(names)
    assert conforms("DescribeLogGroups", answer) == []
    assert [
        g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    ][:1] == [group]
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=LOG_GROUP)


def test_put_log_events_takes_an_event_at_the_limit_and_refuses_one_beyond(ours, localcloud_server):
    logs, name, now = ours
    at_limit = "m" * MAX_EVENT_BYTES
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=name,
        logEvents=[{"timestamp": now + 20, "message": at_limit}],
    )
    with pytest.raises(logs.exceptions.InvalidParameterException, match="Log event too large"):
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=name,
            logEvents=[{"timestamp": now + 21, "message": at_limit + "m"}],
        )
    unchecked = localcloud_server.boto_session.client(
        "logs", config=Config(parameter_validation=False)
    )
    with pytest.raises(ClientError, match="greater than or equal to 1"):
        unchecked.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=name,
            logEvents=[{"timestamp": now + 22, "message": ""}],
        )
    page = logs.get_log_events(
        logGroupName=LOG_GROUP, logStreamName=name, startTime=now + 20, startFromHead=True
    )
    assert [len(e["message"]) for e in page["events"]] == [MAX_EVENT_BYTES]


def test_filter_log_events_merges_streams_by_time_and_pages_with_its_token(localcloud_server):
    logs = localcloud_server.client("logs")
    one = _in_group(logs, LOG_GROUP)
    job = one.split("/")[0]
    two = f"{job}/algo-2-1"
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=two)
    now = int(time.time() * 1000)
    for name, start in ((one, 0), (two, 1)):
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=name,
            logEvents=[
                {"timestamp": now + t, "message": f"loss {t}" + (" debug" if t % 4 == 0 else "")}
                for t in range(start, 10, 2)
            ],
        )
    everything = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job}/")
    assert [e["message"].split()[1] for e in everything["events"]] == [str(t) for t in range(10)]
    assert {e["logStreamName"] for e in everything["events"]} == {one, two}
    assert "nextToken" not in everything
    assert conforms("FilterLogEvents", everything) == []
    seen, token = [], None
    while True:
        extra = {"nextToken": token} if token else {}
        page = logs.filter_log_events(
            logGroupName=LOG_GROUP,
            logStreamNames=[one, two],
            filterPattern="loss -debug",
            startTime=now + 1,
            limit=2,
            **extra,
        )
        seen += [e["message"] for e in page["events"]]
        token = page.get("nextToken")
        if token is None:
            break
    assert seen == [f"loss {t}" for t in (1, 2, 3, 5, 6, 7, 9)]


def test_filter_patterns_beyond_terms_are_refused_not_guessed(ours):
    logs, name, _ = ours
    found = logs.filter_log_events(
        logGroupName=LOG_GROUP, logStreamNames=[name], filterPattern='"event 3"'
    )
    assert [e["message"] for e in found["events"]] == ["event 3"]
    with pytest.raises(logs.exceptions.InvalidParameterException, match="term filter patterns"):
        logs.filter_log_events(
            logGroupName=LOG_GROUP, logStreamNames=[name], filterPattern="{ $.level = 3 }"
        )
