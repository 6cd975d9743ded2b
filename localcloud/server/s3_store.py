"""Durable S3 state in the state folder: an SQLite index and content-addressed blob files.

Nothing here knows moto; `s3_journal` copies between moto's backend and this store. A blob's path
comes from its sha256 only (never from a bucket name or key), and a row only ever names a blob that
was fsynced and renamed into place first, so a SIGKILL at any moment leaves the old or the new
version of a key, never a half-written blob referenced by the index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY, region TEXT NOT NULL, created TEXT NOT NULL, tags TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    last_modified TEXT NOT NULL, metadata TEXT NOT NULL, tags TEXT NOT NULL,
    extra TEXT NOT NULL, blob TEXT NOT NULL, PRIMARY KEY (bucket, key)
);
CREATE INDEX IF NOT EXISTS objects_blob ON objects (blob);
"""
log = logging.getLogger("localcloud")


@dataclass(frozen=True)
class BucketRecord:
    """What a bucket keeps across restarts."""

    name: str
    region: str
    created: str  # ISO 8601
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectRecord:
    """What an object keeps across restarts; its bytes are the blob named by `blob` (sha256)."""

    bucket: str
    key: str
    size: int
    etag: str  # without quotes; "<md5>-<parts>" for a multipart upload
    last_modified: str  # ISO 8601
    metadata: dict[str, str]  # Content-Type, x-amz-meta-*, ... as moto keeps them
    tags: dict[str, str]
    blob: str
    extra: dict[str, Any] = field(default_factory=dict)  # storage class, checksum


@dataclass(frozen=True)
class StagedBlob:
    """Bytes written and fsynced to a temporary file, not yet in the store."""

    path: Path
    sha256: str
    size: int


class BlobReader:
    """A stored blob as moto reads a key's buffer (seek, read, close); opened per read, so no
    file descriptor is held per object."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pos = 0
        self.closed = False

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos}.get(whence)
        self._pos = pos + (self.path.stat().st_size if base is None else base)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read of closed file")
        with open(self.path, "rb") as handle:
            handle.seek(self._pos)
            data = handle.read(size)
        self._pos += len(data)
        return data

    def write(self, _data: bytes) -> int:
        raise OSError("a stored blob is never changed")

    def truncate(self, _size: int | None = None) -> int:
        raise OSError("a stored blob is never changed")

    def close(self) -> None:
        self.closed = True  # the file is the store's: it goes when no row refers to it


class S3Store:
    """The index (`index.db`) and blobs (`blobs/<sha[:2]>/<sha>`) under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.staging = root / "staging"
        for folder in (root, self.blobs, self.staging):
            folder.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self._lock = threading.Lock()  # one change at a time: blob placement, rows, collection
        self._db = sqlite3.connect(root / "index.db", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # the blobs are fsynced: the index as well
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the index (the blobs are plain files)."""
        with self._lock:
            self._db.close()

    def blob_path(self, sha256: str) -> Path:
        """Where a blob lives; sha256 is checked to be hex so no path can be smuggled in."""
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.blobs / sha256[:2] / sha256

    def stage(self, chunks: Iterable[bytes]) -> StagedBlob:
        """Write chunks to a fsynced temporary file, hashing as they go (no lock held)."""
        digest = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(dir=self.staging, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            os.unlink(name)
            raise
        return StagedBlob(Path(name), digest.hexdigest(), size)

    def discard(self, staged: StagedBlob) -> None:
        """Drop a staged blob that will not be stored."""
        staged.path.unlink(missing_ok=True)

    def put_object(self, record: ObjectRecord, staged: StagedBlob | None = None) -> None:
        """Make the row for (bucket, key) this record, placing staged first when given."""
        with self._lock:
            if staged is not None:
                if staged.sha256 != record.blob:
                    raise ValueError("the staged blob is not the record's")
                self._place(staged)
            elif not self.blob_path(record.blob).is_file():
                raise FileNotFoundError(f"blob {record.blob} is not stored")
            old = self._blob_of(record.bucket, record.key)
            row = (record.bucket, record.key, record.size, record.etag, record.last_modified)
            row += tuple(json.dumps(v) for v in (record.metadata, record.tags, record.extra))
            with self._transaction() as db:
                db.execute(
                    "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*row, record.blob),
                )
            self._collect([old] if old and old != record.blob else [])

    def delete_object(self, bucket: str, key: str) -> None:
        """Forget one object (its blob goes when nothing else refers to it)."""
        with self._lock:
            old = self._blob_of(bucket, key)
            if old is None:
                return
            with self._transaction() as db:
                db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
            self._collect([old])

    def put_bucket(self, record: BucketRecord) -> None:
        """Make the row for a bucket this record."""
        with self._lock:
            row = (record.name, record.region, record.created, json.dumps(record.tags))
            with self._transaction() as db:
                db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?)", row)

    def delete_bucket(self, name: str) -> None:
        """Forget a bucket and whatever objects the index still holds for it."""
        with self._lock:
            blobs = [
                r[0] for r in self._db.execute("SELECT blob FROM objects WHERE bucket = ?", (name,))
            ]
            with self._transaction() as db:
                db.execute("DELETE FROM objects WHERE bucket = ?", (name,))
                db.execute("DELETE FROM buckets WHERE name = ?", (name,))
            self._collect(blobs)

    def buckets(self) -> list[BucketRecord]:
        """Every bucket, by name."""
        with self._lock:  # one connection: never read inside another thread's transaction
            rows = self._db.execute("SELECT name, region, created, tags FROM buckets ORDER BY name")
            return [BucketRecord(n, r, c, json.loads(t)) for n, r, c, t in rows.fetchall()]

    def objects(self, bucket: str | None = None) -> Iterator[ObjectRecord]:
        """Every object (of one bucket, or all), by bucket and key."""
        where, params = (" WHERE bucket = ?", (bucket,)) if bucket is not None else ("", ())
        with self._lock:
            query = f"SELECT * FROM objects{where} ORDER BY bucket, key"
            rows = self._db.execute(query, params).fetchall()
        return (_object(row) for row in rows)

    def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        """One object's row, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
        return _object(row) if row else None

    def sweep(self) -> int:
        """Delete staged leftovers and blobs no row refers to (at start, before serving)."""
        with self._lock:
            removed = 0
            for leftover in self.staging.iterdir():
                leftover.unlink()
                removed += 1
            used = {r[0] for r in self._db.execute("SELECT DISTINCT blob FROM objects")}
            for folder in self.blobs.iterdir():
                for blob in folder.iterdir():
                    if blob.name not in used:
                        blob.unlink()
                        removed += 1
            return removed

    # ---- under the lock

    def _place(self, staged: StagedBlob) -> None:
        target = self.blob_path(staged.sha256)
        if target.is_file():  # same bytes already stored (content-addressed)
            staged.path.unlink(missing_ok=True)
            return
        if not target.parent.is_dir():
            target.parent.mkdir()
            _fsync_dir(self.blobs)
        os.replace(staged.path, target)
        _fsync_dir(target.parent)  # the rename itself survives a power cut, not just a SIGKILL

    def _blob_of(self, bucket: str, key: str) -> str | None:
        row = self._db.execute(
            "SELECT blob FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
        ).fetchone()
        return row[0] if row else None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction for one change."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _collect(self, candidates: Iterable[str]) -> None:
        """Delete the candidate blobs no row refers to any more (after the commit)."""
        for sha in set(candidates):
            if self._db.execute("SELECT 1 FROM objects WHERE blob = ? LIMIT 1", (sha,)).fetchone():
                continue
            try:
                self.blob_path(sha).unlink()
            except FileNotFoundError:
                log.warning("S3 store: blob %s was already gone", sha)


def _object(row: tuple[Any, ...]) -> ObjectRecord:
    bucket, key, size, etag, modified, metadata, tags, extra, blob = row
    return ObjectRecord(
        bucket,
        key,
        size,
        etag,
        modified,
        json.loads(metadata),
        json.loads(tags),
        blob,
        json.loads(extra),
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
