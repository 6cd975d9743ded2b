"""The session every helper uses, the clients made from it, and the one-line errors they raise.

Every other helpers module builds on this one; it imports none of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

# The session every helper uses when none is passed; set by configure().
_DEFAULTS: dict[str, boto3.Session | None] = {"session": None}
_NOT_FOUND_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NotFound", "404"}


class HelperError(Exception):
    """A one-line message saying what went wrong and how to fix it."""


def _as_boto(session: Any) -> boto3.Session | None:
    """The boto3 session inside a sagemaker.Session, or the boto3 session itself."""
    if session is not None and hasattr(session, "boto_session"):  # a sagemaker.Session
        return session.boto_session
    return session


def configure(session: Any = None) -> None:
    """Make every helper use this session (boto3 or sagemaker) when none is passed; None resets.

    Example:
        >>> configure(boto3.Session(region_name=region))  # once, after the parameters cell
    """
    session = _as_boto(session)
    if session is not None and not isinstance(session, boto3.Session):
        raise HelperError(
            f"configure needs a boto3.Session or a sagemaker.Session, got {type(session).__name__}"
        )
    _DEFAULTS["session"] = session


def resolve_session(*, session: Any = None, region: str | None = None) -> tuple[boto3.Session, str]:
    """Return a boto3 session (the given one, else configure()'s) and a never-empty region."""
    session = _as_boto(session)
    if session is None:
        session = _DEFAULTS["session"]
    if session is None:
        session = boto3.Session(region_name=region) if region else boto3.Session()
    region = region or session.region_name
    if not region:
        raise HelperError(
            "no AWS region set: pass region='us-east-1' (or your region) or set AWS_DEFAULT_REGION"
        )
    return session, region


def client(service: str, *, session: Any = None, region: str | None = None) -> Any:
    """Create a client that always has an explicit region."""
    boto, name = resolve_session(session=session, region=region)
    return boto.client(service, region_name=name)


@contextmanager
def aws_errors(action: str, fixes: dict[str, str] | None = None) -> Iterator[None]:
    """Turn botocore failures into a HelperError; `fixes` maps an error code to its fix."""
    try:
        yield
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", "")
        fixes = fixes or {}
        fix = fixes.get(code)
        lowered = message.lower()
        if fix is None and (
            code in _NOT_FOUND_CODES or "not found" in lowered or "could not find" in lowered
        ):
            fix = fixes.get("NotFound")
        if fix is None and code in ("AccessDenied", "AccessDeniedException", "403"):
            fix = "your role lacks permission for this call: ask the course admin to grant it"
        text = f"{action} failed ({code}: {message.splitlines()[0] if message else 'no message'})"
        raise HelperError(f"{text}: {fix}" if fix else text) from None
    except NoCredentialsError:
        raise HelperError(
            f"{action} failed: no AWS credentials; run on a SageMaker notebook, run"
            " `aws configure`, or start the notebook under localcloud"
        ) from None
    except EndpointConnectionError as err:
        raise HelperError(
            f"{action} failed: cannot reach {err.kwargs.get('endpoint_url', 'the endpoint')}; check"
            " the region, or start localcloud with `python -m localcloud start`"
        ) from None
    except NoRegionError:
        raise HelperError(f"{action} failed: no region; pass region='us-east-1'") from None
    except BotoCoreError as err:
        raise HelperError(f"{action} failed: {str(err).splitlines()[0]}") from None


# ---------------------------------------------------------------- shared by the other modules


def resource_tags(sm: Any, arn: str) -> dict[str, str]:
    """Return a SageMaker resource's tags as a dict; the last value wins when a key repeats."""
    tags: dict[str, str] = {}
    for page in sm.get_paginator("list_tags").paginate(ResourceArn=arn):
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
    return tags


def describe_job(sm: Any, job_name: str) -> dict[str, Any]:
    """Describe a training job, with a clear error when it does not exist."""
    if not job_name or not isinstance(job_name, str):
        raise HelperError("job_name must be a training job name, e.g. est.latest_training_job.name")
    fix = "check the name with job_summary() or in the console (SageMaker → Training jobs)"
    with aws_errors(
        f"describing training job {job_name!r}", {"ValidationException": fix, "NotFound": fix}
    ):
        return sm.describe_training_job(TrainingJobName=job_name)


def show_table(frame: pd.DataFrame, show: bool = True) -> pd.DataFrame:
    """Print a check table readably (fix text last) and hand it back."""
    if show:
        with pd.option_context("display.max_colwidth", None, "display.width", 200):
            print(frame.to_string(index=False))
    return frame


def read_table(path: Path, parts: tuple[str, ...], label: str, restore: str) -> dict[str, Any]:
    """A JSON table the helpers ship (prices, AWS figures), refused in one line naming the fix."""
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise HelperError(f"cannot read {label}{path} ({err}): restore {restore}") from None
    for part in parts:
        if part not in table:
            raise HelperError(f"{label}{path} has no {part!r}: restore {restore}")
    return table
