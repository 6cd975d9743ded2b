"""Service Quotas on the wire: SageMaker's training quotas as ListServiceQuotas/GetServiceQuota."""

from __future__ import annotations

import hashlib
from typing import Any

from localcloud.config import ACCOUNT_ID
from localcloud.errors import AwsError
from localcloud.jobs.quotas import values
from localcloud.server.paging import page

SERVICE_CODE = "sagemaker"
SERVICE_NAME = "Amazon SageMaker"
ACTIONS = frozenset({"ListServiceQuotas", "GetServiceQuota", "ListAWSDefaultServiceQuotas"})


def _code(name: str) -> str:
    return "L-" + hashlib.sha1(name.encode()).hexdigest()[:8].upper()


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
    return action in ACTIONS and body.get("ServiceCode") == SERVICE_CODE


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
