"""Small helpers shared by the localcloud tests: entry-point scripts and SDK estimators.

What benchmarks need too (fake S3, channels, images, names, polling) is in localcloud.testing;
it is re-exported here so tests import their helpers from one place.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from localcloud.testing import PT_IMAGE, XGB_IMAGE, FolderS3, channel, unique, wait_for

__all__ = [
    "PT_IMAGE",
    "XGB_IMAGE",
    "FolderS3",
    "channel",
    "describe",
    "unique",
    "upload_train",
    "wait_for",
    "write_script",
    "xgboost_estimator",
]


def write_script(folder: Path, body: str, name: str = "train.py") -> Path:
    """Write an entry-point script into its own source folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(body))
    return folder


def xgboost_estimator(session: Any, source_dir: Path, **kwargs: Any) -> Any:
    """A script-mode XGBoost framework estimator (the course's kind of job)."""
    from sagemaker.xgboost import XGBoost

    options: dict[str, Any] = {
        "entry_point": "train.py",
        "source_dir": str(source_dir),
        "framework_version": "1.7-1",
        "role": session.get_caller_identity_arn(),
        "instance_count": 1,
        "instance_type": "ml.m5.large",
        "sagemaker_session": session,
    }
    options.update(kwargs)
    return XGBoost(**options)


def upload_train(session: Any, key_prefix: str, text: str = "a,b\n1,2\n") -> str:
    """Put one CSV under a fresh prefix and return the prefix URI."""
    bucket = session.default_bucket()
    session.upload_string_as_file_body(text, bucket, f"{key_prefix}/data.csv")
    return f"s3://{bucket}/{key_prefix}"


def describe(session: Any, name: str) -> dict[str, Any]:
    """DescribeTrainingJob through the session's client."""
    return session.sagemaker_client.describe_training_job(TrainingJobName=name)
