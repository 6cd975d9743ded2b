"""The training jobs a course run made, read back from localcloud as one table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from helpers.AWS_helpers import SUMMARY_COLUMNS, job_summary

# job_summary's own columns (one list, in the helpers) plus the accuracy the lessons record
COLUMNS = [*SUMMARY_COLUMNS, "test_accuracy"]
NUMERIC = [c for c in COLUMNS if c.endswith("_seconds")] + ["cost_usd", "test_accuracy"]

JobSource = Callable[[], pd.DataFrame]


def empty_jobs() -> pd.DataFrame:
    """A jobs table with no rows, so callers never special-case 'no jobs'."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})


def no_jobs() -> pd.DataFrame:
    """Job source for runs without localcloud (unit tests, the python3 kernel)."""
    return empty_jobs()


def localcloud_jobs(since: datetime) -> JobSource:
    """Job source over the running localcloud; connects now so every kernel sees the same env."""
    session = _connect()
    return lambda: jobs_since(session, since)


def jobs_since(session: Any, since: datetime) -> pd.DataFrame:
    """Jobs created after `since`, tabulated by the course's own job_summary() so numbers agree."""
    names = _job_names_since(session.client("sagemaker"), since - timedelta(seconds=5))
    if not names:
        return empty_jobs()
    # every owner's course jobs, newest first: this run's are among the first len(names)
    df = job_summary(session=session, mine=False, limit=len(names))
    return df[df["job_name"].isin(names)].iloc[::-1]


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Give any jobs table the agreed columns and types, so the site can rely on them."""
    df = df.copy()
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = None
    if df["config"].isna().all() and len(df):
        pairs = zip(df.instance_type, df.instance_count, strict=True)
        df["config"] = [config_label(t, n) for t, n in pairs]
    df["instance_count"] = pd.to_numeric(df["instance_count"], errors="coerce").astype("Int64")
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df[COLUMNS].reset_index(drop=True)


def config_label(instance_type: Any, count: Any) -> str:
    """'ml.m5.large × 2': how the results page names a configuration."""
    return f"{instance_type} × {count}"


def _connect() -> Any:
    """A boto3 session wired to the localcloud the runner started (never starts another)."""
    import localcloud

    return localcloud.connect(start=False).boto_session


def _job_names_since(sm: Any, since: datetime) -> list[str]:
    """Names of jobs created after `since`, oldest first (the server may ignore the filter)."""
    rows = []
    for page in sm.get_paginator("list_training_jobs").paginate(CreationTimeAfter=since):
        rows += [s for s in page["TrainingJobSummaries"] if _aware(s["CreationTime"]) >= since]
    rows.sort(key=lambda s: s["CreationTime"])
    return [s["TrainingJobName"] for s in rows]


def _aware(ts: datetime) -> datetime:
    """Compare server timestamps with ours even if one side comes back naive."""
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
