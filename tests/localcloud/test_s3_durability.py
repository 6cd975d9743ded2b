"""What a learner stores in S3 survives a stop/start and a SIGKILL of the server, byte for byte."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud import client, control, credentials

pytestmark = pytest.mark.localcloud
BUCKET = "course-data"
MB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A server in its own state folder; clients made here go to it, not the session's server."""
    monkeypatch.delitem(client._state, "endpoint", raising=False)  # connect() may redirect them
    home = tmp_path / "home"
    port = _free_port()
    control.ensure_running(home, port)
    yield home, port
    control.stop(home)


def _s3(home: Path, port: int) -> Any:
    s3 = (
        credentials.load(home)
        .boto_session()
        .client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )
    )
    assert s3.meta.endpoint_url == f"http://127.0.0.1:{port}"
    return s3


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fill(s3: Any, tmp_path: Path) -> dict[str, bytes]:
    """Every kind of change the course makes; returns {key: bytes} of what should remain."""
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "course", "Value": "sm"}]})
    s3.create_bucket(Bucket="made-and-removed")
    s3.delete_bucket(Bucket="made-and-removed")
    kept = {
        "train/data.csv": b"label,x\n1,0.5\n" * 1000,
        "../../evil": b"a key is not a path",
        "données/über ♥.txt": "unicode ♥".encode(),
        "model.tar.gz": b"version 2",
    }
    for key, body in kept.items():
        s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=b"version 1" if key == "model.tar.gz" else body,
            ContentType="text/csv",
            Metadata={"who": "learner"},
            Tagging="stage=raw",
        )
    s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=kept["model.tar.gz"])  # overwrite
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * MB))
    s3.upload_file(
        str(big),
        BUCKET,
        "big/upload.bin",
        ExtraArgs={"Metadata": {"parts": "yes"}, "ContentType": "application/x-binary"},
        Config=TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB),
    )
    kept["big/upload.bin"] = big.read_bytes()
    s3.copy_object(
        Bucket=BUCKET, Key="copies/data.csv", CopySource={"Bucket": BUCKET, "Key": "train/data.csv"}
    )
    kept["copies/data.csv"] = kept["train/data.csv"]
    s3.put_object_tagging(
        Bucket=BUCKET,
        Key="train/data.csv",
        Tagging={"TagSet": [{"Key": "stage", "Value": "clean"}, {"Key": "n", "Value": "1"}]},
    )
    for key in ("gone/one", "gone/two", "gone/three"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    s3.delete_object(Bucket=BUCKET, Key="gone/one")
    s3.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": "gone/two"}, {"Key": "gone/three"}]}
    )
    return kept


def _state(s3: Any) -> dict[str, Any]:
    """Everything a learner can see of the buckets, bytes as sha256."""
    buckets = {
        b["Name"]: (
            b["CreationDate"],
            s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"],
        )
        for b in s3.list_buckets()["Buckets"]
    }
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            key = item["Key"]
            got = s3.get_object(Bucket=BUCKET, Key=key)
            objects[key] = {
                "sha256": _sha(got["Body"].read()),
                "size": item["Size"],
                "etag": got["ETag"],
                "last_modified": got["LastModified"],
                "content_type": got["ContentType"],
                "metadata": got["Metadata"],
                "tags": s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"],
            }
    return {"buckets": buckets, "objects": objects}


def _kill(home: Path) -> None:
    pid = control.server_pid(home)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(30)


def test_buckets_objects_and_presigned_urls_survive_stop_start_and_sigkill(
    own_server: Any, tmp_path: Path
) -> None:
    home, port = own_server
    s3 = _s3(home, port)
    kept = _fill(s3, tmp_path)
    before = _state(s3)
    # the check below can fail: what was written is what is seen now, deletions included
    assert set(before["objects"]) == set(kept)
    assert {k: v["sha256"] for k, v in before["objects"].items()} == {
        k: _sha(v) for k, v in kept.items()
    }
    assert set(before["buckets"]) == {BUCKET}
    assert before["objects"]["big/upload.bin"]["etag"].endswith('-4"')  # it was multipart
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "train/data.csv"}, ExpiresIn=3600
    )

    assert control.stop(home)
    control.ensure_running(home, port)
    assert _state(_s3(home, port)) == before
    with urllib.request.urlopen(url) as reply:
        assert reply.read() == kept["train/data.csv"]

    _kill(home)
    control.ensure_running(home, port)
    s3 = _s3(home, port)
    assert _state(s3) == before
    with urllib.request.urlopen(url) as reply:
        assert reply.read() == kept["train/data.csv"]
    # deleted keys stay deleted, and moto still answers for them as S3 does
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=BUCKET, Key="gone/one")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_the_store_holds_only_live_bytes_inside_its_folder(own_server: Any, tmp_path: Path) -> None:
    home, port = own_server
    s3 = _s3(home, port)
    kept = _fill(s3, tmp_path)
    assert control.stop(home)
    control.ensure_running(home, port)  # the start sweeps what a change left behind
    store = home / "s3"
    blobs = [p for p in (store / "blobs").rglob("*") if p.is_file()]
    # content-addressed: one file per distinct live content, named by its sha256
    assert {p.name for p in blobs} == {_sha(v) for v in kept.values()}
    assert all(_sha(p.read_bytes()) == p.name for p in blobs)
    assert sorted(p.name for p in store.iterdir()) == [
        n
        for n in ("blobs", "index.db", "index.db-shm", "index.db-wal", "staging")
        if (store / n).exists()
    ]
    assert [p for p in tmp_path.rglob("*") if "evil" in p.name] == []
    assert not (home.parent / "evil").exists()


def test_changes_after_a_restart_are_kept_too(own_server: Any) -> None:
    home, port = own_server
    s3 = _s3(home, port)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"first")
    assert control.stop(home)
    control.ensure_running(home, port)
    s3 = _s3(home, port)
    # a loaded key can be re-tagged, copied and deleted, and a new one added
    s3.put_object_tagging(Bucket=BUCKET, Key="a", Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    s3.copy_object(Bucket=BUCKET, Key="b", CopySource={"Bucket": BUCKET, "Key": "a"})
    s3.put_object(Bucket=BUCKET, Key="c", Body=b"third")
    s3.delete_object(Bucket=BUCKET, Key="a")
    _kill(home)
    control.ensure_running(home, port)
    s3 = _s3(home, port)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert listed == ["b", "c"]
    assert s3.get_object(Bucket=BUCKET, Key="b")["Body"].read() == b"first"
    assert s3.get_object_tagging(Bucket=BUCKET, Key="b")["TagSet"] == [{"Key": "t", "Value": "1"}]


def test_concurrent_overwrites_store_the_version_moto_serves(own_server: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    home, port = own_server
    s3 = _s3(home, port)
    s3.create_bucket(Bucket=BUCKET)

    def overwrite(i: int) -> None:
        s3.put_object(Bucket=BUCKET, Key="shared.csv", Body=f"writer {i}\n".encode() * 5000)
        s3.put_object_tagging(
            Bucket=BUCKET, Key="shared.csv", Tagging={"TagSet": [{"Key": "w", "Value": str(i)}]}
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(overwrite, range(40)))
    served = s3.get_object(Bucket=BUCKET, Key="shared.csv")["Body"].read()
    tags = s3.get_object_tagging(Bucket=BUCKET, Key="shared.csv")["TagSet"]
    assert served.startswith(b"writer ")
    _kill(home)
    control.ensure_running(home, port)
    s3 = _s3(home, port)
    assert s3.get_object(Bucket=BUCKET, Key="shared.csv")["Body"].read() == served
    assert s3.get_object_tagging(Bucket=BUCKET, Key="shared.csv")["TagSet"] == tags
    blobs = [p.name for p in (home / "s3" / "blobs").rglob("*") if p.is_file()]
    assert blobs == [_sha(served)]  # the 39 overwritten versions were collected
