"""Channel data: where each S3 object lands on which host (ShardedByS3Key or FullyReplicated).

Download and sharding only; the hosts' processes are process.py's. S3 itself is reached
through `S3Access`, so a folder can stand in for it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from localcloud.hosts import safepaths
from localcloud.hosts.environment import HostLayout
from localcloud.hosts.errors import ClientError

_DOWNLOAD_FAILED = "ClientError: Data download failed:Failed to download data. "


class S3Access(Protocol):
    """What `Cluster` and the manager use to read inputs and write artifacts."""

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Sorted object keys under prefix, without "directory" keys (ending in '/')."""
        ...

    def download(self, bucket: str, key: str, dest: Path) -> None:
        """Write one object to dest (parents created)."""
        ...

    def upload(self, src: Path, bucket: str, key: str) -> None:
        """Store one file as an object."""
        ...


class NotAnS3Uri(ClientError, ValueError):
    """A URI that is no s3://…: fails a job as a ClientError, a request check as a ValueError."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not uri.startswith("s3://"):
        raise NotAnS3Uri(f"ClientError: Not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _illegal_key(key: str, channel: str | None) -> ClientError:
    """The platform's refusal of a key that names no plain path under the channel folder."""
    if "//" in key:
        return ClientError(
            f"{_DOWNLOAD_FAILED}S3 key: {key} has an illegal char sub-sequence '//' in it"
        )
    where = f"/opt/ml/input/data/{channel}" if channel else "the channel folder"
    segment = "'..'" if ".." in key.split("/") else "'.'"
    if key.startswith("/") or segment == "'..'":
        why = "a leading '/'" if key.startswith("/") else segment
        return ClientError(
            f"{_DOWNLOAD_FAILED}S3 key: {key} has an illegal path segment ({why}) in it: it "
            f"would be written outside {where}, so nothing was downloaded"
        )
    return ClientError(
        f"{_DOWNLOAD_FAILED}S3 key: {key} has an illegal path segment ({segment}) in it"
    )


def relative_key(prefix: str, key: str, channel: str | None = None) -> str:
    """Where an object lands under the channel folder, as SageMaker lays S3Prefix data out.

    The whole key must be a plain path (no '', '.' or '..' segment), not just the part below
    the prefix, so no key can name a place outside the channel folder.
    """
    if any(p in ("", ".", "..") for p in key.split("/")):
        raise _illegal_key(key, channel)
    if key == prefix:
        rel = key.rsplit("/", 1)[-1]
    elif prefix == "" or prefix.endswith("/") or key[len(prefix)] == "/":
        rel = key[len(prefix) :].lstrip("/")
    else:
        rel = key[len(prefix.rsplit("/", 1)[0]) + 1 :] if "/" in prefix else key
    try:
        parts = safepaths.components(rel)
    except safepaths.UnsafePath:
        parts = []
    if not parts:
        raise _illegal_key(key, channel)
    return rel


def assign_objects(keys: list[str], hosts: list[str], distribution: str) -> dict[str, list[str]]:
    """FullyReplicated: every host gets all; ShardedByS3Key: round-robin over sorted keys."""
    keys = sorted(keys)
    if distribution != "ShardedByS3Key":
        return {h: list(keys) for h in hosts}
    return {h: keys[i :: len(hosts)] for i, h in enumerate(hosts)}


def download_channels(
    request: Mapping[str, Any], layouts: Mapping[str, HostLayout], job_dir: Path, s3: S3Access
) -> None:
    """Fill input/data/<channel> of every host (layouts in host order) from the request's S3."""
    # Objects are cached under names of our own: no key ever becomes part of a cache path.
    with tempfile.TemporaryDirectory(dir=job_dir, prefix=".s3cache-") as cache:
        fetched: dict[tuple[str, str], Path] = {}
        for channel in request.get("InputDataConfig", []):
            _download_channel(channel, layouts, job_dir, s3, Path(cache), fetched)


def _download_channel(
    channel: dict[str, Any],
    layouts: Mapping[str, HostLayout],
    job_dir: Path,
    s3: S3Access,
    cache: Path,
    fetched: dict[tuple[str, str], Path],
) -> None:
    name = channel["ChannelName"]
    source = channel.get("DataSource", {}).get("S3DataSource")
    if source is None:
        raise ClientError(
            f"ClientError: Channel {name!r}: localcloud reads only S3DataSource channels."
        )
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise ClientError(
            f"ClientError: Channel {name!r}: S3DataType "
            f"{source['S3DataType']} is not supported by localcloud "
            "(only S3Prefix)."
        )
    bucket, prefix = parse_s3_uri(source["S3Uri"])
    keys = s3.list_keys(bucket, prefix)
    rels = {key: relative_key(prefix, key, name) for key in keys}
    distribution = source.get("S3DataDistributionType", "FullyReplicated")
    for host, host_keys in assign_objects(keys, list(layouts), distribution).items():
        folder = layouts[host].channel(name).relative_to(job_dir).as_posix()
        safepaths.make_dirs(job_dir, folder)
        for key in host_keys:
            cached = fetched.get((bucket, key))
            if cached is None:
                cached = cache / str(len(fetched))
                s3.download(bucket, key, cached)
                fetched[(bucket, key)] = cached
            try:
                safepaths.copy_file(cached, job_dir, f"{folder}/{rels[key]}")
            except (OSError, safepaths.UnsafePath) as exc:
                raise ClientError(
                    f"{_DOWNLOAD_FAILED}S3 key: {key} could not be written into channel "
                    f"{name!r}: {exc}"
                ) from exc
