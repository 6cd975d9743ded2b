"""SageMaker training-job actions: translate the JSON requests to JobManager calls, nothing more."""

from __future__ import annotations

from typing import Any

from localcloud.errors import not_found, unknown_operation, validation
from localcloud.jobs import validation as checks
from localcloud.jobs.manager import JobManager
from localcloud.server.paging import page

JOB_ACTIONS = frozenset(
    {
        "CreateTrainingJob",
        "DescribeTrainingJob",
        "ListTrainingJobs",
        "StopTrainingJob",
        "DeleteTrainingJob",
    }
)
# Hosting: localcloud trains, it does not serve models; saying so beats a fake InService.
HOSTING_ACTIONS = frozenset(
    {
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
        "UpdateEndpoint",
        "CreateTransformJob",
        "CreateInferenceComponent",
    }
)
NO_HOSTING = (
    "localcloud does not host models: {action} is not available offline. Download the job's "
    "model.tar.gz and load the model in the notebook instead, or run this part on AWS."
)
TAG_ACTIONS = frozenset({"AddTags", "ListTags", "DeleteTags"})
# UpdateTrainingJob changes Debugger profiling and warm-pool retention, neither of which runs here
# (SDK v2's enable_default_profiling/update_profiler call it; the course and ModelTrainer do not).
NOT_RUN_HERE = {
    "UpdateTrainingJob": (
        "localcloud does not update training jobs: UpdateTrainingJob changes Debugger profiling "
        "and warm-pool retention, which localcloud does not run. Set profiling when you create "
        "the job, or run this part on AWS."
    )
}


def handles(action: str, body: dict[str, Any]) -> bool:
    """True for the calls answered here; everything else stays with moto."""
    if action in JOB_ACTIONS or action in HOSTING_ACTIONS or action in NOT_RUN_HERE:
        return True
    arn = body.get("ResourceArn", "") if isinstance(body, dict) else ""
    return action in TAG_ACTIONS and ":training-job/" in str(arn)


def handle(
    manager: JobManager, action: str, body: dict[str, Any], region: str, account: str
) -> dict[str, Any]:
    """Answer one training-job action (raises AwsError for the service's errors)."""
    if action in HOSTING_ACTIONS:
        raise validation(NO_HOSTING.format(action=action))
    if action in NOT_RUN_HERE:
        raise validation(NOT_RUN_HERE[action])
    body = checks.check_request(action, body)  # from here on, every member is well-formed
    if action == "CreateTrainingJob":
        job = manager.create(body, region, account)
        return {"TrainingJobArn": job.arn}
    if action == "DescribeTrainingJob":
        return manager.describe(_name(body))
    if action == "StopTrainingJob":
        manager.stop(_name(body))
        return {}
    if action == "DeleteTrainingJob":
        manager.delete(_name(body))
        return {}
    if action == "ListTrainingJobs":
        return _list(manager, body)
    return _tags(manager, action, body)


def _name(body: dict[str, Any]) -> str:
    return body["TrainingJobName"]


def _list(manager: JobManager, body: dict[str, Any]) -> dict[str, Any]:
    jobs = [job.summary() for job in manager.jobs()]
    if body.get("NameContains"):
        needle = body["NameContains"].lower()
        jobs = [j for j in jobs if needle in j["TrainingJobName"].lower()]
    if body.get("StatusEquals"):
        jobs = [j for j in jobs if j["TrainingJobStatus"] == body["StatusEquals"]]
    for key, field, after in (
        ("CreationTimeAfter", "CreationTime", True),
        ("CreationTimeBefore", "CreationTime", False),
        ("LastModifiedTimeAfter", "LastModifiedTime", True),
        ("LastModifiedTimeBefore", "LastModifiedTime", False),
    ):
        if body.get(key) is not None:
            bound = float(body[key])
            jobs = [j for j in jobs if (j[field] > bound if after else j[field] < bound)]
    sort_field = {"Name": "TrainingJobName", "Status": "TrainingJobStatus"}.get(
        body.get("SortBy", "CreationTime"), "CreationTime"
    )
    jobs.sort(
        key=lambda j: j[sort_field], reverse=body.get("SortOrder", "Descending") == "Descending"
    )
    return _page(jobs, body, "TrainingJobSummaries", 10)


def _page(items: list[Any], body: dict[str, Any], key: str, default_size: int) -> dict[str, Any]:
    token = body.get("NextToken")
    if token and not token.isdecimal():  # ours are item offsets; the model allows any text
        raise validation(f"Invalid pagination token: {token}")  # UNCONFIRMED: the service's text
    return page(items, body, key, default_size)


def _tags(manager: JobManager, action: str, body: dict[str, Any]) -> dict[str, Any]:
    arn = body["ResourceArn"]
    job = manager.find_by_arn(arn)
    if job is None:
        raise not_found(f"Requested resource not found: {arn}")
    if action == "AddTags":
        new = {t["Key"]: t["Value"] for t in body.get("Tags") or []}
        manager.update_tags(job, new, set())
        return {"Tags": [{"Key": k, "Value": v} for k, v in new.items()]}
    if action == "DeleteTags":
        manager.update_tags(job, {}, set(body.get("TagKeys") or []))
        return {}
    if action == "ListTags":
        return _page(job.tags, body, "Tags", 50)
    raise unknown_operation(action)
