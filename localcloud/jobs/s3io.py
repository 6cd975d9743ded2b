"""The server's S3Access (localcloud/hosts/data.py): its own S3, over loopback, signed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localcloud.credentials import RoleCredentials


class ServerS3:
    """S3Access over HTTP to the localcloud server itself (moto's S3 behind it)."""

    def __init__(self, endpoint: str, region: str, secret: RoleCredentials) -> None:
        from botocore.config import Config

        self._client: Any = secret.boto_session(region).client(
            "s3",
            endpoint_url=endpoint,
            config=Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
        )

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Sorted object keys under prefix; an absent bucket has none."""
        from botocore.exceptions import ClientError

        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(o["Key"] for o in page.get("Contents", []))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchBucket", "404"):
                return []
            raise
        return sorted(k for k in keys if not k.endswith("/"))

    def download(self, bucket: str, key: str, dest: Path) -> None:
        """Write one object to dest."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._client.download_file(bucket, key, str(dest))

    def upload(self, src: Path, bucket: str, key: str) -> None:
        """Store one file as an object."""
        self._client.upload_file(str(src), bucket, key)
