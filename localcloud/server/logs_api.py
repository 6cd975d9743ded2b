"""CloudWatch Logs of the training-job group on the wire, kept on disk (server/logs_store.py).

Host lines arrive through `DiskLogWriter`; the reads the SDK's log poller makes behave as contract
§6 needs: GetLogEvents treats startTime as inclusive (endTime exclusive), keeps equal timestamps
in write order and ends with an empty page that carries the nextForwardToken it was given;
DescribeLogStreams sends no nextToken when everything fits in `limit`. FilterLogEvents merges
streams by time, with term patterns only. Every other log group stays with moto, and so do other
actions on this one (Delete*, retention, tags: moto answers that the group does not exist);
DescribeLogGroups lists both.
"""

from __future__ import annotations

import heapq
import logging
import re
import time
from typing import Any

from localcloud import shapes
from localcloud.config import LOG_GROUP
from localcloud.errors import AwsError
from localcloud.server.logs_store import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    OVERHEAD,
    PAGE_BYTES,
    LogStore,
    Stream,
    split_message,
)

GROUP_ACTIONS = frozenset(
    {
        "CreateLogGroup",
        "CreateLogStream",
        "PutLogEvents",
        "DescribeLogStreams",
        "GetLogEvents",
        "FilterLogEvents",
    }
)
ACTIONS = GROUP_ACTIONS | {"DescribeLogGroups"}  # every action answered here
_TOKEN = re.compile(r"([fb])/(\d{1,56})")
_TERM = re.compile(r'([?-]?)(?:"([^"]*)"|([\w.:/-]+))')
_TERMS = re.compile(rf"\s*(?:{_TERM.pattern}\s+)*(?:{_TERM.pattern})?\s*")  # terms, spaced
_GROUP_ARN = re.compile(r"arn:aws[\w-]*:logs:[\w-]*:\d*:log-group:(.+?)(:\*)?")
DESCRIBE_LIMIT = 50
MAX_AGE_MS = 14 * 24 * 3600 * 1000  # PutLogEvents rejects events older than 14 days...
MAX_AHEAD_MS = 2 * 3600 * 1000  # ...or more than 2 hours ahead


class DiskLogWriter:
    """LogWriter for the job manager: each host line as one event, or several if too long."""

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self._failed: set[str] = set()

    def __call__(self, region: str, stream: str, timestamp_ms: int, message: str) -> None:
        pieces = split_message(message)  # an empty line is no event, as CloudWatch's agents do
        if not pieces:
            return
        try:
            self.store.append(region, stream, [(timestamp_ms, p) for p in pieces], _now_ms())
        except OSError as exc:  # the job goes on (its host log file has the line); say so once
            if stream not in self._failed:
                self._failed.add(stream)
                logging.getLogger("localcloud").error("log stream %s: lines lost: %s", stream, exc)


def group_name(identifier: Any) -> str | None:
    """The group a logGroupName or logGroupIdentifier (a name or an ARN) names."""
    if not isinstance(identifier, str):
        return None
    match = _GROUP_ARN.fullmatch(identifier)
    return match.group(1) if match else identifier


def handles(action: str, body: dict[str, Any]) -> bool:
    """True for the calls about the training-job group (and listings that may include it)."""
    if action in GROUP_ACTIONS:
        return LOG_GROUP in (
            group_name(body.get("logGroupName")),
            group_name(body.get("logGroupIdentifier")),
        )
    if action == "DescribeLogGroups":
        return _may_list_ours(body)
    return False


def handle(
    store: LogStore, action: str, body: dict[str, Any], region: str, account: str
) -> dict[str, Any]:
    """Answer one Logs action for the training-job group (raises AwsError as the service would)."""
    body = _checked(action, body)
    if action == "DescribeLogGroups":
        return _describe_groups(store, body, region, account)
    if action == "CreateLogGroup":
        if not store.create_group(region, _now_ms()):
            raise AwsError(
                "ResourceAlreadyExistsException", "The specified log group already exists"
            )
        return {}
    if store.group_created(region) is None:
        raise _no_group()
    if action == "CreateLogStream":
        if store.create_stream(region, body["logStreamName"], _now_ms()) is None:
            raise AwsError(
                "ResourceAlreadyExistsException", "The specified log stream already exists"
            )
        return {}
    if action == "DescribeLogStreams":
        return _describe_streams(store, body, region, account)
    if action == "FilterLogEvents":
        return _filter(store, body, region)
    stream = store.stream(region, body["logStreamName"])
    if stream is None:
        raise AwsError("ResourceNotFoundException", "The specified log stream does not exist.")
    if action == "PutLogEvents":
        return _put(store, stream, body["logEvents"])
    return _get(store, stream, body)


def _checked(action: str, body: dict[str, Any]) -> dict[str, Any]:
    shape = shapes.service_model("logs").operation_model(action).input_shape
    try:
        clean, problems = shapes.check(shape, body)
    except shapes.SerializationError as exc:
        raise AwsError("SerializationException", str(exc)) from None
    if problems:
        raise _invalid(shapes.combine(problems))
    names = [clean.get("logGroupName"), clean.get("logGroupIdentifier")]
    if action in GROUP_ACTIONS and None not in names:  # UNCONFIRMED: the service's wording
        raise _invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    return clean


def _get(store: LogStore, stream: Stream, body: dict[str, Any]) -> dict[str, Any]:
    low = store.position(stream, body.get("startTime"))
    high = store.position(stream, body["endTime"]) if "endTime" in body else stream.count
    limit = body.get("limit", 10_000)
    token = body.get("nextToken")
    if token is not None:
        match = _TOKEN.fullmatch(token)
        if match is None or int(match.group(2)) > stream.count:
            raise _invalid("The specified nextToken is invalid.")
        forward, at = match.group(1) == "f", int(match.group(2))
    else:
        forward = bool(body.get("startFromHead"))
        at = low if forward else high
    if forward:
        first, events = store.read(stream, max(at, low), high, limit=limit)
    else:
        first, events = store.read(stream, low, min(at, high), limit=limit, from_end=True)
        first = first if events else min(at, high)
    return {
        "events": [
            {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
            for e in events
        ],
        "nextForwardToken": f"f/{first + len(events):056d}",
        "nextBackwardToken": f"b/{first:056d}",
    }


def _put(store: LogStore, stream: Stream, events: list[dict[str, Any]]) -> dict[str, Any]:
    total = 0
    for before, event in zip([None, *events], events, strict=False):
        if before is not None and event["timestamp"] < before["timestamp"]:
            raise _invalid(
                "Log events in a single PutLogEvents request must be in chronological order."
            )
        size = len(event["message"].encode("utf-8", "surrogatepass")) + OVERHEAD
        if size - OVERHEAD > MAX_EVENT_BYTES:
            # public reports quote "Log event too large: 292824 bytes exceeds limit of 262144"
            # from when the cap was 256 KB; the limit is now 1 MB (PutLogEvents reference)
            raise _invalid(f"Log event too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}")
        total += size
    if total > MAX_BATCH_BYTES:
        # UNCONFIRMED wording, in the form of the one above
        raise _invalid(f"Upload too large: {total} bytes exceeds limit of {MAX_BATCH_BYTES}")
    now = _now_ms()
    rejected: dict[str, int] = {}
    accepted = []
    for index, event in enumerate(events):
        if event["timestamp"] < now - MAX_AGE_MS:
            rejected["tooOldLogEventEndIndex"] = index
        elif event["timestamp"] > now + MAX_AHEAD_MS:
            rejected.setdefault("tooNewLogEventStartIndex", index)
        else:
            accepted.append((event["timestamp"], event["message"]))
    stream = store.append(stream.region, stream.name, accepted, now)
    answer: dict[str, Any] = {"nextSequenceToken": f"{stream.count:056d}"}
    if rejected:
        answer["rejectedLogEventsInfo"] = rejected
    return answer


def _filter(store: LogStore, body: dict[str, Any], region: str) -> dict[str, Any]:
    """FilterLogEvents, oldest first, over the chosen streams merged by time."""
    names, prefix = body.get("logStreamNames"), body.get("logStreamNamePrefix")
    if names is not None and prefix is not None:  # UNCONFIRMED: the service's wording
        raise _invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
    if body.get("startFromHead") is False:
        raise _invalid("localcloud answers FilterLogEvents oldest first only (startFromHead)")
    matches = _matcher(body.get("filterPattern") or "")
    streams = sorted(
        (
            s
            for s in store.streams(region)
            if (names is None or s.name in names) and (prefix is None or s.name.startswith(prefix))
        ),
        key=lambda s: s.id,
    )
    after = _after(body.get("nextToken"))
    start, end = body.get("startTime"), body.get("endTime")

    def keyed(stream: Stream) -> Any:
        begin = store.position(stream, start)
        if after is not None:  # resume past the last event sent: (timestamp, stream id, index)
            ts, sid, index = after
            resume = (
                index + 1 if stream.id == sid else store.position(stream, ts + (stream.id < sid))
            )
            begin = max(begin, resume)
        stop = store.position(stream, end + 1) if end is not None else stream.count
        for index, event in store.scan(stream, begin, stop):
            yield (event.timestamp, stream.id, index), stream, event

    found: list[Any] = []
    size, more = 0, False
    for key, stream, event in heapq.merge(*map(keyed, streams), key=lambda item: item[0]):
        if not matches(event.message):
            continue
        cost = len(event.message.encode("utf-8", "surrogatepass")) + OVERHEAD
        if len(found) == body.get("limit", 10_000) or (found and size + cost > PAGE_BYTES):
            more = True
            break
        found.append((key, stream, event))
        size += cost
    answer: dict[str, Any] = {
        "events": [
            {
                "logStreamName": stream.name,
                "timestamp": event.timestamp,
                "message": event.message,
                "ingestionTime": event.ingestion_time,
                "eventId": f"{key[1]:012d}{key[2]:044d}",
            }
            for key, stream, event in found
        ],
        "searchedLogStreams": [
            {"logStreamName": s.name, "searchedCompletely": not more} for s in streams
        ],
    }
    if more:
        answer["nextToken"] = "/".join(map(str, found[-1][0]))
    return answer


def _after(token: str | None) -> tuple[int, int, int] | None:
    if token is None:
        return None
    parts = token.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise _invalid("The specified nextToken is invalid.")
    ts, sid, index = map(int, parts)
    return ts, sid, index


def _matcher(pattern: str) -> Any:
    """A test for term patterns; JSON, space-delimited and regex ones are refused, not guessed."""
    if _TERMS.fullmatch(pattern) is None:
        raise _invalid(
            'localcloud supports only term filter patterns: words, "phrases", ?any-of, -none-of'
        )
    terms = _TERM.findall(pattern)
    need = [q or w for s, q, w in terms if not s and (q or w)]
    some = [q or w for s, q, w in terms if s == "?"]
    never = [q or w for s, q, w in terms if s == "-"]

    def matches(message: str) -> bool:
        return (
            all(t in message for t in need)
            and (not some or any(t in message for t in some))
            and not any(t in message for t in never)
        )

    return matches


def _describe_streams(
    store: LogStore, body: dict[str, Any], region: str, account: str
) -> dict[str, Any]:
    order, prefix = body.get("orderBy", "LogStreamName"), body.get("logStreamNamePrefix")
    if order == "LastEventTime" and prefix is not None:
        raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
    streams = [s for s in store.streams(region) if prefix is None or s.name.startswith(prefix)]
    if order == "LastEventTime":
        streams.sort(key=lambda s: (s.last_ts if s.last_ts is not None else s.created_ms, s.name))
    else:
        streams.sort(key=lambda s: s.name)
    if body.get("descending"):
        streams.reverse()
    items, token = _page(streams, body)
    answer: dict[str, Any] = {"logStreams": [_stream(s, region, account) for s in items]}
    if token:
        answer["nextToken"] = token
    return answer


def _stream(stream: Stream, region: str, account: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "logStreamName": stream.name,
        "creationTime": stream.created_ms,
        "arn": f"{_group_arn(region, account)}:log-stream:{stream.name}",
        "storedBytes": 0,  # no longer reported for streams (0 since 2019, says the API reference)
    }
    if stream.count:
        out["firstEventTimestamp"] = stream.first_ts
        out["lastEventTimestamp"] = stream.last_ts
        out["lastIngestionTime"] = stream.last_ingestion
    return out


def _may_list_ours(body: dict[str, Any]) -> bool:
    identifiers = body.get("logGroupIdentifiers")
    if identifiers is not None:
        return isinstance(identifiers, list) and LOG_GROUP in map(group_name, identifiers)
    prefix, pattern = body.get("logGroupNamePrefix") or "", body.get("logGroupNamePattern") or ""
    return (
        isinstance(prefix, str)
        and isinstance(pattern, str)
        and LOG_GROUP.startswith(prefix)
        and pattern in LOG_GROUP
    )


def _describe_groups(
    store: LogStore, body: dict[str, Any], region: str, account: str
) -> dict[str, Any]:
    from moto.logs.models import logs_backends

    groups = [
        group.to_describe_dict()
        for name, group in logs_backends[account][region].groups.items()
        if name != LOG_GROUP
    ]
    created = store.group_created(region)
    if created is not None:
        arn = _group_arn(region, account)
        stored = sum(s.end for s in store.streams(region))
        groups.append(
            {
                "logGroupName": LOG_GROUP,
                "creationTime": created,
                "metricFilterCount": 0,
                "arn": f"{arn}:*",
                "logGroupArn": arn,
                "storedBytes": stored,
                "logGroupClass": "STANDARD",
            }
        )
    identifiers = body.get("logGroupIdentifiers")
    prefix, pattern = body.get("logGroupNamePrefix"), body.get("logGroupNamePattern")
    if prefix is not None and pattern is not None:  # UNCONFIRMED: the service's wording
        raise _invalid(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
        )
    if identifiers is not None:
        wanted = set(map(group_name, identifiers))
        groups = [g for g in groups if g["logGroupName"] in wanted]
    if prefix is not None:
        groups = [g for g in groups if g["logGroupName"].startswith(prefix)]
    if pattern is not None:
        keep = ("arn", "creationTime", "logGroupName")  # all a pattern search answers with
        groups = [{k: g[k] for k in keep} for g in groups if pattern in g["logGroupName"]]
    groups.sort(key=lambda g: g["logGroupName"])
    items, token = _page(groups, body)
    answer: dict[str, Any] = {"logGroups": items}
    if token:
        answer["nextToken"] = token
    return answer


def _page(items: list[Any], body: dict[str, Any]) -> tuple[list[Any], str | None]:
    """One page (limit, default 50) and the offset token of the next, None when none follows."""
    token = body.get("nextToken")
    if token is not None and not (token.isdigit() and int(token) <= len(items)):
        raise _invalid("The specified nextToken is invalid.")
    start = int(token or 0)
    stop = start + body.get("limit", DESCRIBE_LIMIT)
    return items[start:stop], (str(stop) if stop < len(items) else None)


def _group_arn(region: str, account: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{LOG_GROUP}"


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message)


def _no_group() -> AwsError:
    return AwsError("ResourceNotFoundException", "The specified log group does not exist.")


def _now_ms() -> int:
    return int(time.time() * 1000)
