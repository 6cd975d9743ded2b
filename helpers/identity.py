"""Who you are to the course: your owner id and S3 prefix, your tags, notebook and role."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from helpers.session import HelperError, aws_errors, client, resolve_session

COURSE_TAG = "sagemaker-titanic"
COURSE_PREFIX = "titanic-course"
RESOURCE_METADATA = Path("/opt/ml/metadata/resource-metadata.json")
LEARNER_ENV = "COURSE_LEARNER_ID"
_SHARED_NAMES = {"default", "sagemaker", "sagemaker-user"}

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
_NOT_LEARNER_CHARS = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class NotebookInfo:
    """What the lesson needs to know about a notebook instance."""

    name: str
    status: str
    instance_type: str
    region: str


def _resource_metadata() -> dict[str, Any]:
    """SageMaker's metadata of the notebook instance or Studio app we run on ({} elsewhere)."""
    if not RESOURCE_METADATA.is_file():
        return {}
    try:
        meta = json.loads(RESOURCE_METADATA.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def this_notebook_name() -> str | None:
    """Name of the notebook instance we run on, from SageMaker's metadata or localcloud's env."""
    meta = _resource_metadata()
    # In Studio the file names the app ("default" for many people), not a notebook instance.
    if meta.get("ResourceName") and not meta.get("DomainId"):
        return str(meta["ResourceName"])
    return os.environ.get("NOTEBOOK_INSTANCE_NAME") or None


def studio_user(*, session: boto3.Session | None = None, region: str | None = None) -> str | None:
    """The Studio user profile we run as: from the app's metadata, else the space's owner."""
    meta = _resource_metadata()
    if not meta.get("DomainId"):
        return None
    if meta.get("UserProfileName"):
        return str(meta["UserProfileName"])
    if not meta.get("SpaceName"):
        return None
    sm = client("sagemaker", session=session, region=region)
    try:
        space = sm.describe_space(DomainId=meta["DomainId"], SpaceName=meta["SpaceName"])
    except (ClientError, BotoCoreError):
        return None  # a shared space, or no sagemaker:DescribeSpace: the learner must say
    return space.get("OwnershipSettings", {}).get("OwnerUserProfileName") or None


def caller_arn(*, session: boto3.Session | None = None, region: str | None = None) -> str:
    """Return the ARN of whoever the credentials belong to."""
    sts = client("sts", session=session, region=region)
    with aws_errors("reading your identity (sts:GetCallerIdentity)"):
        return sts.get_caller_identity()["Arn"]


def owner_id(*, session: boto3.Session | None = None, region: str | None = None) -> str:
    """Who owns what you create: your identity ARN, plus the notebook instance you work on.

    Learners who share one execution role have the same ARN; the notebook instance name, the
    Studio user profile, or your COURSE_LEARNER_ID tells them apart.

    Example:
        >>> owner_id()  # on notebook instance team-doe
        'arn:aws:sts::123456789012:assumed-role/ml-sagemaker-use/SageMaker/notebook-instance/team-doe'
    """
    arn = caller_arn(session=session, region=region)
    if os.environ.get(LEARNER_ENV):
        return f"{arn}/learner/{learner_id(session=session, region=region)}"
    user = studio_user(session=session, region=region)
    if user:
        return f"{arn}/studio-user/{user}"
    notebook = this_notebook_name()
    return f"{arn}/notebook-instance/{notebook}" if notebook else arn


def learner_id(*, session: boto3.Session | None = None, region: str | None = None) -> str:
    """A short name for you, safe in S3 keys and unique per person in a shared account.

    Order: env COURSE_LEARNER_ID (set it yourself when the guess is wrong); in Studio your user
    profile; your notebook instance; else your user or session name. "default" is refused:
    in Studio many people's apps and spaces are called that.

    Example:
        >>> learner_id()  # on notebook instance Team-Doe_Titanic
        'team-doe-titanic'
    """
    name = (
        os.environ.get(LEARNER_ENV)
        or studio_user(session=session, region=region)
        or this_notebook_name()
        or re.split(r"[/:]", caller_arn(session=session, region=region))[-1]
    )
    learner = _NOT_LEARNER_CHARS.sub("-", name.lower()).strip("-")
    if not learner or learner in _SHARED_NAMES:
        raise HelperError(
            f"{name!r} is not a name for one person: set {LEARNER_ENV} to a name of your own,"
            f" e.g. os.environ['{LEARNER_ENV}'] = 'doe-jane' (before any other helper)"
        )
    return learner


def course_prefix(*, session: boto3.Session | None = None, region: str | None = None) -> str:
    """Your own S3 folder for the course, so a shared bucket keeps learners' files apart.

    Example:
        >>> course_prefix()  # on notebook instance team-doe-titanic
        'titanic-course/team-doe-titanic'
    """
    return f"{COURSE_PREFIX}/{learner_id(session=session, region=region)}"


def course_tags(
    notebook: str | None = None, *, session: boto3.Session | None = None, region: str | None = None
) -> list[dict[str, str]]:
    """Tags to pass as `tags=` to ModelTrainer, so clean-up can tell your jobs from others'.

    They are in SDK v3's form (`key`/`value`); the API and boto3 spell them `Key`/`Value`.

    Example:
        >>> ModelTrainer(..., tags=course_tags("02_managed_xgboost"))
    """
    tags = [
        {"key": "course", "value": COURSE_TAG},
        {"key": "owner", "value": owner_id(session=session, region=region)},
    ]
    if notebook:
        tags.append({"key": "notebook", "value": str(notebook)})
    return tags


def get_notebook_instance_info(
    name: str | None = None, *, session: boto3.Session | None = None, region: str | None = None
) -> NotebookInfo:
    """Show the status and instance type of a notebook instance, so learners see what they pay for.

    Example:
        >>> info = get_notebook_instance_info()  # this instance
        >>> info.instance_type
        'ml.t3.medium'
    """
    name = name or this_notebook_name()
    if not name:
        raise HelperError(
            "no notebook instance name: pass name='MyNotebook' (the name in SageMaker → Notebooks)"
            " or set NOTEBOOK_INSTANCE_NAME"
        )
    boto, region = resolve_session(session=session, region=region)
    sm = boto.client("sagemaker", region_name=region)
    fix = f"check the name in SageMaker → Notebooks, and that it lives in region {region}"
    with aws_errors(
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
        return _role_arn(role, session=session, region=region)
    env_role = os.environ.get("SAGEMAKER_ROLE") or None
    if RESOURCE_METADATA.is_file():
        from sagemaker.core.helper import session_helper  # slow to import, only needed here

        boto, _ = resolve_session(session=session, region=region)
        try:
            sdk_session = session_helper.Session(boto_session=boto)
            return session_helper.get_execution_role(sdk_session)
        except (ValueError, ClientError, BotoCoreError) as err:
            if env_role is None:
                raise HelperError(
                    f"could not find this notebook's execution role ({str(err).splitlines()[0]}):"
                    " pass role=... or set SAGEMAKER_ROLE"
                ) from None
    if env_role:
        return _role_arn(env_role, session=session, region=region)
    raise HelperError(
        "no execution role: off SageMaker set SAGEMAKER_ROLE to the ARN of a role SageMaker may"
        " assume, e.g. export SAGEMAKER_ROLE=arn:aws:iam::123456789012:role/MySageMakerRole"
    )


def _role_arn(role: str, *, session: Any, region: str | None) -> str:
    """A role ARN as given, or the ARN of a role name looked up in IAM."""
    if _ROLE_ARN.match(role):
        return role
    if ":" in role:
        raise HelperError(
            f"{role!r} is not an IAM role ARN: pass one like"
            " 'arn:aws:iam::123456789012:role/MySageMakerRole'"
        )
    iam = client("iam", session=session, region=region)
    fix = "pass the role's full ARN, or the exact role name shown in IAM → Roles"
    with aws_errors(f"looking up role {role!r}", {"NoSuchEntity": fix}):
        return iam.get_role(RoleName=role)["Role"]["Arn"]
