"""helpers/cleanup.py: list, stop and delete only what carries your owner tag."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from test_aws_helpers import (
    OTHER,
    ROLE,
    answer,
    backend,
    error,
    make_bucket,
    make_job,
    make_notebook,
)

from helpers import AWS_helpers as h
from helpers.cleanup import ENDED


def serve_stop(session: boto3.Session) -> list[dict]:
    """StopTrainingJob as SageMaker does it: InProgress → Stopping (moto lacks the call)."""

    def reply(params: dict) -> dict:
        backend().training_jobs[params["TrainingJobName"]].training_job_status = "Stopping"
        return {}

    return answer(session, "sagemaker", "StopTrainingJob", reply)


def serve_delete(session: boto3.Session) -> list[dict]:
    """DeleteTrainingJob as SageMaker does it: only an ended job (moto lacks the call)."""

    def reply(params: dict) -> dict:
        jobs = backend().training_jobs
        if jobs[params["TrainingJobName"]].training_job_status not in ENDED:
            return error("ValidationException", "job is not in a terminal state")
        del jobs[params["TrainingJobName"]]
        return {}

    return answer(session, "sagemaker", "DeleteTrainingJob", reply)


def test_stop_my_training_job(aws: boto3.Session) -> None:
    stops = serve_stop(aws)
    make_job(aws, "mine", status="InProgress")
    make_job(aws, "theirs", owner=OTHER, status="InProgress")
    make_job(aws, "untagged", owner=None, status="InProgress")
    make_job(aws, "finished")
    assert h.stop_my_training_job("mine", session=aws) == "Stopping"
    assert h.stop_my_training_job("finished", session=aws) == "Completed"
    with pytest.raises(h.HelperError, match="belongs to .*someone-else, not you"):
        h.stop_my_training_job("theirs", session=aws)
    with pytest.raises(h.HelperError, match="has no owner tag"):
        h.stop_my_training_job("untagged", session=aws)
    with pytest.raises(h.HelperError, match="check the name"):
        h.stop_my_training_job("no-such-job", session=aws)
    assert stops == [{"TrainingJobName": "mine"}]
    assert backend().training_jobs["theirs"].training_job_status == "InProgress"


def make_endpoint(session: boto3.Session, name: str, owner: str) -> None:
    sm = session.client("sagemaker")
    tags = [{"Key": "course", "Value": h.COURSE_TAG}, {"Key": "owner", "Value": owner}]
    sm.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "xgboost:1.7-1", "ModelDataUrl": "s3://me-titanic/m.tar.gz"},
    )
    variant = {
        "VariantName": "all",
        "ModelName": f"{name}-model",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config", Tags=tags)


def state(session: boto3.Session) -> dict[str, Any]:
    """Everything clean_up could touch, to compare before and after."""
    sm = session.client("sagemaker")
    s3 = session.client("s3")
    return {
        "jobs": {n: j.training_job_status for n, j in backend().training_jobs.items()},
        "notebooks": {n: i.status for n, i in backend().notebook_instances.items()},
        "endpoints": sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]),
        "keys": sorted(o["Key"] for o in s3.list_objects_v2(Bucket="me-titanic")["Contents"]),
    }


def test_clean_up_dry_run_changes_nothing_then_removes_exactly_the_list(
    aws: boto3.Session, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_stop(aws)
    deletes = serve_delete(aws)
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "this-notebook")
    me = h.owner_id(session=aws)
    make_job(aws, "mine-running", owner=me, status="InProgress")
    make_job(aws, "mine-done", owner=me)
    make_job(aws, "mine-failed", owner=me, status="Failed")
    make_job(aws, "theirs-running", owner=OTHER, status="InProgress")
    make_job(aws, "theirs-done", owner=OTHER)
    make_notebook(aws, "my-notebook", owner=me)
    make_notebook(aws, "their-notebook", owner=OTHER)
    make_notebook(aws, "this-notebook")  # created in the console: untagged, but it is "here"
    make_endpoint(aws, "my-endpoint", me)
    make_endpoint(aws, "their-endpoint", OTHER)
    s3 = make_bucket(aws)
    kept = ["titanic-course/someone-else/d.csv", "titanic-course/this-notebookish/c", "x"]
    for key in ("titanic-course/this-notebook/a.csv", "titanic-course/this-notebook/sub/b.csv"):
        s3.put_object(Bucket="me-titanic", Key=key, Body=b"1")
    for key in kept:
        s3.put_object(Bucket="me-titanic", Key=key, Body=b"1")

    listed = h.list_my_resources("me-titanic", session=aws)
    assert sorted(zip(listed.kind, listed.name, strict=True)) == [
        ("endpoint", "my-endpoint"),
        ("notebook instance", "my-notebook"),
        ("notebook instance", "this-notebook"),
        ("s3 object", "s3://me-titanic/titanic-course/this-notebook/a.csv"),
        ("s3 object", "s3://me-titanic/titanic-course/this-notebook/sub/b.csv"),
        ("training job", "mine-done"),
        ("training job", "mine-failed"),
        ("training job", "mine-running"),
    ]
    actions = dict(zip(listed.name, listed.action, strict=True))
    assert [actions[j] for j in ("mine-running", "mine-done", "mine-failed")] == [
        "stop",
        "delete",
        "delete",
    ]
    before = state(aws)
    plan = h.clean_up("me-titanic", session=aws)
    printed = capsys.readouterr().out
    assert "dry run, nothing changed" in printed
    assert "prefix: s3://me-titanic/titanic-course/this-notebook/" in printed
    assert "2 objects under the prefix" in printed
    assert max(len(line) for line in printed.splitlines()) <= 100
    assert state(aws) == before and not plan.done.any()
    assert sorted(plan.name) == sorted(listed.name)

    calls: list[str] = []
    aws.events.register("after-call", lambda model, **_: calls.append(model.name))
    done = h.clean_up("me-titanic", dry_run=False, session=aws).set_index("name")
    assert done.done.all() and sorted(done.index) == sorted(listed.name)
    acting = [c for c in calls if c.startswith(("Stop", "Delete"))]
    # a running job uploads model.tar.gz when it ends: stop it before deleting the objects
    assert acting == [
        "StopTrainingJob",
        "DeleteTrainingJob",
        "DeleteTrainingJob",
        "DeleteEndpoint",
        "DeleteObjects",
        "StopNotebookInstance",
    ]
    assert sorted(d["TrainingJobName"] for d in deletes) == ["mine-done", "mine-failed"]
    assert list(done.kind)[-1] == "notebook instance"
    assert done.loc["this-notebook", "outcome"] == "kept"
    assert state(aws)["notebooks"]["this-notebook"] == before["notebooks"]["this-notebook"]
    done = h.clean_up("me-titanic", dry_run=False, stop_this_notebook=True, session=aws)
    assert list(zip(done.name, done.outcome, strict=True)) == [
        ("mine-running", "kept"),  # still stopping: not deleted yet
        ("this-notebook", "stopped"),
    ]
    after = state(aws)
    # ended jobs of mine are gone; the one stopped now stays until it has stopped; theirs untouched
    assert after["jobs"] == {
        "mine-running": "Stopping",
        "theirs-running": "InProgress",
        "theirs-done": "Completed",
    }
    stopped = {"my-notebook": "Stopped", "this-notebook": "Stopped"}
    assert after["notebooks"] == {**before["notebooks"], **stopped}
    assert after["endpoints"] == ["their-endpoint"]
    assert after["keys"] == kept
    left = h.list_my_resources("me-titanic", session=aws)
    assert list(zip(left.name, left.action, strict=True)) == [("mine-running", "keep (stopping)")]
    backend().training_jobs["mine-running"].training_job_status = "Stopped"
    done = h.clean_up("me-titanic", dry_run=False, session=aws)  # the next clean-up deletes it
    assert (
        list(done.outcome) == ["deleted"] and h.list_my_resources("me-titanic", session=aws).empty
    )


def test_clean_up_refuses_a_whole_bucket_and_reports_failures(aws: boto3.Session) -> None:
    make_bucket(aws)
    with pytest.raises(h.HelperError, match="refusing a whole bucket"):
        h.clean_up("me-titanic", prefix="/", session=aws)
    make_job(aws, "mine-running", status="InProgress")
    answer(aws, "sagemaker", "StopTrainingJob", lambda _: error("ValidationException"))
    key = f"{h.course_prefix(session=aws)}/a.csv"
    aws.client("s3").put_object(Bucket="me-titanic", Key=key, Body=b"1")
    answer(aws, "s3", "DeleteObjects", lambda _: error("AccessDenied"))
    done = h.clean_up("me-titanic", dry_run=False, session=aws).set_index("name")
    assert done.loc["mine-running", "outcome"] == "failed: ValidationException"
    assert done.loc[f"s3://me-titanic/{key}", "outcome"] == "failed: AccessDenied"
    assert not done.done.any()


def test_learners_sharing_a_role_and_a_bucket_stay_apart(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notebook instances share one execution role: same caller ARN, different notebooks."""
    stops = serve_stop(aws)
    s3 = make_bucket(aws)
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "alice-nb")
    alice_tags = h.course_tags("02-training", session=aws)
    alice_key = f"{h.course_prefix(session=aws)}/train.csv"
    make_job(aws, "alice-job", owner=alice_tags[1]["value"], status="InProgress")
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "bob-nb")
    make_job(aws, "bob-job", owner=h.owner_id(session=aws), status="InProgress")
    bob_key = f"{h.course_prefix(session=aws)}/train.csv"
    assert (alice_key, bob_key) == (
        "titanic-course/alice-nb/train.csv",
        "titanic-course/bob-nb/train.csv",
    )
    for key in (alice_key, bob_key):
        s3.put_object(Bucket="me-titanic", Key=key, Body=b"1")

    with pytest.raises(h.HelperError, match="belongs to .*alice-nb, not you"):
        h.stop_my_training_job("alice-job", session=aws)
    assert list(h.job_summary(session=aws).job_name) == ["bob-job"]
    listed = h.list_my_resources("me-titanic", session=aws)
    assert set(listed.name) == {"bob-job", f"s3://me-titanic/{bob_key}"}
    h.clean_up("me-titanic", dry_run=False, session=aws)
    assert stops == [{"TrainingJobName": "bob-job"}]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="me-titanic")["Contents"]] == [alice_key]
