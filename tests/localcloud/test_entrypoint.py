"""A request's own entrypoint, v2 network isolation and IAM's policy simulator, on a live server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _lc_jobs import describe, unique, upload_train, wait_for, write_script, xgboost_estimator
from botocore.exceptions import ClientError

from localcloud import config
from localcloud.testing import XGB_IMAGE

pytestmark = pytest.mark.localcloud


def _ended(session: Any, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: (d := describe(session, name))["TrainingJobStatus"] != "InProgress" and d,
        timeout=180,
    )


def _entrypoint_job(session: Any, program: str, channel: str) -> dict[str, Any]:
    name = unique("entry")
    bucket = session.default_bucket()
    session.sagemaker_client.create_training_job(
        TrainingJobName=name,
        RoleArn=session.get_caller_identity_arn(),
        AlgorithmSpecification={
            "TrainingImage": XGB_IMAGE,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "-c"],
            "ContainerArguments": [program],
        },
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": channel}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/{name}"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 300},
    )
    return _ended(session, name)


def test_the_requests_entrypoint_runs_instead_of_the_images(sm_session: Any) -> None:
    channel = upload_train(sm_session, unique("entry-data"))
    program = (
        "import os, pathlib, sys; "
        "rows = pathlib.Path('/opt/ml/input/data/train/data.csv').read_text(); "
        "pathlib.Path('/opt/ml/model/rows.txt').write_text(rows); "
        "print('python', sys.executable)"
    )
    job = _entrypoint_job(sm_session, program, channel)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python3", "-c"]


def test_the_failure_file_becomes_the_reason(sm_session: Any) -> None:
    channel = upload_train(sm_session, unique("entry-data"))
    program = (
        "import pathlib, sys; "
        "pathlib.Path('/opt/ml/output/failure').write_text('the data had no label column'); "
        "sys.exit(3)"
    )
    job = _entrypoint_job(sm_session, program, channel)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: the data had no label column"


def test_network_isolation_takes_the_code_from_its_channel(sm_session: Any, tmp_path: Path) -> None:
    script = """
        import os, pathlib
        pathlib.Path(os.environ["SM_MODEL_DIR"], "isolated.txt").write_text("ok")
    """
    source = write_script(tmp_path / "src", script)
    estimator = xgboost_estimator(sm_session, source, enable_network_isolation=True)
    estimator.fit({"train": upload_train(sm_session, unique("iso"))}, wait=False)
    job = _ended(sm_session, estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["EnableNetworkIsolation"] is True
    channels = [c["ChannelName"] for c in job["InputDataConfig"]]
    assert "code" in channels  # the SDK sent the archive as a channel, not as an S3 URI


def test_the_policy_simulator_answers_from_the_roles_policies(localcloud_server: Any) -> None:
    iam = localcloud_server.client("iam")
    actions = ["sagemaker:CreateTrainingJob", "s3:PutObject", "ec2:RunInstances"]
    course = iam.simulate_principal_policy(
        PolicySourceArn=localcloud_server.role_arn, ActionNames=actions
    )["EvaluationResults"]
    assert [r["EvalDecision"] for r in course] == ["allowed", "allowed", "implicitDeny"]

    bare = iam.create_role(
        RoleName=unique("bare"), AssumeRolePolicyDocument=json.dumps(config.SAGEMAKER_TRUST)
    )
    arn = bare["Role"]["Arn"]
    results = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=actions[:1])
    assert results["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"

    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "sagemaker:CreateTrainingJob", "Resource": "*"},
        ],
    }
    name = arn.rsplit("/", 1)[-1]
    iam.put_role_policy(RoleName=name, PolicyName="deny", PolicyDocument=json.dumps(deny))
    results = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["sagemaker:CreateTrainingJob", "sagemaker:ListTags"]
    )["EvaluationResults"]
    assert [r["EvalDecision"] for r in results] == ["explicitDeny", "allowed"]

    missing = localcloud_server.role_arn.replace("SageMakerCourseExecutionRole", "NoSuchRole")
    with pytest.raises(ClientError) as info:
        iam.simulate_principal_policy(PolicySourceArn=missing, ActionNames=actions)
    assert info.value.response["Error"]["Code"] == "NoSuchEntity"
    # every other IAM call is still moto's
    assert iam.get_role(RoleName=name)["Role"]["Arn"] == arn
