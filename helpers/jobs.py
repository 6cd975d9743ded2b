"""Your training jobs side by side: time, cost and the test accuracy you recorded for each."""

from __future__ import annotations

import math
from typing import Any

import boto3
import pandas as pd

from helpers.costs import job_cost, job_instances
from helpers.identity import COURSE_TAG, owner_id
from helpers.session import (
    HelperError,
    aws_errors,
    client,
    describe_job,
    resolve_session,
    resource_tags,
)

SUMMARY_COLUMNS = [
    "job_name",
    "notebook",
    "instance_type",
    "instance_count",
    "config",
    "status",
    "wall_seconds",
    "training_seconds",
    "billable_seconds",
    "billed_instance_seconds",
    "cost_usd",
]


def record_test_accuracy(
    job_name: str,
    accuracy: float,
    *,
    session: boto3.Session | None = None,
    region: str | None = None,
) -> str:
    """Store a job's test-set accuracy as tag `test_accuracy`, so job_summary can compare runs.

    Example:
        >>> record_test_accuracy(est.latest_training_job.name, 0.8212)
        '0.8212'
    """
    if isinstance(accuracy, bool) or not isinstance(accuracy, int | float):
        raise HelperError(f"accuracy must be a number between 0 and 1, got {accuracy!r}")
    if not 0 <= accuracy <= 1 or math.isnan(accuracy):
        raise HelperError(
            f"accuracy must be a fraction between 0 and 1 (e.g. 0.8212), got {accuracy}"
        )
    sm = client("sagemaker", session=session, region=region)
    arn = describe_job(sm, job_name)["TrainingJobArn"]
    value = f"{accuracy:.4f}"
    with aws_errors(f"tagging training job {job_name!r}"):
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "test_accuracy", "Value": value}])
    return value


def _summary_row(desc: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """One job_summary row from a description and its tags."""
    instances = job_instances(desc)
    billable = desc.get("BillableTimeInSeconds")
    count = sum(n for _, n in instances)
    accuracy = tags.get("test_accuracy")
    created, ended = desc.get("CreationTime"), desc.get("TrainingEndTime")
    row: dict[str, Any] = {
        "job_name": desc["TrainingJobName"],
        "notebook": tags.get("notebook"),
        "instance_type": "+".join(t for t, _ in instances),
        "instance_count": count,
        "config": " + ".join(f"{t} × {n}" for t, n in instances),
        "status": desc.get("TrainingJobStatus"),
        "wall_seconds": (ended - created).total_seconds() if created and ended else None,
        "training_seconds": desc.get("TrainingTimeInSeconds"),
        "billable_seconds": billable,
        "billed_instance_seconds": None if billable is None else billable * count,
        "cost_usd": job_cost(desc),
    }
    for metric in desc.get("FinalMetricDataList", []):
        row[metric["MetricName"]] = metric["Value"]
    row["test_accuracy"] = float(accuracy) if accuracy else None
    row["created"] = desc.get("CreationTime")
    return row


def job_summary(
    prefix: str | None = None,
    *,
    tag: tuple[str, str] | None = ("course", COURSE_TAG),
    mine: bool = True,
    limit: int = 100,
    session: boto3.Session | None = None,
    region: str | None = None,
) -> pd.DataFrame:
    """Tabulate this course's training jobs (newest first) to compare time, cost and accuracy.

    Filter by a job-name `prefix`, by a `tag` (key, value; default: the course tag), or both;
    `tag=None` drops the tag filter. `mine=True` keeps only jobs whose owner tag is owner_id();
    `limit` caps the rows after filtering. `wall_seconds` is creation to end (what you wait,
    start-up included); `billable_seconds` is per instance, as AWS reports it;
    `billed_instance_seconds` is that × instance count, which is what the cost is based on.

    Example:
        >>> job_summary(prefix="titanic-xgb")[["config", "wall_seconds", "cost_usd"]]
    """
    if prefix is None and tag is None:
        raise HelperError("give prefix='titanic-' or tag=('course', COURSE_TAG) to pick the jobs")
    if tag is not None and (len(tag) != 2 or not all(isinstance(t, str) for t in tag)):
        raise HelperError(f"tag must be a (key, value) pair like ('course', '{COURSE_TAG}')")
    boto, region = resolve_session(session=session, region=region)
    sm = boto.client("sagemaker", region_name=region)
    me = owner_id(session=boto, region=region) if mine else None
    query: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if prefix:
        query["NameContains"] = prefix
    rows: list[dict[str, Any]] = []
    with aws_errors("listing training jobs"):
        for page in sm.get_paginator("list_training_jobs").paginate(**query):
            for job in page["TrainingJobSummaries"]:
                if len(rows) >= limit:
                    break
                if prefix and not job["TrainingJobName"].startswith(prefix):
                    continue
                tags = resource_tags(sm, job["TrainingJobArn"])
                if tag is not None and tags.get(tag[0]) != tag[1]:
                    continue
                if me is not None and tags.get("owner") != me:
                    continue
                desc = sm.describe_training_job(TrainingJobName=job["TrainingJobName"])
                rows.append(_summary_row(desc, tags))
            if len(rows) >= limit:
                break
    frame = pd.DataFrame(rows)
    tail = ["test_accuracy", "created"]
    for column in [*SUMMARY_COLUMNS, *tail]:
        if column not in frame:
            frame[column] = pd.Series(dtype="object")
    metrics = [c for c in frame.columns if c not in [*SUMMARY_COLUMNS, *tail]]
    return frame[[*SUMMARY_COLUMNS, *metrics, *tail]]
