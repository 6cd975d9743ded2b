"""helpers/identity.py: owner id, learner id, course prefix and tags, notebook and role."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from test_aws_helpers import (
    ME,
    REGION,
    ROLE,
    answer,
    error,
    make_notebook,
)

from helpers import AWS_helpers as h
from helpers import identity


def test_notebook_info_by_name_and_region(aws: boto3.Session) -> None:
    make_notebook(aws, "team-doe-titanic")
    info = h.get_notebook_instance_info("team-doe-titanic", region=REGION)
    assert (info.name, info.instance_type, info.region) == (
        "team-doe-titanic",
        "ml.t3.medium",
        REGION,
    )
    assert info.status == "InService"


def test_notebook_info_finds_this_instance(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    make_notebook(aws, "from-env")
    make_notebook(aws, "from-metadata")
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "from-env")
    assert h.get_notebook_instance_info(session=aws).name == "from-env"
    meta = tmp_path / "resource-metadata.json"
    meta.write_text(json.dumps({"ResourceName": "from-metadata"}))
    monkeypatch.setattr(identity, "RESOURCE_METADATA", meta)
    assert h.get_notebook_instance_info().name == "from-metadata"
    meta.write_text("not json")
    assert h.get_notebook_instance_info().name == "from-env"


def test_notebook_info_bad_input(aws: boto3.Session) -> None:
    with pytest.raises(h.HelperError, match="pass name="):
        h.get_notebook_instance_info()
    with pytest.raises(h.HelperError, match="check the name in SageMaker → Notebooks"):
        h.get_notebook_instance_info("nobody", session=aws)


def test_resolve_role_explicit_env_and_name(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert h.resolve_role(ROLE) == ROLE
    monkeypatch.setenv("SAGEMAKER_ROLE", ROLE)
    assert h.resolve_role() == ROLE
    trust = {"Version": "2012-10-17", "Statement": []}
    aws.client("iam").create_role(
        RoleName="course-role", AssumeRolePolicyDocument=json.dumps(trust)
    )
    assert h.resolve_role("course-role", session=aws).endswith(":role/course-role")
    with pytest.raises(h.HelperError, match="exact role name"):
        h.resolve_role("no-such-role", session=aws)
    with pytest.raises(h.HelperError, match="not an IAM role ARN"):
        h.resolve_role(ME)


def test_resolve_role_off_sagemaker_never_uses_your_own_identity(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sagemaker

    # What the SDK does off SageMaker for an assumed (e.g. SSO) identity: a role ARN that
    # SageMaker cannot assume. The helper must not ask it.
    sso_role = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/AWSReservedSSO_Admin_0123"
    monkeypatch.setattr(sagemaker, "get_execution_role", lambda *_a, **_k: sso_role)
    with pytest.raises(h.HelperError, match="no execution role.*set SAGEMAKER_ROLE") as caught:
        h.resolve_role(session=aws)
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("SAGEMAKER_ROLE", ROLE)
    assert h.resolve_role(session=aws) == ROLE


def test_resolve_role_uses_the_sdk_on_sagemaker(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import sagemaker

    meta = tmp_path / "resource-metadata.json"
    meta.write_text(json.dumps({"ResourceName": "team-doe-titanic"}))
    monkeypatch.setattr(identity, "RESOURCE_METADATA", meta)
    monkeypatch.setattr(sagemaker, "get_execution_role", lambda _session: ROLE)
    assert h.resolve_role(session=aws) == ROLE
    assert h.resolve_role("arn:aws:iam::111111111111:role/explicit").endswith("/explicit")

    def broken(_session: Any) -> str:
        raise ClientError(error("AccessDenied"), "GetRole")

    monkeypatch.setattr(sagemaker, "get_execution_role", broken)
    with pytest.raises(h.HelperError, match="set SAGEMAKER_ROLE"):
        h.resolve_role(session=aws)
    monkeypatch.setenv("SAGEMAKER_ROLE", ROLE)
    assert h.resolve_role(session=aws) == ROLE


def test_owner_learner_and_prefix(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    assert h.owner_id(session=aws) == ME
    assert (h.learner_id(session=aws), h.course_prefix(session=aws)) == (
        "moto",
        "titanic-course/moto",
    )
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "Team-Doe_Titanic")
    assert h.owner_id(session=aws) == f"{ME}/notebook-instance/Team-Doe_Titanic"
    assert h.course_prefix() == "titanic-course/team-doe-titanic"
    meta = tmp_path / "resource-metadata.json"
    meta.write_text(json.dumps({"ResourceName": "from-metadata"}))
    monkeypatch.setattr(identity, "RESOURCE_METADATA", meta)
    assert h.owner_id() == f"{ME}/notebook-instance/from-metadata"
    assert h.course_tags(session=aws)[1] == {"Key": "owner", "Value": h.owner_id(session=aws)}
    monkeypatch.setattr(identity, "RESOURCE_METADATA", tmp_path / "none.json")
    monkeypatch.delenv("NOTEBOOK_INSTANCE_NAME")
    sso = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/AWSReservedSSO_Admin/Jane.Doe@ex.com"
    caller = {"Arn": sso, "UserId": "AROA:jane", "Account": DEFAULT_ACCOUNT_ID}
    answer(aws, "sts", "GetCallerIdentity", lambda _: caller)
    assert h.learner_id(session=aws) == "jane-doe-ex-com"
    assert h.owner_id(session=aws) == sso


def test_course_tags(aws: boto3.Session) -> None:
    tags = h.course_tags("02-training", session=aws)
    assert tags == [
        {"Key": "course", "Value": "sagemaker-titanic"},
        {"Key": "owner", "Value": ME},
        {"Key": "notebook", "Value": "02-training"},
    ]
    assert [t["Key"] for t in h.course_tags()] == ["course", "owner"]
