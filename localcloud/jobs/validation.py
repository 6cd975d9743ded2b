"""Training-job requests validated as SageMaker does: its API model, its limits, its texts (§7)."""

from __future__ import annotations

import functools
from typing import Any

from botocore.model import Shape

from localcloud import shapes
from localcloud.errors import AwsError, in_use, validation
from localcloud.hosts.data import S3Access, parse_s3_uri

# The training-job actions localcloud answers (tag actions only for training-job ARNs).
OPERATIONS = frozenset(
    {
        "CreateTrainingJob",
        "DescribeTrainingJob",
        "ListTrainingJobs",
        "StopTrainingJob",
        "DeleteTrainingJob",
        "AddTags",
        "ListTags",
        "DeleteTags",
    }
)
NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
MAX_RUNTIME_LIMIT_S = 28 * 24 * 3600  # the developer guide's 28 days
DEFAULT_MAX_RUNTIME_S = 24 * 3600  # what the service applies when MaxRuntimeInSeconds is unset

# What the service enforces beyond botocore's published model.
_BEYOND_MODEL: dict[str, dict[str, Any]] = {
    # The model lets these go for serverless jobs, which localcloud does not run; the service
    # requires them of every other job, as botocore 1.34's model still said.
    "CreateTrainingJobRequest": {
        "required": [
            "TrainingJobName",
            "AlgorithmSpecification",
            "RoleArn",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
        ]
    },
    "TrainingInstanceCount": {"min": 1},
    "MaxRuntimeInSeconds": {"min": 1, "max": MAX_RUNTIME_LIMIT_S},
    # The patterns as the service prints them: newer models dropped their ^ and $ anchors (a
    # full match either way). From botocore 1.34's model; sagemaker-python-sdk#384 shows the first.
    "TrainingJobName": {"pattern": NAME_PATTERN},
    "S3Uri": {"pattern": r"^(https|s3)://([^/]+)/?(.*)$"},
    "RoleArn": {"pattern": r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$"},
    "TagKey": {"pattern": r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"},
    "TagValue": {"pattern": r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"},
    "ExperimentEntityName": {"pattern": r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}"},
    "FileSystemId": {"pattern": r"^(fs-[0-9a-f]{8,})$"},
    "ArnOrName": {
        "pattern": r"(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*\/)?"
        r"([a-zA-Z0-9]([a-zA-Z0-9-]){0,62})(?<!-)$"
    },
}


@functools.cache
def _input_shape(action: str) -> Shape:
    return shapes.service_model("sagemaker").operation_model(action).input_shape


def _overlay(body: Any) -> dict[str, dict[str, Any]]:
    """The limits for this request: a single-group cluster needs its type and count."""
    resources = body.get("ResourceConfig") if isinstance(body, dict) else None
    grouped = isinstance(resources, dict) and bool(resources.get("InstanceGroups"))
    needed = ["VolumeSizeInGB"] if grouped else ["InstanceType", "InstanceCount", "VolumeSizeInGB"]
    return {**_BEYOND_MODEL, "ResourceConfig": {"required": needed}}


def check_request(action: str, body: Any) -> dict[str, Any]:
    """The request as the service reads it, or its refusal: nothing malformed is ever stored."""
    try:
        clean, problems = shapes.check(_input_shape(action), body, _overlay(body))
    except shapes.SerializationError as exc:
        raise AwsError("SerializationException", str(exc)) from None
    if problems:
        raise validation(shapes.combine(problems))
    return clean


def check_shape(request: dict[str, Any]) -> None:
    """Raise the service's error for a CreateTrainingJob request it would not accept."""
    check_request("CreateTrainingJob", request)


def max_runtime_s(request: dict[str, Any]) -> int:
    """MaxRuntimeInSeconds of a validated request, or the service's default of one day."""
    return (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds") or (
        DEFAULT_MAX_RUNTIME_S
    )


def check_supported(request: dict[str, Any]) -> None:
    """Raise ValidationException for what the service accepts but localcloud cannot run."""
    if (request.get("ResourceConfig") or {}).get("InstanceGroups"):
        raise validation(
            "ResourceConfig.InstanceGroups (heterogeneous clusters) is not supported by "
            "localcloud: use InstanceType and InstanceCount."
        )
    for channel in request.get("InputDataConfig") or []:
        # The pattern allows these, but a channel is a folder under /opt/ml/input/data/.
        if channel.get("ChannelName") in (".", ".."):
            raise validation(
                f"ChannelName '{channel['ChannelName']}' is not supported by localcloud: each "
                "channel is a folder of /opt/ml/input/data, so name it e.g. 'train'."
            )


def check_inputs(request: dict[str, Any], s3: S3Access, region: str) -> None:
    """Raise the service's ValidationException for an S3 input prefix that holds nothing."""
    for index, channel in enumerate(request.get("InputDataConfig") or [], 1):
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            continue
        uri = source.get("S3Uri", "")
        try:
            bucket, prefix = parse_s3_uri(uri)
        except ValueError:
            raise validation(
                f"1 validation error detected: Value '{uri}' at 'inputDataConfig.{index}.member"
                ".dataSource.s3DataSource.s3Uri' failed to satisfy constraint: Member must "
                "satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$"
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
    return in_use(
        "Training job names must be unique within an AWS account and region, and a training "
        f"job with this name already exists ({arn})",
    )
