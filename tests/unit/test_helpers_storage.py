"""helpers/storage.py: S3 listing, size, cost and the bucket's region."""

from __future__ import annotations

import boto3
import pytest
from test_aws_helpers import (
    REGION,
    answer,
    make_bucket,
)

from helpers import AWS_helpers as h


def test_s3_listing_size_and_cost(aws: boto3.Session) -> None:
    s3 = make_bucket(aws)
    s3.put_object(Bucket="me-titanic", Key="titanic-course/train.csv", Body=b"x" * 300)
    s3.put_object(Bucket="me-titanic", Key="titanic-course/test.csv", Body=b"x" * 100)
    s3.put_object(Bucket="me-titanic", Key="other/notes.txt", Body=b"x" * 50)
    assert h.list_objects("me-titanic", "titanic-course/") == [
        "titanic-course/test.csv",
        "titanic-course/train.csv",
    ]
    assert h.bucket_size("me-titanic") == 450
    assert h.bucket_size("me-titanic", "titanic-course/", session=aws) == 400
    assert h.storage_cost("me-titanic", "other/") == pytest.approx(50 / 1024**3 * 0.023)


def test_s3_bad_input(aws: boto3.Session) -> None:
    with pytest.raises(h.HelperError, match="check the bucket name"):
        h.list_objects("no-such-bucket")
    with pytest.raises(h.HelperError, match="bare bucket name"):
        h.bucket_size("s3://me-titanic/data")


def test_bucket_region(aws: boto3.Session) -> None:
    make_bucket(aws)
    make_bucket(aws, "me-frankfurt", "eu-central-1")
    assert h.check_bucket_region("me-titanic", session=aws) == REGION
    assert h.check_bucket_region("me-frankfurt", region="eu-central-1") == "eu-central-1"
    with pytest.raises(h.HelperError, match="is in eu-central-1 but your session uses us-east-1"):
        h.check_bucket_region("me-frankfurt", session=aws)
    with pytest.raises(h.HelperError, match="no such bucket"):
        h.check_bucket_region("no-such-bucket", session=aws)


def test_bucket_region_falls_back_to_get_bucket_location(aws: boto3.Session) -> None:
    make_bucket(aws)
    answer(aws, "s3", "HeadBucket", lambda _: {"ResponseMetadata": {"HTTPHeaders": {}}})
    assert h.check_bucket_region("me-titanic", session=aws) == REGION
