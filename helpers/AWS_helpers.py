"""Small, tested helpers for the SageMaker Titanic course.

They talk to whatever endpoint boto3 is pointed at (AWS or localcloud) and never know which.
Every failure caused by the caller's input becomes a one-line `HelperError` that names the fix.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pandas as pd
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "COURSE_PREFIX",
    "COURSE_TAG",
    "SUMMARY_COLUMNS",
    "CsvCheck",
    "HelperError",
    "NotebookInfo",
    "bucket_size",
    "check_bucket_region",
    "check_builtin_csv",
    "clean_up",
    "configure",
    "course_prefix",
    "course_tags",
    "estimate_job_cost",
    "get_notebook_instance_info",
    "hourly_price",
    "job_summary",
    "learner_id",
    "list_my_resources",
    "list_objects",
    "load_prices",
    "owner_id",
    "plot_jobs",
    "preflight",
    "record_test_accuracy",
    "resolve_role",
    "stop_my_training_job",
    "storage_cost",
]

COURSE_TAG = "sagemaker-titanic"
COURSE_PREFIX = "titanic-course"
PRICES_FILE = Path(__file__).with_name("prices.json")
RESOURCE_METADATA = Path("/opt/ml/metadata/resource-metadata.json")
INSTANCE_COUNT_QUOTA = "Number of instances across all training jobs"
GIB = 1024**3

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
_NOT_LEARNER_CHARS = re.compile(r"[^a-z0-9-]+")
# The session every helper uses when none is passed; set by configure().
_DEFAULTS: dict[str, boto3.Session | None] = {"session": None}
_NOT_FOUND_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NotFound", "404"}


class HelperError(Exception):
    """A one-line message saying what went wrong and how to fix it."""


# ---------------------------------------------------------------- sessions and errors


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


def _boto_session(session: Any, region: str | None) -> tuple[boto3.Session, str]:
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


def _client(service: str, session: Any = None, region: str | None = None) -> Any:
    """Create a client that always has an explicit region."""
    boto, name = _boto_session(session, region)
    return boto.client(service, region_name=name)


@contextmanager
def _aws(action: str, fixes: dict[str, str] | None = None) -> Iterator[None]:
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


def _caller_arn(session: Any = None, region: str | None = None) -> str:
    """Return the ARN of whoever the credentials belong to."""
    sts = _client("sts", session, region)
    with _aws("reading your identity (sts:GetCallerIdentity)"):
        return sts.get_caller_identity()["Arn"]


def _tags(sm: Any, arn: str) -> dict[str, str]:
    """Return a resource's tags as a dict; the last value wins when a key repeats."""
    tags: dict[str, str] = {}
    for page in sm.get_paginator("list_tags").paginate(ResourceArn=arn):
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
    return tags


def _describe_job(sm: Any, job_name: str) -> dict[str, Any]:
    """Describe a training job, with a clear error when it does not exist."""
    if not job_name or not isinstance(job_name, str):
        raise HelperError("job_name must be a training job name, e.g. est.latest_training_job.name")
    fix = "check the name with job_summary() or in the console (SageMaker → Training jobs)"
    with _aws(
        f"describing training job {job_name!r}", {"ValidationException": fix, "NotFound": fix}
    ):
        return sm.describe_training_job(TrainingJobName=job_name)


# ---------------------------------------------------------------- notebook and role


@dataclass(frozen=True)
class NotebookInfo:
    """What the lesson needs to know about a notebook instance."""

    name: str
    status: str
    instance_type: str
    region: str


def _this_notebook_name() -> str | None:
    """Name of the notebook instance we run on, from SageMaker's metadata or localcloud's env."""
    if RESOURCE_METADATA.is_file():
        try:
            name = json.loads(RESOURCE_METADATA.read_text()).get("ResourceName")
        except (OSError, ValueError):
            name = None
        if name:
            return str(name)
    return os.environ.get("NOTEBOOK_INSTANCE_NAME") or None


def owner_id(session: Any = None, *, region: str | None = None) -> str:
    """Who owns what you create: your identity ARN, plus the notebook instance you work on.

    Learners whose notebook instances share one execution role have the same ARN; the notebook
    instance name tells them apart.

    Example:
        >>> owner_id()  # on notebook instance team-doe
        'arn:aws:sts::123456789012:assumed-role/ml-sagemaker-use/SageMaker/notebook-instance/team-doe'
    """
    arn = _caller_arn(session, region)
    notebook = _this_notebook_name()
    return f"{arn}/notebook-instance/{notebook}" if notebook else arn


def learner_id(session: Any = None, *, region: str | None = None) -> str:
    """A short name for you, safe in S3 keys: your notebook instance, else your user/session name.

    Example:
        >>> learner_id()  # on notebook instance Team-Doe_Titanic
        'team-doe-titanic'
    """
    name = _this_notebook_name() or re.split(r"[/:]", _caller_arn(session, region))[-1]
    learner = _NOT_LEARNER_CHARS.sub("-", name.lower()).strip("-")
    if not learner:
        raise HelperError(f"cannot make a learner name from {name!r}: set NOTEBOOK_INSTANCE_NAME")
    return learner


def course_prefix(session: Any = None, *, region: str | None = None) -> str:
    """Your own S3 folder for the course, so a shared bucket keeps learners' files apart.

    Example:
        >>> course_prefix()  # on notebook instance team-doe-titanic
        'titanic-course/team-doe-titanic'
    """
    return f"{COURSE_PREFIX}/{learner_id(session, region=region)}"


def get_notebook_instance_info(
    name: str | None = None, region: str | None = None, *, session: boto3.Session | None = None
) -> NotebookInfo:
    """Show the status and instance type of a notebook instance, so learners see what they pay for.

    Example:
        >>> info = get_notebook_instance_info()  # this instance
        >>> info.instance_type
        'ml.t3.medium'
    """
    name = name or _this_notebook_name()
    if not name:
        raise HelperError(
            "no notebook instance name: pass name='MyNotebook' (the name in SageMaker → Notebooks)"
            " or set NOTEBOOK_INSTANCE_NAME"
        )
    boto, region = _boto_session(session, region)
    sm = boto.client("sagemaker", region_name=region)
    fix = f"check the name in SageMaker → Notebooks, and that it lives in region {region}"
    with _aws(
        f"describing notebook instance {name!r}", {"ValidationException": fix, "NotFound": fix}
    ):
        desc = sm.describe_notebook_instance(NotebookInstanceName=name)
    return NotebookInfo(
        name=desc["NotebookInstanceName"],
        status=desc["NotebookInstanceStatus"],
        instance_type=desc["InstanceType"],
        region=region,
    )


def resolve_role(
    role: str | None = None, *, session: boto3.Session | None = None, region: str | None = None
) -> str:
    """Return the IAM role ARN that training jobs run as, on SageMaker and off it.

    Order: `role` (an ARN or a role name); on a SageMaker notebook instance or Studio, the SDK's
    execution role; then env SAGEMAKER_ROLE. Off SageMaker your own identity is never used: an
    assumed role (e.g. SSO) is not a role SageMaker can assume.

    Example:
        >>> resolve_role()  # on a notebook instance
        'arn:aws:iam::123456789012:role/ml-sagemaker-use'
    """
    if role:
        return _role_arn(role, session, region)
    env_role = os.environ.get("SAGEMAKER_ROLE") or None
    if RESOURCE_METADATA.is_file():
        import sagemaker  # slow to import, and only needed here

        boto, _ = _boto_session(session, region)
        try:
            return sagemaker.get_execution_role(sagemaker.Session(boto_session=boto))
        except (ValueError, ClientError, BotoCoreError) as err:
            if env_role is None:
                raise HelperError(
                    f"could not find this notebook's execution role ({str(err).splitlines()[0]}):"
                    " pass role=... or set SAGEMAKER_ROLE"
                ) from None
    if env_role:
        return _role_arn(env_role, session, region)
    raise HelperError(
        "no execution role: off SageMaker set SAGEMAKER_ROLE to the ARN of a role SageMaker may"
        " assume, e.g. export SAGEMAKER_ROLE=arn:aws:iam::123456789012:role/MySageMakerRole"
    )


def _role_arn(role: str, session: Any, region: str | None) -> str:
    """A role ARN as given, or the ARN of a role name looked up in IAM."""
    if _ROLE_ARN.match(role):
        return role
    if ":" in role:
        raise HelperError(
            f"{role!r} is not an IAM role ARN: pass one like"
            " 'arn:aws:iam::123456789012:role/MySageMakerRole'"
        )
    iam = _client("iam", session, region)
    fix = "pass the role's full ARN, or the exact role name shown in IAM → Roles"
    with _aws(f"looking up role {role!r}", {"NoSuchEntity": fix}):
        return iam.get_role(RoleName=role)["Role"]["Arn"]


# ---------------------------------------------------------------- S3


def _check_bucket_name(bucket: str) -> None:
    """Reject s3:// URIs and paths where a bare bucket name is expected."""
    if not bucket or not isinstance(bucket, str) or "/" in bucket:
        raise HelperError(
            f"bucket must be a bare bucket name like 'teamname-yourname-titanic', got {bucket!r}"
        )


def _objects(
    bucket: str, prefix: str, session: Any, region: str | None
) -> Iterator[dict[str, Any]]:
    """Yield every object under a prefix, page by page."""
    _check_bucket_name(bucket)
    s3 = _client("s3", session, region)
    fixes = {"NoSuchBucket": "check the bucket name with s3.list_buckets() or in the S3 console"}
    with _aws(f"listing s3://{bucket}/{prefix}", fixes):
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
    return [obj["Key"] for obj in _objects(bucket, prefix, session, region)]


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
    return sum(int(obj.get("Size", 0)) for obj in _objects(bucket, prefix, session, region))


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
    _check_bucket_name(bucket)
    boto, region = _boto_session(session, region)
    s3 = boto.client("s3", region_name=region)
    fixes = {
        "404": "no such bucket: check the name with s3.list_buckets() or in the S3 console",
        "NoSuchBucket": "no such bucket: check the name with s3.list_buckets()",
        "403": "the bucket exists but you may not read it: check its name and bucket policy",
    }
    with _aws(f"checking bucket {bucket!r}", fixes):
        head = s3.head_bucket(Bucket=bucket)
    where = head.get("BucketRegion") or head["ResponseMetadata"]["HTTPHeaders"].get(
        "x-amz-bucket-region"
    )
    if not where:
        with _aws(f"reading the region of bucket {bucket!r}"):
            where = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    if where != region:
        raise HelperError(
            f"bucket {bucket!r} is in {where} but your session uses {region}: use"
            f" boto3.Session(region_name='{where}') or a bucket in {region}"
        )
    return where


# ---------------------------------------------------------------- prices and cost


def load_prices(path: str | Path | None = None) -> dict[str, Any]:
    """Read the dated price table, so every cost figure says where it came from.

    Example:
        >>> load_prices()["training"]["ml.m5.large"]
        0.115
    """
    path = Path(path) if path else PRICES_FILE
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise HelperError(
            f"cannot read price table {path} ({err}): restore helpers/prices.json"
        ) from None
    for key in ("retrieved", "region", "training", "s3_standard_gb_month"):
        if key not in table:
            raise HelperError(f"price table {path} has no {key!r}: restore helpers/prices.json")
    return table


def hourly_price(instance_type: str, use: str = "training") -> float | None:
    """On-demand USD per hour for an instance type, or None (with a warning) when unknown.

    Example:
        >>> hourly_price("ml.m5.large")
        0.115
    """
    table = load_prices()
    if use not in ("training", "notebook"):
        raise HelperError(f"use must be 'training' or 'notebook', got {use!r}")
    price = table.get(use, {}).get(instance_type)
    if price is None:
        warnings.warn(
            f"no {use} price for {instance_type} in helpers/prices.json: cost shown as None;"
            " add it from the SageMaker pricing page",
            stacklevel=2,
        )
        return None
    return float(price)


def _instances(desc: dict[str, Any]) -> list[tuple[str, int]]:
    """(type, count) pairs of a training job, for plain and heterogeneous clusters."""
    config = desc.get("ResourceConfig", {})
    if config.get("InstanceType"):
        return [(config["InstanceType"], int(config.get("InstanceCount", 1)))]
    return [(g["InstanceType"], int(g["InstanceCount"])) for g in config.get("InstanceGroups", [])]


def _cost(desc: dict[str, Any]) -> float | None:
    """USD of a described job: billable seconds (per instance) × count × hourly price."""
    billable = desc.get("BillableTimeInSeconds")
    if billable is None:
        return None
    total = 0.0
    for instance_type, count in _instances(desc):
        price = hourly_price(instance_type)
        if price is None:
            return None
        total += billable * count * price / 3600
    return total


def estimate_job_cost(
    job_name: str, *, session: boto3.Session | None = None, region: str | None = None
) -> float | None:
    """Estimate what a training job cost from its billable seconds and the dated price table.

    Returns None while the job has no billable time yet, or when its instance type has no price.

    Example:
        >>> estimate_job_cost("titanic-xgb-2026-11-26-10-00-00-000")  # 130 s on ml.m5.large
        0.004152777777777778
    """
    sm = _client("sagemaker", session, region)
    desc = _describe_job(sm, job_name)
    if desc.get("BillableTimeInSeconds") is None:
        warnings.warn(
            f"job {job_name} is {desc.get('TrainingJobStatus')} and has no billable time yet:"
            " ask again when it has finished",
            stacklevel=2,
        )
    return _cost(desc)


# ---------------------------------------------------------------- tags and job summary


def course_tags(
    notebook: str | None = None, *, session: boto3.Session | None = None, region: str | None = None
) -> list[dict[str, str]]:
    """Tags to pass as `tags=` to estimators, so clean-up can tell your resources from others'.

    Example:
        >>> XGBoost(..., tags=course_tags("02-training"))
    """
    tags = [
        {"Key": "course", "Value": COURSE_TAG},
        {"Key": "owner", "Value": owner_id(session, region=region)},
    ]
    if notebook:
        tags.append({"Key": "notebook", "Value": str(notebook)})
    return tags


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
    sm = _client("sagemaker", session, region)
    arn = _describe_job(sm, job_name)["TrainingJobArn"]
    value = f"{accuracy:.4f}"
    with _aws(f"tagging training job {job_name!r}"):
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "test_accuracy", "Value": value}])
    return value


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


def _summary_row(desc: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """One job_summary row from a description and its tags."""
    instances = _instances(desc)
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
        "cost_usd": _cost(desc),
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
    boto, region = _boto_session(session, region)
    sm = boto.client("sagemaker", region_name=region)
    me = owner_id(boto, region=region) if mine else None
    query: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if prefix:
        query["NameContains"] = prefix
    rows: list[dict[str, Any]] = []
    with _aws("listing training jobs"):
        for page in sm.get_paginator("list_training_jobs").paginate(**query):
            for job in page["TrainingJobSummaries"]:
                if len(rows) >= limit:
                    break
                if prefix and not job["TrainingJobName"].startswith(prefix):
                    continue
                tags = _tags(sm, job["TrainingJobArn"])
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


@cache
def _jobs_figure_class() -> type[Figure]:
    """A Figure that Jupyter shows as a PNG even when the notebook never imported pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class JobsFigure(Figure):
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            FigureCanvasAgg(self).print_png(buffer)
            return buffer.getvalue()

    return JobsFigure


def plot_jobs(df: pd.DataFrame) -> Figure:
    """Chart mean wall and training time, and mean cost, per configuration: speed against money.

    Returns a matplotlib Figure (no pyplot state, works headless) that Jupyter shows as a PNG.

    Example:
        >>> fig = plot_jobs(job_summary())
        >>> fig.savefig("jobs.png")
    """
    from matplotlib.ticker import MaxNLocator

    needed = {"config", "wall_seconds", "training_seconds", "cost_usd"}
    if not isinstance(df, pd.DataFrame) or not needed <= set(df.columns):
        raise HelperError("plot_jobs needs the DataFrame returned by job_summary()")
    if df.empty:
        raise HelperError("no jobs to plot: run a training job, or widen job_summary's filter")
    numbers = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in needed - {"config"}})
    by_config = numbers.groupby("config", sort=False).agg(
        wall=("wall_seconds", "mean"),
        training=("training_seconds", "mean"),
        cost=("cost_usd", "mean"),
        jobs=("config", "size"),
    )
    labels = [f"{c} ({n} job{'s' if n != 1 else ''})" for c, n in by_config["jobs"].items()]
    height = 1.6 + 0.55 * len(labels)
    fig = _jobs_figure_class()(figsize=(9.0, height), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    places = list(range(len(labels)))
    bars = {"wall": ("tab:blue", -0.2), "training": ("lightsteelblue", 0.2)}
    for column, (color, shift) in bars.items():
        values = by_config[column].fillna(0)
        left.barh([y + shift for y in places], values, 0.4, label=column, color=color)
    left.set_yticks(places, labels)
    left.invert_yaxis()
    left.legend(fontsize=8, loc="lower right")
    left.set(title="Time per job (wall includes start-up)", xlabel="seconds, mean")
    right.barh(places, by_config["cost"].fillna(0), 0.6, color="tab:orange")
    right.set(title="Estimated cost per job", xlabel="USD, mean (on-demand list price)")
    for axes in (left, right):
        axes.tick_params(labelsize=8)
        axes.grid(axis="x", alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(nbins=4))
    return fig


# ---------------------------------------------------------------- preflight


def _quota_table(sq: Any) -> dict[str, dict[str, Any]]:
    """Applied SageMaker quotas by QuotaName, every page (quota codes differ by region)."""
    quotas: dict[str, dict[str, Any]] = {}
    for page in sq.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
        quotas.update({q["QuotaName"]: q for q in page.get("Quotas", [])})
    return quotas


def _default_quota(sq: Any, name: str) -> dict[str, Any] | None:
    """Find a quota missing from the applied list among the defaults, then ask for its value."""
    try:
        pages = sq.get_paginator("list_aws_default_service_quotas").paginate(
            ServiceCode="sagemaker"
        )
        found = next(
            (q for p in pages for q in p.get("Quotas", []) if q["QuotaName"] == name), None
        )
        if found is None:
            return None
        try:
            return sq.get_service_quota(ServiceCode="sagemaker", QuotaCode=found["QuotaCode"])[
                "Quota"
            ]
        except ClientError:
            return found
    except (ClientError, BotoCoreError):
        return None


def _quota_fix(name: str, quota: dict[str, Any], region: str) -> str:
    """The exact place to request an increase of one quota."""
    code = quota.get("QuotaCode", "")
    url = f"https://{region}.console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas"
    return (
        f"request an increase: Service Quotas console → AWS services → Amazon SageMaker →"
        f" '{name}' → Request increase at account level ({url}/{code}); or"
        f" aws service-quotas request-service-quota-increase --service-code sagemaker"
        f" --quota-code {code} --desired-value 1 --region {region}"
    )


def preflight(
    instance_types: Sequence[str] = ("ml.m5.large",),
    *,
    bucket: str | None = None,
    session: boto3.Session | None = None,
    region: str | None = None,
    show: bool = True,
) -> pd.DataFrame:
    """Check credentials, region, bucket and training quotas before launching jobs, in one table.

    A quota of 0 is what makes CreateTrainingJob fail with ResourceLimitExceeded; its row says
    exactly where to request an increase.

    Example:
        >>> preflight(["ml.m5.large", "ml.g4dn.xlarge"], bucket="teamname-yourname-titanic")
    """
    if isinstance(instance_types, str):
        instance_types = [instance_types]
    bad = [t for t in instance_types if not isinstance(t, str) or not t.startswith("ml.")]
    if bad:
        raise HelperError(f"instance types look like 'ml.m5.large', got {bad!r}")
    rows: list[dict[str, Any]] = []

    def add(check: str, value: Any, ok: bool, fix: str = "") -> None:
        rows.append({"check": check, "value": value, "ok": ok, "fix": "" if ok else fix})

    try:
        boto, region = _boto_session(session, region)
    except HelperError as err:
        add("region", None, False, str(err))
        return _show(pd.DataFrame(rows), show)
    add("region", region, True)
    try:
        add("credentials", _caller_arn(boto, region), True)
    except HelperError as err:
        add("credentials", None, False, str(err))
        return _show(pd.DataFrame(rows), show)
    if bucket is not None:
        try:
            add(f"bucket {bucket}", check_bucket_region(bucket, session=boto, region=region), True)
        except HelperError as err:
            add(f"bucket {bucket}", None, False, str(err))
    sq = boto.client("service-quotas", region_name=region)
    try:
        with _aws("listing SageMaker quotas (servicequotas:ListServiceQuotas)"):
            quotas = _quota_table(sq)
    except HelperError as err:
        add("quotas", None, False, f"{err}; check the quotas in the Service Quotas console")
        return _show(pd.DataFrame(rows), show)
    names = [f"{t} for training job usage" for t in instance_types] + [INSTANCE_COUNT_QUOTA]
    for name in names:
        quota = quotas.get(name) or _default_quota(sq, name)
        if quota is None:
            add(
                f"quota: {name}",
                None,
                False,
                f"no such quota in {region}: check the instance"
                " type's spelling, or pick a type or region that offers it for training",
            )
            continue
        value = quota.get("Value")
        add(f"quota: {name}", value, bool(value and value > 0), _quota_fix(name, quota, region))
    return _show(pd.DataFrame(rows), show)


def _show(frame: pd.DataFrame, show: bool) -> pd.DataFrame:
    """Print a check table readably (fix text last) and hand it back."""
    if show:
        with pd.option_context("display.max_colwidth", None, "display.width", 200):
            print(frame.to_string(index=False))
    return frame


# ---------------------------------------------------------------- built-in XGBoost CSV check


@dataclass
class CsvCheck:
    """Whether a CSV suits built-in XGBoost, and what to change when it does not."""

    path: str
    rows: int  # data rows, not counting a header
    columns: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file has no problems."""
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        head = f"{Path(self.path).name}: {self.rows} rows × {self.columns} columns"
        if self.ok:
            return f"CsvCheck(ok=True) {head}: fit for built-in XGBoost"
        return "\n".join([f"CsvCheck(ok=False) {head}", *(f"  - {p}" for p in self.problems)])


def check_builtin_csv(path: str | Path, *, binary: bool = True) -> CsvCheck:
    """Say whether a CSV suits the built-in XGBoost algorithm (no header, label first, numbers).

    `binary=True` also requires labels 0/1, as objective binary:logistic does.

    Example:
        >>> check_builtin_csv("titanic_train.csv")
        CsvCheck(ok=False) titanic_train.csv: 712 rows × 12 columns
          - the first row looks like a header ('PassengerId', ...): write with header=False
    """
    path = Path(path)
    if not path.is_file():
        raise HelperError(f"no file {path}: check the path (os.listdir() shows what is here)")
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return CsvCheck(str(path), 0, 0, ["the file is empty: write the training rows to it"])
    except pd.errors.ParserError as err:
        raise HelperError(f"{path} is not a readable CSV ({str(err).splitlines()[0]})") from None
    result = CsvCheck(str(path), len(raw), raw.shape[1])
    problems = result.problems
    blank = raw.apply(lambda col: col.str.strip() == "")
    numbers = raw.apply(pd.to_numeric, errors="coerce")
    text = numbers.isna() & ~blank
    # A header is text on top of a column that is numeric below it.
    if len(raw) > 1 and (text.iloc[0] & ~text.iloc[1:].any()).any():
        shown = ", ".join(repr(v) for v in raw.iloc[0].tolist()[:3])
        problems.append(
            f"the first row looks like a header ({shown}, ...): write with header=False"
        )
        raw, numbers, text, blank = raw.iloc[1:], numbers.iloc[1:], text.iloc[1:], blank.iloc[1:]
        result.rows = len(raw)
    bad_columns = [int(c) for c in text.columns if text[c].any()]
    if bad_columns:
        examples = ", ".join(f"{c}: {raw[c][text[c]].iloc[0]!r}" for c in bad_columns[:3])
        problems.append(
            f"columns {bad_columns} hold text (e.g. {examples}): encode them as numbers or drop"
            " them"
        )
    label = numbers[0]
    missing = int((blank[0] | label.isna()).sum())
    if missing:
        problems.append(f"the label (first column) is missing in {missing} rows: drop those rows")
    values = label.dropna()
    if len(values) > 2 and values.is_monotonic_increasing and values.is_unique:
        problems.append(
            "the first column only counts up (0, 1, 2, ...), like a row index or ID: write with"
            " index=False and put the label first"
        )
    elif binary and not values.isin([0, 1]).all():
        problems.append(
            f"the first column has {values.nunique()} distinct values but binary:logistic needs"
            " a 0/1 label: put the label (e.g. Survived) first"
        )
    return result


# ---------------------------------------------------------------- ownership-safe clean-up


def _mine(tags: dict[str, str], me: str) -> bool:
    """True when a resource carries the course tag and `me` (an owner_id) as owner."""
    return tags.get("course") == COURSE_TAG and tags.get("owner") == me


def stop_my_training_job(
    name: str, *, session: boto3.Session | None = None, region: str | None = None
) -> str:
    """Stop a running training job, but only one tagged as yours (shared accounts stay safe).

    Returns the job's status afterwards ("Stopping", or the final status if it had ended).

    Example:
        >>> stop_my_training_job("titanic-xgb-2026-11-26-10-00-00-000")
        'Stopping'
    """
    boto, region = _boto_session(session, region)
    sm = boto.client("sagemaker", region_name=region)
    desc = _describe_job(sm, name)
    me = owner_id(boto, region=region)
    with _aws(f"reading the tags of {name!r}"):
        owner = _tags(sm, desc["TrainingJobArn"]).get("owner")
    if owner != me:
        who = f"belongs to {owner}" if owner else "has no owner tag"
        raise HelperError(
            f"job {name} {who}, not you ({me}): ask its owner or the course admin to stop it"
        )
    if desc["TrainingJobStatus"] != "InProgress":
        return desc["TrainingJobStatus"]
    with _aws(f"stopping training job {name!r}"):
        sm.stop_training_job(TrainingJobName=name)
    return "Stopping"


def _folder(prefix: str) -> str:
    """A folder-like prefix: never empty, always ending in '/'."""
    prefix = (prefix or "").strip("/")
    if not prefix:
        raise HelperError(
            "refusing a whole bucket: pass your course prefix, e.g. prefix=course_prefix()"
        )
    return prefix + "/"


def list_my_resources(
    bucket: str | None = None,
    prefix: str | None = None,
    *,
    session: boto3.Session | None = None,
    region: str | None = None,
) -> pd.DataFrame:
    """List what you have running or stored for this course, i.e. what may still cost money.

    Training jobs in progress, notebook instances in service and endpoints tagged with the course
    and you as owner, the notebook instance this code runs on (tagged or not, since the console
    creates it), and the objects under `bucket`/`prefix` (when a bucket is given; the prefix
    defaults to course_prefix(), your own folder).

    Example:
        >>> list_my_resources("teamname-yourname-titanic")
    """
    boto, region = _boto_session(session, region)
    sm = boto.client("sagemaker", region_name=region)
    me = owner_id(boto, region=region)
    this_notebook = _this_notebook_name()
    rows: list[dict[str, Any]] = []
    with _aws("listing your SageMaker resources"):
        paginate = sm.get_paginator
        for page in paginate("list_training_jobs").paginate(StatusEquals="InProgress"):
            for job in page["TrainingJobSummaries"]:
                if _mine(_tags(sm, job["TrainingJobArn"]), me):
                    rows.append(_row("training job", job["TrainingJobName"], "stop", "InProgress"))
        for page in paginate("list_notebook_instances").paginate(StatusEquals="InService"):
            for nb in page["NotebookInstances"]:
                here = nb["NotebookInstanceName"] == this_notebook
                if here or _mine(_tags(sm, nb["NotebookInstanceArn"]), me):
                    rows.append(
                        _row(
                            "notebook instance",
                            nb["NotebookInstanceName"],
                            "stop",
                            nb["NotebookInstanceStatus"],
                        )
                    )
        for page in paginate("list_endpoints").paginate():
            for ep in page["Endpoints"]:
                if _mine(_tags(sm, ep["EndpointArn"]), me):
                    rows.append(
                        _row("endpoint", ep["EndpointName"], "delete", ep["EndpointStatus"])
                    )
    if bucket is not None:
        folder = _folder(course_prefix(boto, region=region) if prefix is None else prefix)
        for obj in _objects(bucket, folder, boto, region):
            rows.append(
                _row(
                    "s3 object",
                    f"s3://{bucket}/{obj['Key']}",
                    "delete",
                    f"{obj.get('Size', 0)} bytes",
                )
            )
    return pd.DataFrame(rows, columns=["kind", "name", "action", "status"])


def _delete_objects(s3: Any, bucket: str | None, uris: pd.Series) -> dict[int, str]:
    """Delete s3:// URIs of one bucket, 1,000 per call; the outcome of each, by row index."""
    keys = [(i, uri.split("/", 3)[3]) for i, uri in uris.items()]
    done: dict[int, str] = {}
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        try:
            answer = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for _, k in batch], "Quiet": True}
            )
            failed = {e["Key"]: e.get("Code", "?") for e in answer.get("Errors", [])}
        except ClientError as err:
            failed = {k: err.response["Error"].get("Code", "?") for _, k in batch}
        done.update({i: f"failed: {failed[k]}" if k in failed else "deleted" for i, k in batch})
    return done


def _row(kind: str, name: str, action: str, status: str) -> dict[str, str]:
    return {"kind": kind, "name": name, "action": action, "status": status}


def clean_up(
    bucket: str | None = None,
    prefix: str | None = None,
    *,
    dry_run: bool = True,
    stop_this_notebook: bool = False,
    session: boto3.Session | None = None,
    region: str | None = None,
) -> pd.DataFrame:
    """Stop or delete what list_my_resources shows, so nothing keeps billing after the course.

    With dry_run=True (the default) it only prints the plan; dry_run=False acts on exactly those
    rows and reports each outcome, in an order that leaves nothing behind: training jobs are
    stopped first (a running job would upload its model after the delete), then endpoints are
    deleted, then the S3 objects under `prefix` (default: course_prefix()), then other notebook
    instances you own are stopped. The notebook instance this code runs on is kept unless
    stop_this_notebook=True (stopping it ends your session).

    Example:
        >>> clean_up("teamname-yourname-titanic")                 # look first
        >>> clean_up("teamname-yourname-titanic", dry_run=False)  # then act
    """
    boto, region = _boto_session(session, region)
    plan = list_my_resources(bucket, prefix, session=boto, region=region)
    here = (plan.kind == "notebook instance") & (plan.name == _this_notebook_name())
    if not stop_this_notebook:
        plan.loc[here, "action"] = "keep (runs this notebook; stop it in the console when done)"
    order = {"training job": 0, "endpoint": 1, "s3 object": 2, "notebook instance": 3}
    plan = plan.sort_values("kind", key=lambda k: k.map(order), kind="stable")
    if dry_run:
        print(f"dry run, nothing changed: {len(plan)} action(s) planned; dry_run=False acts")
        return _show(plan.assign(done=False), True)
    sm = boto.client("sagemaker", region_name=region)
    calls = {
        "training job": lambda n: sm.stop_training_job(TrainingJobName=n),
        "endpoint": lambda n: sm.delete_endpoint(EndpointName=n),
        "notebook instance": lambda n: sm.stop_notebook_instance(NotebookInstanceName=n),
    }
    done: dict[int, str] = {}
    for i, kind, name, action in plan[["kind", "name", "action"]].itertuples():
        if kind == "s3 object":
            if i not in done:  # the first object row deletes them all, in batches
                objects = plan.loc[plan.kind == "s3 object", "name"]
                s3 = boto.client("s3", region_name=region)
                done.update(_delete_objects(s3, bucket, objects))
        elif action.startswith("keep"):
            done[i] = "kept"
        elif kind in calls:
            try:
                calls[kind](name)
                done[i] = "stopped" if kind != "endpoint" else "deleted"
            except ClientError as err:
                done[i] = f"failed: {err.response['Error'].get('Code')}"
    outcomes = [done[i] for i in plan.index]
    result = plan.assign(
        outcome=outcomes, done=[o in ("stopped", "deleted", "kept") for o in outcomes]
    )
    return _show(result, True)
