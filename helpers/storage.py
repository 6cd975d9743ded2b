"""What you keep in S3: the keys under a prefix, their size and monthly cost, its region."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3

from helpers.costs import GIB, load_prices
from helpers.session import HelperError, aws_errors, client, resolve_session


def check_bucket_name(bucket: str) -> None:
    """Reject s3:// URIs and paths where a bare bucket name is expected."""
    if not bucket or not isinstance(bucket, str) or "/" in bucket:
        raise HelperError(
            f"bucket must be a bare bucket name like 'teamname-yourname-titanic', got {bucket!r}"
        )


def iter_objects(
    bucket: str, prefix: str = "", *, session: Any = None, region: str | None = None
) -> Iterator[dict[str, Any]]:
    """Yield every object under a prefix, page by page."""
    check_bucket_name(bucket)
    s3 = client("s3", session=session, region=region)
    fixes = {"NoSuchBucket": "check the bucket name with s3.list_buckets() or in the S3 console"}
    with aws_errors(f"listing s3://{bucket}/{prefix}", fixes):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])


def list_objects(
    bucket: str,
    prefix: str = "",
    *,
    session: boto3.Session | None = None,
    region: str | None = None,
) -> list[str]:
    """List the keys under a prefix (every page, not just the first 1,000).

    Example:
        >>> list_objects("teamname-yourname-titanic", "titanic-course/")
        ['titanic-course/titanic_test.csv', 'titanic-course/titanic_train.csv']
    """
    return [obj["Key"] for obj in iter_objects(bucket, prefix, session=session, region=region)]


def bucket_size(
    bucket: str,
    prefix: str = "",
    *,
    session: boto3.Session | None = None,
    region: str | None = None,
) -> int:
    """Total size in bytes under a prefix, to see what storage costs.

    Example:
        >>> bucket_size("teamname-yourname-titanic")
        91876
    """
    objects = iter_objects(bucket, prefix, session=session, region=region)
    return sum(int(obj.get("Size", 0)) for obj in objects)


def storage_cost(
    bucket: str,
    prefix: str = "",
    *,
    session: boto3.Session | None = None,
    region: str | None = None,
) -> float:
    """Monthly S3 Standard cost in USD of what lies under a prefix, from helpers/prices.json.

    Example:
        >>> round(storage_cost("teamname-yourname-titanic"), 6)
        2e-06
    """
    size = bucket_size(bucket, prefix, session=session, region=region)
    return size / GIB * float(load_prices()["s3_standard_gb_month"])


def check_bucket_region(
    bucket: str, *, session: boto3.Session | None = None, region: str | None = None
) -> str:
    """Return the bucket's region, and fail when it differs from the session's (slow, costly jobs).

    Example:
        >>> check_bucket_region("teamname-yourname-titanic", region="us-east-1")
        'us-east-1'
    """
    check_bucket_name(bucket)
    boto, region = resolve_session(session=session, region=region)
    s3 = boto.client("s3", region_name=region)
    fixes = {
        "404": "no such bucket: check the name with s3.list_buckets() or in the S3 console",
        "NoSuchBucket": "no such bucket: check the name with s3.list_buckets()",
        "403": "the bucket exists but you may not read it: check its name and bucket policy",
    }
    with aws_errors(f"checking bucket {bucket!r}", fixes):
        head = s3.head_bucket(Bucket=bucket)
    where = head.get("BucketRegion") or head["ResponseMetadata"]["HTTPHeaders"].get(
        "x-amz-bucket-region"
    )
    if not where:
        with aws_errors(f"reading the region of bucket {bucket!r}"):
            where = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    if where != region:
        raise HelperError(
            f"bucket {bucket!r} is in {where} but your session uses {region}: use"
            f" boto3.Session(region_name='{where}') or a bucket in {region}"
        )
    return where
