"""CreateTrainingJob validation with the service's own texts (contract §7, §5.3)."""

from __future__ import annotations

import re
from typing import Any

from localcloud.jobs import instances
from localcloud.jobs.s3io import S3Access, parse_s3_uri
from localcloud.server.errors import AwsError, validation

NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_NAME_RE = re.compile(NAME_PATTERN + r"$")

# (request path, wire path in messages); checked in the service's order.
_REQUIRED_TOP = (
    ("TrainingJobName", "trainingJobName"),
    ("AlgorithmSpecification", "algorithmSpecification"),
    ("RoleArn", "roleArn"),
    ("OutputDataConfig", "outputDataConfig"),
    ("ResourceConfig", "resourceConfig"),
    ("StoppingCondition", "stoppingCondition"),
)


def _combine(problems: list[str]) -> AwsError:
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return validation(f"{count} validation {noun} detected: " + "; ".join(problems))


def _null(path: str) -> str:
    return f"Value null at '{path}' failed to satisfy constraint: Member must not be null"


def check_shape(request: dict[str, Any]) -> None:
    """Raise ValidationException for missing members, a bad name or an unknown instance type."""
    problems = [_null(wire) for key, wire in _REQUIRED_TOP if request.get(key) is None]
    name = request.get("TrainingJobName")
    if isinstance(name, str) and not _NAME_RE.match(name):
        problems.append(
            f"Value '{name}' at 'trainingJobName' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {NAME_PATTERN}"
        )
    algo = request.get("AlgorithmSpecification")
    if isinstance(algo, dict) and algo.get("TrainingInputMode") is None:
        problems.append(_null("algorithmSpecification.trainingInputMode"))
    output = request.get("OutputDataConfig")
    if isinstance(output, dict) and output.get("S3OutputPath") is None:
        problems.append(_null("outputDataConfig.s3OutputPath"))
    resources = request.get("ResourceConfig")
    if isinstance(resources, dict):
        problems.extend(_resource_problems(resources))
    if problems:
        raise _combine(problems)


def _resource_problems(resources: dict[str, Any]) -> list[str]:
    problems = []
    if resources.get("InstanceGroups"):
        return problems  # heterogeneous clusters: types checked per group by the runner
    kind = resources.get("InstanceType")
    if kind is None:
        problems.append(_null("resourceConfig.instanceType"))
    elif not instances.is_valid(kind):
        allowed = ", ".join(instances.TRAINING_INSTANCE_TYPES)
        problems.append(
            f"Value '{kind}' at 'resourceConfig.instanceType' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{allowed}]"
        )
    count = resources.get("InstanceCount")
    if count is None:
        problems.append(_null("resourceConfig.instanceCount"))
    elif not isinstance(count, int) or count < 1:
        problems.append(
            f"Value '{count}' at 'resourceConfig.instanceCount' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1"
        )
    if resources.get("VolumeSizeInGB") is None:
        problems.append(_null("resourceConfig.volumeSizeInGB"))
    return problems


def check_supported(request: dict[str, Any]) -> None:
    """Raise ValidationException for what the service accepts but localcloud cannot run."""
    if (request.get("ResourceConfig") or {}).get("InstanceGroups"):
        raise validation(
            "ResourceConfig.InstanceGroups (heterogeneous clusters) is not supported by "
            "localcloud: use InstanceType and InstanceCount."
        )


def check_inputs(request: dict[str, Any], s3: S3Access, region: str) -> None:
    """Raise the service's ValidationException for an S3 input prefix that holds nothing."""
    for channel in request.get("InputDataConfig") or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            continue
        uri = source.get("S3Uri", "")
        try:
            bucket, prefix = parse_s3_uri(uri)
        except ValueError:
            raise validation(
                f"1 validation error detected: Value '{uri}' at "
                "'inputDataConfig.dataSource.s3DataSource.s3Uri' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$"
            ) from None
        if not s3.list_keys(bucket, prefix):
            raise validation(
                f'No S3 objects found under S3 URL "{uri}" given in input data source. Please '
                f"ensure that the bucket exists in the selected region ({region}), that objects "
                f'exist under that S3 prefix, and that the role "{request["RoleArn"]}" has '
                f'"s3:ListBucket" permissions on bucket "{bucket}".'
            )


def duplicate_name(arn: str) -> AwsError:
    """ResourceInUse for a name already used in this account and region."""
    return AwsError(
        "ResourceInUse",
        "Training job names must be unique within an AWS account and region, and a training "
        f"job with this name already exists ({arn})",
    )
