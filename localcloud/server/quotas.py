"""Service Quotas answers for SageMaker training, configurable so a zero quota can be shown."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from localcloud.config import ACCOUNT_ID
from localcloud.jobs import instances
from localcloud.server.errors import AwsError, limit_exceeded
from localcloud.server.paging import page

SERVICE_CODE = "sagemaker"
SERVICE_NAME = "Amazon SageMaker"
TOTAL_INSTANCES = "Number of instances across all training jobs"
CPU_DEFAULT, GPU_DEFAULT, TOTAL_DEFAULT = 20.0, 2.0, 8.0


def training_quota_name(instance_type: str) -> str:
    """The QuotaName of an instance type's training quota."""
    return f"{instance_type} for training job usage"


def _code(name: str) -> str:
    return "L-" + hashlib.sha1(name.encode()).hexdigest()[:8].upper()


def values() -> dict[str, float]:
    """Every SageMaker training quota: defaults, then $LOCALCLOUD_QUOTAS overrides."""
    out: dict[str, float] = {}
    for kind in instances.TRAINING_INSTANCE_TYPES:
        spec = instances.spec(kind)
        out[training_quota_name(kind)] = GPU_DEFAULT if spec.is_gpu else CPU_DEFAULT
    out[TOTAL_INSTANCES] = TOTAL_DEFAULT
    raw = os.environ.get("LOCALCLOUD_QUOTAS")
    if raw:
        for name, value in json.loads(raw).items():
            out[name] = float(value)
    return out


def _quota(name: str, value: float, region: str) -> dict[str, Any]:
    code = _code(name)
    return {
        "ServiceCode": SERVICE_CODE,
        "ServiceName": SERVICE_NAME,
        "QuotaArn": f"arn:aws:servicequotas:{region}:{ACCOUNT_ID}:{SERVICE_CODE}/{code}",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
        "QuotaAppliedAtLevel": "ACCOUNT",
    }


def handles(action: str, body: dict[str, Any]) -> bool:
    """True for the Service Quotas calls about SageMaker that this module answers."""
    return (
        action in ("ListServiceQuotas", "GetServiceQuota", "ListAWSDefaultServiceQuotas")
        and body.get("ServiceCode") == SERVICE_CODE
    )


def handle(action: str, body: dict[str, Any], region: str) -> dict[str, Any]:
    """Answer ListServiceQuotas / GetServiceQuota / ListAWSDefaultServiceQuotas."""
    current = values()
    if action == "GetServiceQuota":
        by_code = {_code(name): name for name in current}
        name = by_code.get(body.get("QuotaCode", ""))
        if name is None:
            raise AwsError(
                "NoSuchResourceException",
                "The request failed because the quota "
                f"{body.get('QuotaCode')} does not exist for {SERVICE_CODE}.",
            )
        return {"Quota": _quota(name, current[name], region)}
    quotas = [_quota(name, value, region) for name, value in current.items()]
    return page(quotas, body, "Quotas", 100)


def check(instance_type: str, count: int, in_use_by_type: dict[str, int]) -> None:
    """Raise ResourceLimitExceeded (contract §7 wording) if this job would exceed a quota."""
    current = values()
    for name, used in (
        (training_quota_name(instance_type), in_use_by_type.get(instance_type, 0)),
        (TOTAL_INSTANCES, sum(in_use_by_type.values())),
    ):
        limit = current.get(name)
        if limit is not None and used + count > limit:
            raise limit_exceeded(
                f"The account-level service limit '{name}' is {int(limit)} Instances, with "
                f"current utilization of {used} Instances and a request delta of {count} "
                "Instances. Please use AWS Service Quotas to request an increase for this quota. "
                "If AWS Service Quotas is not available, contact AWS support to request an "
                "increase for this quota."
            )
