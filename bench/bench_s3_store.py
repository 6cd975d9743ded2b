"""What durable S3 costs: server memory after a big upload, and a restart with many objects.

Starts a background server (`python -m localcloud start`'s way) in a temporary state folder, then
- uploads one file of --mb MB with boto3's upload_file (multipart, as a notebook sends it) and
  prints the server's RSS (psutil) before and after, and after downloading it back;
- stores --objects small objects, then stops and starts the server --restarts times and prints the
  median time a start takes until it answers (the store is loaded back before serving).

    .venv/bin/python bench/bench_s3_store.py [--mb 200] [--objects 5000] [--restarts 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
from botocore.config import Config

from localcloud import control, credentials

MB = 1024 * 1024
BUCKET = "bench-s3-store"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _s3(home: Path, port: int) -> Any:
    return (
        credentials.load(home)
        .boto_session()
        .client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
        )
    )


def _rss_mb(home: Path) -> float:
    pid = control.server_pid(home)
    assert pid is not None, "no server"
    return psutil.Process(pid).memory_info().rss / MB


def big_upload(home: Path, port: int, size_mb: int, scratch: Path) -> None:
    s3 = _s3(home, port)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="warm-up", Body=b"x")  # first-request imports not counted
    path = scratch / "big.bin"
    with open(path, "wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(MB))
    before = _rss_mb(home)
    started = time.perf_counter()
    s3.upload_file(str(path), BUCKET, "big.bin")
    upload_s = time.perf_counter() - started
    after = _rss_mb(home)
    s3.download_file(BUCKET, "big.bin", str(scratch / "back.bin"))
    after_get = _rss_mb(home)
    print(
        f"{size_mb} MB upload_file: {upload_s:.1f} s; server RSS {before:.0f} MB before, "
        f"{after:.0f} MB after ({after - before:+.0f} MB), {after_get:.0f} MB after download"
    )
    s3.delete_object(Bucket=BUCKET, Key="big.bin")
    path.unlink()
    (scratch / "back.bin").unlink()


def _restart_s(home: Path, port: int, times: int) -> list[float]:
    durations = []
    for _ in range(times):
        assert control.stop(home)
        started = time.perf_counter()
        control.ensure_running(home, port)
        durations.append(time.perf_counter() - started)
    return durations


def restarts(home: Path, port: int, objects: int, times: int) -> None:
    s3 = _s3(home, port)
    empty = _restart_s(home, port, times)

    def put(i: int) -> None:
        s3.put_object(Bucket=BUCKET, Key=f"objects/{i:05d}.csv", Body=f"{i},{i * i}\n".encode())

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(objects)))
    print(f"{objects} puts (8 threads): {time.perf_counter() - started:.1f} s")
    full = _restart_s(home, port, times)
    listed = sum(
        page["KeyCount"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="objects/")
    )
    assert listed == objects, f"{listed} of {objects} objects after the restarts"
    for label, durations in ((f"{objects} objects", full), ("1 object", empty)):
        print(
            f"restart with {label} stored: median {statistics.median(durations):.2f} s of "
            f"{times} ({', '.join(f'{d:.2f}' for d in durations)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--restarts", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as scratch:
        home = Path(scratch) / "home"
        port = _free_port()
        control.ensure_running(home, port)
        try:
            big_upload(home, port, args.mb, Path(scratch))
            restarts(home, port, args.objects, args.restarts)
        finally:
            control.stop(home)


if __name__ == "__main__":
    main()
