"""Fixtures for driving localcloud's job runner without a server, shared by tests and benchmarks.

It imports nothing from localcloud, tests/ or bench/, so both sides can import it without a cycle.
"""

from __future__ import annotations

import io
import tarfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# The framework images the course's estimators resolve to (region us-east-1).
PT_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310"
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


class FolderS3:
    """The job runner's S3Access over a local folder, <root>/<bucket>/<key>: no server needed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, bucket: str, key: str, body: bytes | str) -> None:
        """Store one object (text is written as UTF-8)."""
        path = self.root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body.encode() if isinstance(body, str) else body)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Keys under a prefix, sorted as S3 lists them."""
        base = self.root / bucket
        keys = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix))

    def download(self, bucket: str, key: str, dest: Path) -> None:
        """Copy one object to a local file."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((self.root / bucket / key).read_bytes())

    def upload(self, src: Path, bucket: str, key: str) -> None:
        """Store a local file as one object."""
        self.put(bucket, key, Path(src).read_bytes())


def channel(
    name: str, uri: str, distribution: str = "FullyReplicated", content_type: str | None = None
) -> dict[str, Any]:
    """One InputDataConfig entry over an S3 prefix, as CreateTrainingJob receives it."""
    entry: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": distribution,
            }
        },
    }
    if content_type:
        entry["ContentType"] = content_type
    return entry


def unique(prefix: str) -> str:
    """A job name no other run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, every: float = 0.1) -> T:
    """Poll until predicate() is truthy and return its value; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


# The course's managed XGBoost job (notebook 02), as the benches run it.
COURSE_XGBOOST_HYPERPARAMETERS = {
    "max_depth": 5,
    "eta": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "num_round": 100,
    "train": "titanic_train.csv",
}


def source_tar(files: dict[str, str]) -> bytes:
    """A sourcedir.tar.gz holding these files (their text dedented)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
