"""The quota policy: SageMaker training quotas (defaults, $LOCALCLOUD_QUOTAS) and their check."""

from __future__ import annotations

import json
import os

from localcloud.errors import limit_exceeded
from localcloud.hosts import instances

TOTAL_INSTANCES = "Number of instances across all training jobs"
CPU_DEFAULT, GPU_DEFAULT, TOTAL_DEFAULT = 20.0, 2.0, 8.0


def training_quota_name(instance_type: str) -> str:
    """The QuotaName of an instance type's training quota."""
    return f"{instance_type} for training job usage"


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
