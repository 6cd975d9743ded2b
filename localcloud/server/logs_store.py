"""Training-job log events on disk, so they cost the server no memory and survive restarts.

`<home>/logs/` holds, per stream, files named by the stream's row number (never by its name, which
comes from a job name), and one table of streams:

- `index.db` (SQLite): `groups(region, created_ms)`, `streams(id, region, name, created_ms)`;
- `<id>.events`: the stream's records, appended in order: a 24-byte header (timestamp ms,
  ingestion ms, message length, CRC-32 of the message) and the message in UTF-8;
- `<id>.index`: 16 bytes per event (offset of its record, its timestamp), so event n is found
  with one read and a time with a binary search.

Each event is one write(2) of its record, then one of its index entry: once written the kernel
has them, so a SIGKILL loses nothing written. Opening the store checks each stream's index against
its events file, drops what a cut-off write left, and indexes records written but not indexed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

HEADER = struct.Struct("<qqII")  # timestamp ms, ingestion ms, message bytes, crc32
ENTRY = struct.Struct("<qq")  # record offset, timestamp ms
OVERHEAD = 26  # bytes CloudWatch counts per event on top of its message (PutLogEvents)
MAX_BATCH_BYTES = 1_048_576  # PutLogEvents: a batch is at most this, messages + 26 per event
MAX_EVENT_BYTES = MAX_BATCH_BYTES - OVERHEAD  # so one event's message is at most 1,048,550
PAGE_BYTES = 1_048_576  # GetLogEvents: a page holds up to 1 MB of events...
PAGE_EVENTS = 10_000  # ...and up to 10,000 of them
OPEN_STREAMS = 16  # write handles kept open (streams of running jobs)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (region TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (region, name)
);
"""


class Event(NamedTuple):
    """One stored log event."""

    timestamp: int
    message: str
    ingestion_time: int


@dataclass(frozen=True)
class Stream:
    """What the store knows of a stream without reading its events."""

    id: int
    region: str
    name: str
    created_ms: int
    count: int = 0  # events stored
    end: int = 0  # bytes of its events file that hold complete, indexed records
    first_ts: int | None = None
    last_ts: int | None = None
    last_ingestion: int | None = None


def split_message(message: str, limit: int = MAX_EVENT_BYTES) -> list[str]:
    """A line cut into messages of at most `limit` UTF-8 bytes, never inside a character.

    An empty line gives none: CloudWatch refuses an empty message, and its agents skip them.
    """
    data = message.encode("utf-8", "surrogatepass")
    pieces = []
    while data:
        cut = min(limit, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # a continuation byte: back off
            cut -= 1
        pieces.append(data[:cut].decode("utf-8", "surrogatepass"))
        data = data[cut:]
    return pieces


class LogStore:
    """The streams of one log group, per region, in a folder; thread-safe, one process at a time."""

    def __init__(self, root: Path) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root = root
        self._lock = threading.Lock()
        self._lock_file = open(root / ".lock", "w")  # noqa: SIM115 - held while the store is open
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RuntimeError(f"another process has the log store {root} open") from None
        self._db = sqlite3.connect(root / "index.db", check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._groups: dict[str, int] = dict(
            self._db.execute("SELECT region, created_ms FROM groups")
        )
        self._streams: dict[tuple[str, str], Stream] = {}
        self._open: OrderedDict[int, tuple[int, int]] = OrderedDict()  # id -> (events, index) fds
        rows = self._db.execute("SELECT id, region, name, created_ms FROM streams ORDER BY id")
        for row in rows.fetchall():
            stream = self._repair(Stream(*row))
            self._streams[(stream.region, stream.name)] = stream

    def close(self) -> None:
        """Close every file; the store can be opened again, by this process or another."""
        with self._lock:
            for events_fd, index_fd in self._open.values():
                os.close(events_fd)
                os.close(index_fd)
            self._open.clear()
            self._db.close()
            self._lock_file.close()

    # ---- the table -------------------------------------------------------------------------

    def group_created(self, region: str) -> int | None:
        """When the group was created in this region (ms), None while it doesn't exist."""
        with self._lock:
            return self._groups.get(region)

    def create_group(self, region: str, now_ms: int) -> bool:
        """Create the group in this region; False if it existed."""
        with self._lock:
            return self._create_group(region, now_ms)

    def stream(self, region: str, name: str) -> Stream | None:
        """The stream as of now, or None."""
        with self._lock:
            return self._streams.get((region, name))

    def streams(self, region: str) -> list[Stream]:
        """Every stream of the region, as of now."""
        with self._lock:
            return [s for (r, _), s in self._streams.items() if r == region]

    def create_stream(self, region: str, name: str, now_ms: int) -> Stream | None:
        """Create an empty stream (and the group); None if it existed."""
        with self._lock:
            if (region, name) in self._streams:
                return None
            return self._create_stream(region, name, now_ms)

    # ---- writing ---------------------------------------------------------------------------

    def append(
        self, region: str, name: str, events: Iterable[tuple[int, str]], ingestion_ms: int
    ) -> Stream:
        """Append (timestamp ms, message) events, creating the group and stream if missing.

        A timestamp earlier than the stream's last is stored as the last: a stream stays in time
        order, as CloudWatch keeps it (only a clock stepped back makes that happen).
        """
        with self._lock:
            stream = self._streams.get((region, name)) or self._create_stream(
                region, name, ingestion_ms
            )
            events_fd, index_fd = self._handles(stream)
            for timestamp, message in events:
                body = message.encode("utf-8", "surrogatepass")
                if stream.last_ts is not None and timestamp < stream.last_ts:
                    timestamp = stream.last_ts
                header = HEADER.pack(timestamp, ingestion_ms, len(body), zlib.crc32(body))
                try:
                    _write_all(events_fd, header + body)
                    _write_all(index_fd, ENTRY.pack(stream.end, timestamp))
                except OSError:  # a full disk: take back what half got written, so the
                    os.ftruncate(events_fd, stream.end)  # next append lands where it counts
                    os.ftruncate(index_fd, stream.count * ENTRY.size)
                    raise
                stream = replace(
                    stream,
                    count=stream.count + 1,
                    end=stream.end + HEADER.size + len(body),
                    first_ts=timestamp if stream.first_ts is None else stream.first_ts,
                    last_ts=timestamp,
                    last_ingestion=ingestion_ms,
                )
                self._streams[(region, name)] = stream
            return stream

    # ---- reading ---------------------------------------------------------------------------

    def position(self, stream: Stream, timestamp: int | None) -> int:
        """Index of the first event at or after `timestamp` (stream.count if none)."""
        if timestamp is None or not stream.count:
            return 0
        low, high = 0, stream.count
        with self._reader(stream, "index") as fd:
            while low < high:
                middle = (low + high) // 2
                _, ts = ENTRY.unpack(os.pread(fd, ENTRY.size, middle * ENTRY.size))
                if ts < timestamp:
                    low = middle + 1
                else:
                    high = middle
        return low

    def read(
        self,
        stream: Stream,
        start: int,
        stop: int,
        *,
        limit: int = PAGE_EVENTS,
        max_bytes: int = PAGE_BYTES,
        from_end: bool = False,
    ) -> tuple[int, list[Event]]:
        """(first index, events): what of [start, stop) fits a page, from its start or its end."""
        start, stop = max(0, start), min(stop, stream.count)
        if start >= stop:
            return start, []
        if from_end:
            start = max(start, stop - limit)
        else:
            stop = min(stop, start + limit)
        offsets = self._offsets(stream, start, stop)
        sizes = [b - a - HEADER.size + OVERHEAD for a, b in zip(offsets, offsets[1:], strict=False)]
        order = range(len(sizes) - 1, -1, -1) if from_end else range(len(sizes))
        taken, total = 0, 0
        for i in order:
            if taken and total + sizes[i] > max_bytes:
                break
            taken, total = taken + 1, total + sizes[i]
        if from_end:
            start = stop - taken
            offsets = offsets[len(offsets) - 1 - taken :]
        else:
            stop = start + taken
            offsets = offsets[: taken + 1]
        with self._reader(stream, "events") as fd:
            blob = os.pread(fd, offsets[-1] - offsets[0], offsets[0])
        return start, list(_records(blob))

    def scan(self, stream: Stream, start: int, stop: int) -> Iterator[tuple[int, Event]]:
        """(index, event) of events [start, stop), read a thousand at a time."""
        stop = min(stop, stream.count)
        while start < stop:
            first, events = self.read(stream, start, stop, limit=1000)
            yield from enumerate(events, first)
            start = first + len(events)

    def iter_events(self, stream: Stream) -> Iterator[Event]:
        """Every event of the stream as of `stream`, page by page."""
        position = 0
        while position < stream.count:
            first, events = self.read(stream, position, stream.count)
            yield from events
            position = first + len(events)

    # ---- internals -------------------------------------------------------------------------

    def _path(self, stream: Stream, kind: str) -> Path:
        return self.root / f"{stream.id}.{kind}"

    def _create_group(self, region: str, now_ms: int) -> bool:
        if region in self._groups:
            return False
        with self._db:
            self._db.execute("INSERT INTO groups VALUES (?, ?)", (region, now_ms))
        self._groups[region] = now_ms
        return True

    def _create_stream(self, region: str, name: str, now_ms: int) -> Stream:
        self._create_group(region, now_ms)
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO streams (region, name, created_ms) VALUES (?, ?, ?)",
                (region, name, now_ms),
            )
        stream = Stream(int(cursor.lastrowid or 0), region, name, now_ms)
        for kind in ("events", "index"):  # not a file left by a store whose row was lost
            self._path(stream, kind).unlink(missing_ok=True)
            self._path(stream, kind).touch(mode=0o600)
        self._streams[(region, name)] = stream
        return stream

    def _handles(self, stream: Stream) -> tuple[int, int]:
        handles = self._open.get(stream.id)
        if handles is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
            handles = (
                os.open(self._path(stream, "events"), flags, 0o600),
                os.open(self._path(stream, "index"), flags, 0o600),
            )
            self._open[stream.id] = handles
            while len(self._open) > OPEN_STREAMS:
                for fd in self._open.popitem(last=False)[1]:
                    os.close(fd)
        self._open.move_to_end(stream.id)
        return handles

    @contextlib.contextmanager
    def _reader(self, stream: Stream, kind: str) -> Iterator[int]:
        fd = os.open(self._path(stream, kind), os.O_RDONLY | os.O_NOFOLLOW)
        try:
            yield fd
        finally:
            os.close(fd)

    def _offsets(self, stream: Stream, start: int, stop: int) -> list[int]:
        """Record offsets of events start..stop-1, and where the last of them ends."""
        with self._reader(stream, "index") as fd:
            raw = os.pread(fd, (stop - start) * ENTRY.size, start * ENTRY.size)
            offsets = [offset for offset, _ in ENTRY.iter_unpack(raw)]
            if stop < stream.count:
                offsets.append(ENTRY.unpack(os.pread(fd, ENTRY.size, stop * ENTRY.size))[0])
            else:
                offsets.append(stream.end)
        return offsets

    def _repair(self, stream: Stream) -> Stream:
        """The stream as its files hold it, after dropping a cut-off tail and indexing the rest."""
        paths = {kind: self._path(stream, kind) for kind in ("events", "index")}
        for path in paths.values():
            path.touch(mode=0o600, exist_ok=True)
        with open(paths["events"], "r+b") as events, open(paths["index"], "r+b") as index:
            entries = os.fstat(index.fileno()).st_size // ENTRY.size
            last: tuple[int, Event] | None = None  # (end offset, event) of the last good record
            while entries and last is None:  # the index may point past what was written
                offset, timestamp = ENTRY.unpack(
                    os.pread(index.fileno(), ENTRY.size, (entries - 1) * ENTRY.size)
                )
                found = _record_at(events.fileno(), offset)
                if found is not None and found[1].timestamp == timestamp:
                    last = found
                else:
                    entries -= 1
            index.truncate(entries * ENTRY.size)
            end = last[0] if last else 0
            index.seek(0, os.SEEK_END)
            while (found := _record_at(events.fileno(), end)) is not None:  # written, not indexed
                index.write(ENTRY.pack(end, found[1].timestamp))
                end, last, entries = found[0], found, entries + 1
            events.truncate(end)
            first_ts = None
            if entries:
                first_ts = ENTRY.unpack(os.pread(index.fileno(), ENTRY.size, 0))[1]
        event = last[1] if last else None
        return replace(
            stream,
            count=entries,
            end=end,
            first_ts=first_ts,
            last_ts=event.timestamp if event else None,
            last_ingestion=event.ingestion_time if event else None,
        )


def _record_at(fd: int, offset: int) -> tuple[int, Event] | None:
    """(end offset, event) of the complete record at `offset`, or None (cut off, or not one)."""
    header = os.pread(fd, HEADER.size, offset)
    if len(header) < HEADER.size:
        return None
    timestamp, ingestion, length, crc = HEADER.unpack(header)
    body = os.pread(fd, length, offset + HEADER.size)
    if len(body) < length or zlib.crc32(body) != crc:
        return None
    message = body.decode("utf-8", "surrogatepass")
    return offset + HEADER.size + length, Event(timestamp, message, ingestion)


def _records(blob: bytes) -> Iterator[Event]:
    position = 0
    while position < len(blob):
        timestamp, ingestion, length, _ = HEADER.unpack_from(blob, position)
        start = position + HEADER.size
        yield Event(
            timestamp, blob[start : start + length].decode("utf-8", "surrogatepass"), ingestion
        )
        position = start + length


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
