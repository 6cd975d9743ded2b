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
    from sagemaker.core.helper import session_helper

    # What the SDK does off SageMaker for an assumed (e.g. SSO) identity: a role ARN that
    # SageMaker cannot assume. The helper must not ask it.
    sso_role = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/AWSReservedSSO_Admin_0123"
    monkeypatch.setattr(session_helper, "get_execution_role", lambda *_a, **_k: sso_role)
    with pytest.raises(h.HelperError, match="no execution role.*set SAGEMAKER_ROLE") as caught:
        h.resolve_role(session=aws)
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("SAGEMAKER_ROLE", ROLE)
    assert h.resolve_role(session=aws) == ROLE


def test_resolve_role_uses_the_sdk_on_sagemaker(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from sagemaker.core.helper import session_helper

    meta = tmp_path / "resource-metadata.json"
    meta.write_text(json.dumps({"ResourceName": "team-doe-titanic"}))
    monkeypatch.setattr(identity, "RESOURCE_METADATA", meta)
    monkeypatch.setattr(session_helper, "get_execution_role", lambda _session: ROLE)
    assert h.resolve_role(session=aws) == ROLE
    assert h.resolve_role("arn:aws:iam::111111111111:role/explicit").endswith("/explicit")

    def broken(_session: Any) -> str:
        raise ClientError(error("AccessDenied"), "GetRole")

    monkeypatch.setattr(session_helper, "get_execution_role", broken)
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
    assert h.course_tags(session=aws)[1] == {"key": "owner", "value": h.owner_id(session=aws)}
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
        {"key": "course", "value": "sagemaker-titanic"},
        {"key": "owner", "value": ME},
        {"key": "notebook", "value": "02-training"},
    ]
    from sagemaker.core.shapes import Tag

    assert [Tag.model_validate(t).key for t in tags] == ["course", "owner", "notebook"]
    assert [t["key"] for t in h.course_tags()] == ["course", "owner"]


def test_studio_learners_are_told_apart_by_user_profile(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    meta = tmp_path / "resource-metadata.json"
    monkeypatch.setattr(identity, "RESOURCE_METADATA", meta)
    # Two learners' Studio apps, both called "default", in one domain, with one role.
    for profile in ("jane-doe", "Ann_Lee"):
        meta.write_text(
            json.dumps(
                {"DomainId": "d-abc123", "ResourceName": "default", "UserProfileName": profile}
            )
        )
        assert h.learner_id(session=aws) == profile.lower().replace("_", "-")
        assert h.owner_id(session=aws) == f"{ME}/studio-user/{profile}"
        assert identity.this_notebook_name() is None  # the app's name is not a notebook instance

    # A space without the profile in its metadata: its owner, from DescribeSpace.
    meta.write_text(json.dumps({"DomainId": "d-abc123", "SpaceName": "jane-space"}))
    owner = {"OwnershipSettings": {"OwnerUserProfileName": "jane-doe"}, "SpaceName": "jane-space"}
    asked = answer(aws, "sagemaker", "DescribeSpace", lambda _: owner)
    assert h.learner_id(session=aws) == "jane-doe"
    assert asked[-1] == {"DomainId": "d-abc123", "SpaceName": "jane-space"}


def test_default_is_refused_and_the_learner_can_say_who_they_are(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    meta = tmp_path / "resource-metadata.json"
    monkeypatch.setattr(identity, "RESOURCE_METADATA", meta)
    # A shared space that names no owner, and a role session called "SageMaker": no one person.
    meta.write_text(json.dumps({"DomainId": "d-abc123", "SpaceName": "default"}))
    answer(aws, "sagemaker", "DescribeSpace", lambda _: {"SpaceName": "default"})
    studio = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/StudioRole/SageMaker"
    caller = {"Arn": studio, "UserId": "AROA:x", "Account": DEFAULT_ACCOUNT_ID}
    answer(aws, "sts", "GetCallerIdentity", lambda _: caller)
    with pytest.raises(h.HelperError, match="not a name for one person: set COURSE_LEARNER_ID"):
        h.learner_id(session=aws)
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "default")
    with pytest.raises(h.HelperError, match="'default' is not a name for one person"):
        h.course_prefix(session=aws)

    monkeypatch.setenv("COURSE_LEARNER_ID", "Doe Jane")  # the same request, with a name given
    assert h.course_prefix(session=aws) == "titanic-course/doe-jane"
    assert h.owner_id(session=aws) == f"{studio}/learner/doe-jane"
