"""The training-job log store: events on disk, paged reads, and what a restart or a kill leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from localcloud.server.logs_store import (
    ENTRY,
    HEADER,
    MAX_EVENT_BYTES,
    OVERHEAD,
    LogStore,
    split_message,
)

REGION = "us-east-1"


@pytest.fixture
def store(tmp_path):
    opened = LogStore(tmp_path / "logs")
    yield opened
    opened.close()


def messages(store: LogStore, name: str = "job/algo-1-1") -> list[str]:
    stream = store.stream(REGION, name)
    return [e.message for e in store.iter_events(stream)] if stream else []


def test_a_long_line_is_cut_at_the_event_limit_and_an_empty_one_is_no_event():
    line = "x" * int(2.5 * 1024 * 1024)
    pieces = split_message(line)
    assert [len(p) for p in pieces] == [
        MAX_EVENT_BYTES,
        MAX_EVENT_BYTES,
        len(line) - 2 * MAX_EVENT_BYTES,
    ]
    assert "".join(pieces) == line
    assert MAX_EVENT_BYTES + OVERHEAD == 1_048_576
    assert split_message("x" * MAX_EVENT_BYTES) == ["x" * MAX_EVENT_BYTES]
    assert split_message("") == []


def test_a_cut_never_falls_inside_a_character():
    pieces = split_message("aéé€", limit=4)  # bytes: a, é(2), é(2), €(3)
    assert pieces == ["aé", "é", "€"]
    assert all(len(p.encode()) <= 4 for p in pieces)


def test_events_come_back_in_order_and_start_time_is_inclusive(store):
    store.append(REGION, "job/algo-1-1", [(100, "a"), (110, "b"), (110, "c"), (120, "d")], 130)
    stream = store.stream(REGION, "job/algo-1-1")
    assert (stream.count, stream.first_ts, stream.last_ts, stream.last_ingestion) == (
        4,
        100,
        120,
        130,
    )
    assert store.position(stream, 110) == 1
    assert store.position(stream, 111) == 3
    assert store.position(stream, 121) == 4
    first, events = store.read(stream, store.position(stream, 110), stream.count)
    assert first == 1 and [e.message for e in events] == ["b", "c", "d"]
    assert events[0].ingestion_time == 130


def test_a_clock_stepped_back_keeps_the_stream_in_time_order(store):
    store.append(REGION, "s", [(200, "late"), (150, "stepped back")], 210)
    stream = store.stream(REGION, "s")
    assert [e.timestamp for e in store.iter_events(stream)] == [200, 200]


def test_pages_are_bounded_by_limit_and_by_a_megabyte(store):
    big = "y" * 600_000
    store.append(REGION, "s", [(1, "a"), (2, big), (3, big), (4, "b")], 5)
    stream = store.stream(REGION, "s")
    assert [e.message for e in store.read(stream, 0, 4, limit=2)[1]] == ["a", big]
    first, events = store.read(stream, 1, 4)  # two 600 kB events don't fit in one page
    assert first == 1 and [len(e.message) for e in events] == [600_000]
    first, events = store.read(stream, 0, 4, max_bytes=10)  # at least one event, always
    assert (first, [e.message for e in events]) == (0, ["a"])
    first, events = store.read(stream, 0, 4, limit=2, from_end=True)
    assert first == 2 and [e.message for e in events] == [big, "b"]
    assert store.read(stream, 4, 4) == (4, [])


def test_streams_and_events_survive_closing_and_opening(tmp_path):
    store = LogStore(tmp_path / "logs")
    store.append(REGION, "job/algo-1-1", [(1, "one"), (2, "two")], 3)
    store.create_stream("eu-west-1", "empty", 4)
    store.close()
    again = LogStore(tmp_path / "logs")
    try:
        assert messages(again) == ["one", "two"]
        assert again.stream("eu-west-1", "empty").count == 0
        assert again.group_created(REGION) == 3 and again.group_created("eu-west-1") == 4
        assert again.create_stream(REGION, "job/algo-1-1", 5) is None  # it exists already
        again.append(REGION, "job/algo-1-1", [(6, "three")], 7)
        assert messages(again) == ["one", "two", "three"]
    finally:
        again.close()


def _stream_files(root, store_name="job/algo-1-1"):
    store = LogStore(root)
    store.append(REGION, store_name, [(i, f"event {i}") for i in range(10)], 100)
    stream = store.stream(REGION, store_name)
    store.close()
    return root / f"{stream.id}.events", root / f"{stream.id}.index"


def test_a_record_cut_off_by_a_crash_is_dropped_and_the_rest_kept(tmp_path):
    events, _ = _stream_files(tmp_path / "logs")
    with open(events, "r+b") as handle:
        handle.truncate(events.stat().st_size - 3)  # the last write stopped short
    store = LogStore(tmp_path / "logs")
    try:
        assert messages(store) == [f"event {i}" for i in range(9)]
        store.append(REGION, "job/algo-1-1", [(20, "after")], 21)
        assert messages(store)[-2:] == ["event 8", "after"]
    finally:
        store.close()


def test_records_written_but_not_indexed_are_indexed_at_open(tmp_path):
    events, index = _stream_files(tmp_path / "logs")
    with open(index, "r+b") as handle:
        handle.truncate(3 * ENTRY.size + 5)  # three entries and a torn fourth
    store = LogStore(tmp_path / "logs")
    try:
        stream = store.stream(REGION, "job/algo-1-1")
        assert messages(store) == [f"event {i}" for i in range(10)]
        assert store.position(stream, 7) == 7
        assert index.stat().st_size == 10 * ENTRY.size
    finally:
        store.close()


def test_an_index_entry_beyond_the_events_is_dropped(tmp_path):
    events, index = _stream_files(tmp_path / "logs")
    with open(index, "ab") as handle:
        handle.write(ENTRY.pack(events.stat().st_size, 10))  # indexed, never written
    store = LogStore(tmp_path / "logs")
    try:
        assert messages(store) == [f"event {i}" for i in range(10)]
    finally:
        store.close()


def test_a_damaged_last_record_is_not_served(tmp_path):
    events, _ = _stream_files(tmp_path / "logs")
    with open(events, "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        handle.write(b"!")  # length intact, body not what was written
    store = LogStore(tmp_path / "logs")
    try:
        assert messages(store) == [f"event {i}" for i in range(9)]
    finally:
        store.close()


WRITER = """
import sys
from pathlib import Path
from localcloud.server.logs_store import LogStore
store = LogStore(Path(sys.argv[1]))
i = 0
while True:
    store.append("us-east-1", "job/algo-1-1", [(i, f"line {i} " + "z" * (i % 5000))], i)
    print(i, flush=True)
    i += 1
"""


def test_a_killed_writer_loses_no_event_it_wrote(tmp_path):
    root = tmp_path / "logs"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(2000):
            written = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    store = LogStore(root)
    try:
        got = messages(store)
        assert len(got) > written
        assert got == [f"line {i} " + "z" * (i % 5000) for i in range(len(got))]
    finally:
        store.close()


def test_files_are_named_by_number_never_by_the_stream_name(store):
    store.append(REGION, "../../outside/x", [(1, "a")], 2)
    store.append(REGION, "job/algo-2-1", [(1, "b")], 2)
    assert sorted(p.name for p in store.root.iterdir()) == [
        ".lock",
        "1.events",
        "1.index",
        "2.events",
        "2.index",
        "index.db",
    ]
    assert not (store.root.parent / "outside").exists()


def test_a_second_store_on_the_same_folder_is_refused_while_the_first_is_open(tmp_path):
    first = LogStore(tmp_path / "logs")
    with pytest.raises(RuntimeError, match="another process has the log store"):
        LogStore(tmp_path / "logs")
    first.close()
    second = LogStore(tmp_path / "logs")  # the same open, once the folder is free
    second.close()


def test_a_record_is_its_header_and_message(tmp_path):
    events, index = _stream_files(tmp_path / "logs")
    assert index.stat().st_size == 10 * ENTRY.size
    assert events.stat().st_size == sum(HEADER.size + len(f"event {i}") for i in range(10))


# ---- the wire (localcloud/server/logs_api.py) over a store, without a server ----------------


def _call(store: LogStore, action: str, **body):
    from localcloud import config
    from localcloud.server import logs_api

    return logs_api.handle(store, action, {"logGroupName": config.LOG_GROUP, **body}, REGION, "1")


def test_the_group_is_not_found_until_a_job_writes_a_line_to_it(store):
    from localcloud.errors import AwsError
    from localcloud.server.logs_api import DiskLogWriter

    writer = DiskLogWriter(store)
    writer(REGION, "job/algo-1-1", 1000, "")  # an empty line is no event, and makes nothing
    with pytest.raises(AwsError) as refused:
        _call(store, "DescribeLogStreams", logStreamNamePrefix="job/")
    assert refused.value.code == "ResourceNotFoundException"
    writer(REGION, "job/algo-1-1", 1000, "hello")
    [stream] = _call(store, "DescribeLogStreams", logStreamNamePrefix="job/")["logStreams"]
    assert stream["logStreamName"] == "job/algo-1-1" and stream["lastEventTimestamp"] == 1000


def test_the_writer_turns_a_long_line_into_events_of_at_most_the_limit(store):
    from localcloud.server.logs_api import DiskLogWriter

    line = "b" * (2 * MAX_EVENT_BYTES + 10)
    DiskLogWriter(store)(REGION, "job/algo-1-1", 1000, line)
    pages, token = [], None
    while True:
        extra = {"nextToken": token} if token else {}
        page = _call(
            store, "GetLogEvents", logStreamName="job/algo-1-1", startFromHead=True, **extra
        )
        if not page["events"]:
            break
        pages.append([e["message"] for e in page["events"]])
        token = page["nextForwardToken"]
    assert [len(p) for [p] in pages] == [MAX_EVENT_BYTES, MAX_EVENT_BYTES, 10]  # 1 MB pages
    assert "".join(p for [p] in pages) == line


def test_only_calls_about_the_training_job_group_are_taken_from_moto():
    from localcloud.config import LOG_GROUP
    from localcloud.server.logs_api import handles

    arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{LOG_GROUP}:*"
    assert handles("GetLogEvents", {"logGroupName": LOG_GROUP, "logStreamName": "s"})
    assert handles("GetLogEvents", {"logGroupIdentifier": arn, "logStreamName": "s"})
    assert not handles("GetLogEvents", {"logGroupName": "/test/other", "logStreamName": "s"})
    assert handles("DescribeLogGroups", {"logGroupNamePrefix": "/aws/sagemaker/"})
    assert handles("DescribeLogGroups", {})
    assert not handles("DescribeLogGroups", {"logGroupNamePrefix": "/test"})
    assert not handles("DeleteLogGroup", {"logGroupName": LOG_GROUP})


def test_a_failed_write_is_taken_back_so_the_next_event_lands_where_it_counts(
    tmp_path, monkeypatch
):
    from localcloud.server import logs_store

    store = LogStore(tmp_path / "logs")
    store.append(REGION, "s", [(1, "before")], 2)
    real, calls = logs_store._write_all, []

    def record_then_fail(fd, data):
        calls.append(fd)
        real(fd, data)  # the record is written...
        if len(calls) == 2:
            raise OSError(28, "No space left on device")  # ...its index entry half-written

    monkeypatch.setattr(logs_store, "_write_all", record_then_fail)
    with pytest.raises(OSError):
        store.append(REGION, "s", [(3, "lost")], 4)
    monkeypatch.undo()
    store.append(REGION, "s", [(5, "after")], 6)
    assert [e.message for e in store.iter_events(store.stream(REGION, "s"))] == ["before", "after"]
    store.close()
    again = LogStore(tmp_path / "logs")
    try:
        assert [e.message for e in again.iter_events(again.stream(REGION, "s"))] == [
            "before",
            "after",
        ]
    finally:
        again.close()


def test_the_writer_keeps_the_job_going_when_a_line_cannot_be_stored(store, caplog):
    from localcloud.server.logs_api import DiskLogWriter

    writer = DiskLogWriter(store)
    writer(REGION, "s", 1, "stored")

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    store.append = full  # type: ignore[method-assign]
    writer(REGION, "s", 2, "lost")
    writer(REGION, "s", 3, "lost too")
    assert [r.getMessage() for r in caplog.records] == [
        "log stream s: lines lost: [Errno 28] No space left on device"
    ]
    assert [e.message for e in store.iter_events(store.stream(REGION, "s"))] == ["stored"]


def test_a_stream_with_no_event_yet_reads_as_empty(store):
    stream = store.create_stream(REGION, "job/algo-1-1", 1)
    assert store.position(stream, 5) == 0
    assert store.read(stream, 0, 10) == (0, [])
    page = _call(store, "GetLogEvents", logStreamName="job/algo-1-1", startTime=5, endTime=9)
    assert page["events"] == [] and page["nextForwardToken"] == "f/" + "0" * 56
    store.append(REGION, "job/algo-1-1", [(6, "now one")], 7)  # the same calls, with an event
    assert _call(store, "GetLogEvents", logStreamName="job/algo-1-1", startTime=5)["events"]
