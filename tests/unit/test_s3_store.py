"""The S3 store: index rows and content-addressed blobs, collected when unreferenced, crash-safe."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from localcloud.server.s3_journal import S3Journal
from localcloud.server.s3_store import BucketRecord, ObjectRecord, S3Store


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put(store: S3Store, bucket: str, key: str, data: bytes, **extra: object) -> ObjectRecord:
    staged = store.stage([data[:3], data[3:]])  # chunks, as the journal hands them
    record = ObjectRecord(
        bucket=bucket,
        key=key,
        size=len(data),
        etag=hashlib.md5(data).hexdigest(),
        last_modified="2026-12-01T10:00:00",
        metadata={"Content-Type": "text/plain", "x-amz-meta-who": "me"},
        tags={"course": "sagemaker"},
        blob=staged.sha256,
        extra=dict(extra),
    )
    store.put_object(record, staged)
    return record


def _blob_files(store: S3Store) -> set[str]:
    return {p.name for p in store.blobs.rglob("*") if p.is_file()}


def test_an_object_round_trips_through_a_reopened_store(tmp_path: Path) -> None:
    store = S3Store(tmp_path / "s3")
    store.put_bucket(BucketRecord("data", "us-east-1", "2026-12-01T09:00:00+00:00", {"a": "1"}))
    record = _put(store, "data", "train/part-0.csv", b"a,b\n1,2\n", storage_class="STANDARD")
    store.close()

    again = S3Store(tmp_path / "s3")
    assert again.buckets() == [
        BucketRecord("data", "us-east-1", "2026-12-01T09:00:00+00:00", {"a": "1"})
    ]
    assert list(again.objects()) == [record]
    assert again.get_object("data", "train/part-0.csv") == record
    assert again.get_object("data", "missing") is None
    assert again.blob_path(record.blob).read_bytes() == b"a,b\n1,2\n"
    assert again.blob_path(record.blob) == again.blobs / record.blob[:2] / record.blob


def test_same_bytes_are_one_blob_kept_until_the_last_key_goes(tmp_path: Path) -> None:
    store = S3Store(tmp_path / "s3")
    first = _put(store, "data", "a", b"same bytes")
    second = _put(store, "data", "b", b"same bytes")
    assert first.blob == second.blob == _sha(b"same bytes")
    assert _blob_files(store) == {first.blob}
    store.delete_object("data", "a")
    assert _blob_files(store) == {first.blob}  # b still refers to it
    store.delete_object("data", "b")
    assert _blob_files(store) == set()
    assert list(store.objects()) == []


def test_an_overwrite_collects_the_old_blob(tmp_path: Path) -> None:
    store = S3Store(tmp_path / "s3")
    _put(store, "data", "model.tar.gz", b"version 1")
    new = _put(store, "data", "model.tar.gz", b"version 2")
    assert _blob_files(store) == {_sha(b"version 2")}
    assert list(store.objects()) == [new]


def test_deleting_a_bucket_forgets_its_objects_and_blobs_only(tmp_path: Path) -> None:
    store = S3Store(tmp_path / "s3")
    for name in ("gone", "kept"):
        store.put_bucket(BucketRecord(name, "us-east-1", "2026-12-01T09:00:00+00:00"))
    _put(store, "gone", "x", b"only in gone")
    kept = _put(store, "kept", "x", b"only in kept")
    store.delete_bucket("gone")
    assert [b.name for b in store.buckets()] == ["kept"]
    assert list(store.objects()) == [kept]
    assert _blob_files(store) == {kept.blob}


def test_a_key_never_becomes_a_path(tmp_path: Path) -> None:
    store = S3Store(tmp_path / "s3")
    record = _put(store, "../..", "../../evil", b"payload")
    assert store.get_object("../..", "../../evil") == record
    assert [p for p in tmp_path.rglob("*") if "evil" in p.name] == []
    # blob ids are checked: a path can't be passed for one (control: a real id is accepted)
    with pytest.raises(ValueError):
        store.blob_path("../../evil")
    assert store.blob_path(record.blob).is_file()


def test_a_record_must_name_a_stored_or_staged_blob(tmp_path: Path) -> None:
    store = S3Store(tmp_path / "s3")
    record = _put(store, "data", "a", b"stored")
    missing = replace(record, key="b", blob=_sha(b"never stored"))
    with pytest.raises(FileNotFoundError):
        store.put_object(missing)
    staged = store.stage([b"other"])
    with pytest.raises(ValueError):
        store.put_object(replace(record, key="c"), staged)
    assert [o.key for o in store.objects()] == ["a"]
    # control: the same record naming its stored blob, with no staged bytes, is accepted
    store.put_object(replace(record, key="b"))
    assert [o.key for o in store.objects()] == ["a", "b"]


def test_sweep_removes_leftovers_and_unreferenced_blobs_only(tmp_path: Path) -> None:
    store = S3Store(tmp_path / "s3")
    kept = _put(store, "data", "a", b"referenced")
    store.stage([b"a crash before the rename"])  # left in staging
    orphan = store.blob_path(_sha(b"a crash before the commit"))
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"a crash before the commit")
    assert store.sweep() == 2
    assert list(store.staging.iterdir()) == []
    assert _blob_files(store) == {kept.blob}


WRITER = textwrap.dedent("""
    import hashlib, sys
    from pathlib import Path
    from localcloud.server.s3_store import ObjectRecord, S3Store

    store = S3Store(Path(sys.argv[1]))
    n = 0
    while True:
        data = str(n).encode() * 20000
        for key in ("a", "b", f"k{n % 7}"):
            staged = store.stage([data[i:i + 4096] for i in range(0, len(data), 4096)])
            record = ObjectRecord("data", key, len(data), "e", "t", {}, {}, staged.sha256)
            store.put_object(record, staged)
        if n % 5 == 4:
            store.delete_object("data", "b")
        n += 1
        if n == 20:
            print("running", flush=True)
""")


def test_a_sigkill_mid_write_leaves_every_row_with_its_whole_blob(tmp_path: Path) -> None:
    root = tmp_path / "s3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "running\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    store = S3Store(root)
    rows = list(store.objects())
    assert {o.key for o in rows} >= {"a"}  # control: the writer did store objects
    for row in rows:
        data = store.blob_path(row.blob).read_bytes()
        assert (_sha(data), len(data)) == (row.blob, row.size)
    store.sweep()
    assert _blob_files(store) == {o.blob for o in rows}


# ---- the journal: moto's backend (an account of its own, in this process) and the store


@pytest.fixture
def backend() -> Iterator[Any]:
    from moto.s3.models import s3_backends

    fresh = s3_backends[f"{uuid.uuid4().int % 10**12:012d}"]["aws"]
    yield fresh
    for name in list(fresh.buckets):  # bucket names are global across moto's accounts
        s3_backends.bucket_accounts.pop(name, None)


def _journal(root: Path, backend: Any, change: Callable[[Any], None]) -> S3Journal:
    """The journal over a stand-in for moto's app: it makes `change` and answers 200."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        change(backend)
        start_response("200 OK", [("Content-Type", "application/xml")])
        return [b"<ok/>"]

    journal = S3Journal(app, S3Store(root), backend)
    journal.install()
    return journal


def _upload(bucket: str, data: bytes) -> Callable[[Any], None]:
    def change(backend: Any) -> None:
        if bucket not in backend.buckets:
            backend.create_bucket(bucket, "us-east-1")
        key = backend.put_object(bucket, "dir/../x.csv", data)
        key.set_metadata({"Content-Type": "text/csv", "x-amz-meta-who": "me"})
        backend.put_object_tagging(key, {"stage": "raw"})

    return change


def test_a_change_is_stored_before_the_answer_and_loads_into_a_new_backend(
    tmp_path: Path, backend: Any
) -> None:
    from moto.s3.models import s3_backends

    bucket = f"journal-{uuid.uuid4().hex[:8]}"
    data = os.urandom(300 * 1024)  # past moto's 64 KiB buffer
    journal = _journal(tmp_path / "s3", backend, _upload(bucket, data))
    assert Client(journal).put(f"/{bucket}/dir/../x.csv").status_code == 200
    [row] = journal.store.objects()
    assert (row.bucket, row.key, row.size, row.blob) == (
        bucket,
        "dir/../x.csv",
        len(data),
        _sha(data),
    )
    assert row.tags == {"stage": "raw"} and row.metadata["x-amz-meta-who"] == "me"
    key = backend.get_object(bucket, "dir/../x.csv")
    assert key.value == data  # now read from its blob
    assert type(key._value_buffer).__name__ == "BlobReader"
    etag, modified = key.etag, key.last_modified
    journal.store.close()
    # a new server: another backend, same store
    for name in list(backend.buckets):
        s3_backends.bucket_accounts.pop(name, None)
    other = s3_backends[f"{uuid.uuid4().int % 10**12:012d}"]["aws"]
    reloaded = S3Journal(lambda *_: [], S3Store(tmp_path / "s3"), other)
    assert reloaded.load() == (1, 1)
    again = other.get_object(bucket, "dir/../x.csv")
    assert (again.value, again.etag, again.last_modified) == (data, etag, modified)
    assert again.metadata["Content-Type"] == "text/csv"
    assert other.tagger.get_tag_dict_for_resource(again.arn) == {"stage": "raw"}
    for name in list(other.buckets):
        s3_backends.bucket_accounts.pop(name, None)


def test_a_change_that_cannot_be_stored_is_answered_500(
    tmp_path: Path, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"journal-{uuid.uuid4().hex[:8]}"
    journal = _journal(tmp_path / "s3", backend, _upload(bucket, b"data"))
    real_put = journal.store.put_object

    def disk_full(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal.store, "put_object", disk_full)
    refused = Client(journal).put(f"/{bucket}/dir/../x.csv")
    assert refused.status_code == 500
    assert b"<Code>InternalError</Code>" in refused.data
    assert list(journal.store.objects()) == [] and list(journal.store.staging.iterdir()) == []
    # control: the same request, the disk writable again, is answered 200 and stored
    monkeypatch.setattr(journal.store, "put_object", real_put)
    assert Client(journal).put(f"/{bucket}/dir/../x.csv").status_code == 200
    assert [o.key for o in journal.store.objects()] == ["dir/../x.csv"]


def test_only_the_request_that_made_a_key_reads_its_bytes(tmp_path: Path, backend: Any) -> None:
    """moto hashes a new key's buffer, unlocked, while it answers the PUT that made it."""
    bucket = f"journal-{uuid.uuid4().hex[:8]}"
    backend.create_bucket(bucket, "us-east-1")
    made = backend.put_object(bucket, "shared.csv", b"writer 1\n")  # its PUT is still answering

    def tag(backend: Any) -> None:
        backend.put_object_tagging(backend.get_object(bucket, "shared.csv"), {"w": "2"})

    journal = _journal(tmp_path / "s3", backend, tag)
    buffer = made._value_buffer
    assert Client(journal).put(f"/{bucket}/shared.csv?tagging").status_code == 200
    assert made._value_buffer is buffer and not buffer.closed  # the tagging request left it alone
    assert list(journal.store.objects()) == []
    # control: the maker's own sync stores the bytes, with the tag the other request set
    journal.sync({(bucket, "shared.csv")}, [made])
    [row] = journal.store.objects()
    assert (row.blob, row.tags) == (_sha(b"writer 1\n"), {"w": "2"})
    assert buffer.closed and type(made._value_buffer).__name__ == "BlobReader"


def test_a_put_can_answer_its_etag_after_another_put_replaced_its_key(
    tmp_path: Path, backend: Any
) -> None:
    """moto closes a replaced key's bytes at once; the PUT that made it still owes its ETag."""
    bucket = f"journal-{uuid.uuid4().hex[:8]}"
    backend.create_bucket(bucket, "us-east-1")
    raw = backend.put_object(bucket, "shared.csv", b"writer 0\n")
    backend.put_object(bucket, "shared.csv", b"writer 1\n")
    with pytest.raises(ValueError, match="closed file"):  # moto alone: the first answer fails
        raw.etag  # noqa: B018
    _journal(tmp_path / "s3", backend, lambda _: None)
    first = backend.put_object(bucket, "shared.csv", b"writer 2\n")
    second = backend.put_object(bucket, "shared.csv", b"writer 3\n")
    assert first._value_buffer.closed
    for key, data in ((first, b"writer 2\n"), (second, b"writer 3\n")):
        assert key.etag.strip('"') == hashlib.md5(data).hexdigest()
