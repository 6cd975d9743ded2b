"""CloudWatch Logs reads behave as the SDK's log poller needs (contract §6)."""

from __future__ import annotations

import time

import pytest
from _lc_jobs import unique

pytestmark = pytest.mark.localcloud


@pytest.fixture
def stream(localcloud_server):
    logs = localcloud_server.client("logs")
    group, name = unique("/test/group"), "job/algo-1-1"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=name)
    now = int(time.time() * 1000)
    events = [(now, "a"), (now + 10, "b"), (now + 10, "c"), (now + 20, "d")]
    logs.put_log_events(
        logGroupName=group,
        logStreamName=name,
        logEvents=[{"timestamp": t, "message": m} for t, m in events],
    )
    return logs, group, name, now


def test_start_time_is_inclusive_and_equal_timestamps_keep_their_order(stream):
    logs, group, name, now = stream
    page = logs.get_log_events(
        logGroupName=group, logStreamName=name, startTime=now + 10, startFromHead=True
    )
    assert [e["message"] for e in page["events"]] == ["b", "c", "d"]


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
    logs, group, _, _ = stream
    answer = logs.describe_log_streams(
        logGroupName=group, logStreamNamePrefix="job/", orderBy="LogStreamName", limit=1
    )
    assert len(answer["logStreams"]) == 1
    assert "nextToken" not in answer
