"""Ownership-safe clean-up: list, stop and delete only what carries your owner tag."""

from __future__ import annotations

from typing import Any

import boto3
import pandas as pd
from botocore.exceptions import ClientError

from helpers.identity import COURSE_TAG, course_prefix, owner_id, this_notebook_name
from helpers.session import (
    HelperError,
    aws_errors,
    describe_job,
    resolve_session,
    resource_tags,
    show_table,
)
from helpers.storage import iter_objects

ENDED = ("Completed", "Failed", "Stopped")  # the states DeleteTrainingJob accepts


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
    boto, region = resolve_session(session=session, region=region)
    sm = boto.client("sagemaker", region_name=region)
    desc = describe_job(sm, name)
    me = owner_id(session=boto, region=region)
    with aws_errors(f"reading the tags of {name!r}"):
        owner = resource_tags(sm, desc["TrainingJobArn"]).get("owner")
    if owner != me:
        who = f"belongs to {owner}" if owner else "has no owner tag"
        raise HelperError(
            f"job {name} {who}, not you ({me}): ask its owner or the course admin to stop it"
        )
    if desc["TrainingJobStatus"] != "InProgress":
        return desc["TrainingJobStatus"]
    with aws_errors(f"stopping training job {name!r}"):
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
    """List what you have for this course: what may still cost money, and your jobs' records.

    Training jobs (running ones to stop, ended ones to delete), notebook instances in service and
    endpoints tagged with the course and you as owner, the notebook instance this code runs on
    (tagged or not, since the console creates it), and the objects under `bucket`/`prefix` (when
    a bucket is given; the prefix defaults to course_prefix(), your own folder).

    Example:
        >>> list_my_resources("teamname-yourname-titanic")
    """
    boto, region = resolve_session(session=session, region=region)
    sm = boto.client("sagemaker", region_name=region)
    me = owner_id(session=boto, region=region)
    this_notebook = this_notebook_name()
    rows: list[dict[str, Any]] = []
    with aws_errors("listing your SageMaker resources"):
        paginate = sm.get_paginator
        for page in paginate("list_training_jobs").paginate():
            for job in page["TrainingJobSummaries"]:
                if _mine(resource_tags(sm, job["TrainingJobArn"]), me):
                    status = job["TrainingJobStatus"]
                    rows.append(
                        _row("training job", job["TrainingJobName"], _job_action(status), status)
                    )
        for page in paginate("list_notebook_instances").paginate(StatusEquals="InService"):
            for nb in page["NotebookInstances"]:
                here = nb["NotebookInstanceName"] == this_notebook
                if here or _mine(resource_tags(sm, nb["NotebookInstanceArn"]), me):
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
                if _mine(resource_tags(sm, ep["EndpointArn"]), me):
                    rows.append(
                        _row("endpoint", ep["EndpointName"], "delete", ep["EndpointStatus"])
                    )
    if bucket is not None:
        folder = _folder(course_prefix(session=boto, region=region) if prefix is None else prefix)
        for obj in iter_objects(bucket, folder, session=boto, region=region):
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


def _job_action(status: str) -> str:
    """Running jobs are stopped (and deleted by a later clean-up), ended ones deleted."""
    if status == "InProgress":
        return "stop"
    return "delete" if status in ENDED else f"keep ({status.lower()})"


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
    rows and reports each outcome, in an order that leaves nothing behind: running training jobs
    are stopped first (a running job would upload its model after the delete), ended ones are
    deleted (DeleteTrainingJob; a job stopped now is deleted by the next clean-up), then
    endpoints, then the S3 objects under `prefix` (default: course_prefix()), then other notebook
    instances you own are stopped. Other people's jobs are never touched. The notebook instance
    this code runs on is kept unless stop_this_notebook=True (stopping it ends your session).

    Example:
        >>> clean_up("teamname-yourname-titanic")                 # look first
        >>> clean_up("teamname-yourname-titanic", dry_run=False)  # then act
    """
    boto, region = resolve_session(session=session, region=region)
    plan = list_my_resources(bucket, prefix, session=boto, region=region)
    here = (plan.kind == "notebook instance") & (plan.name == this_notebook_name())
    if not stop_this_notebook:
        plan.loc[here, "action"] = "keep (this notebook)"
    order = {"training job": 0, "endpoint": 1, "s3 object": 2, "notebook instance": 3}
    where = f"s3://{bucket}/{_folder(course_prefix(session=boto) if prefix is None else prefix)}"
    rank = plan.kind.map(order) * 2 + ~plan.action.str.startswith("stop")  # stop, then delete
    plan = plan.iloc[rank.argsort(kind="stable")]
    if dry_run:
        print(f"dry run, nothing changed: {len(plan)} action(s) planned; dry_run=False acts")
        _show_brief(plan.assign(done=False), where)
        return plan.assign(done=False)
    sm = boto.client("sagemaker", region_name=region)
    calls = {
        ("training job", "stop"): lambda n: sm.stop_training_job(TrainingJobName=n),
        ("training job", "delete"): lambda n: sm.delete_training_job(TrainingJobName=n),
        ("endpoint", "delete"): lambda n: sm.delete_endpoint(EndpointName=n),
        ("notebook instance", "stop"): lambda n: sm.stop_notebook_instance(NotebookInstanceName=n),
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
        elif (kind, verb := action.split()[0]) in calls:
            try:
                calls[kind, verb](name)
                done[i] = "stopped" if verb == "stop" else "deleted"
            except ClientError as err:
                done[i] = f"failed: {err.response['Error'].get('Code')}"
    outcomes = [done[i] for i in plan.index]
    result = plan.assign(
        outcome=outcomes, done=[o in ("stopped", "deleted", "kept") for o in outcomes]
    )
    _show_brief(result, where)
    return result


def _show_brief(frame: pd.DataFrame, where: str) -> None:
    """Print a plan or its outcome page-wide: S3 objects as one line per action and outcome."""
    objects = frame[frame.kind == "s3 object"]
    rows = frame[frame.kind != "s3 object"].drop(columns="status")
    if not objects.empty:
        keys = ["action", "outcome"] if "outcome" in objects else ["action"]
        for group, part in objects.groupby(keys, sort=False):
            values = dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True))
            name = f"{len(part)} objects under the prefix"
            row = {"kind": "s3 object", "name": name, **values, "done": part.done.all()}
            rows = pd.concat([rows, pd.DataFrame([row])], ignore_index=True)
    if not objects.empty:
        print(f"prefix: {where}")
    show_table(rows, True)
