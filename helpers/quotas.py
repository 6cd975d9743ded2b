"""Before launching jobs: credentials, region, bucket and training quotas checked in one table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from helpers.identity import caller_arn
from helpers.session import HelperError, resolve_session, show_table
from helpers.storage import check_bucket_region

INSTANCE_COUNT_QUOTA = "Number of instances across all training jobs"
QUOTA_PERMISSION = "permission: servicequotas:ListServiceQuotas"
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


def applied_quotas(sq: Any) -> dict[str, dict[str, Any]]:
    """Applied SageMaker quotas by QuotaName, every page (quota codes differ by region)."""
    quotas: dict[str, dict[str, Any]] = {}
    for page in sq.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
        quotas.update({q["QuotaName"]: q for q in page.get("Quotas", [])})
    return quotas


def _default_quota(sq: Any, name: str) -> dict[str, Any] | None:
    """Find a quota missing from the applied list among the defaults, then ask for its value."""
    try:
        pages = sq.get_paginator("list_aws_default_service_quotas").paginate(
            ServiceCode="sagemaker"
        )
        found = next(
            (q for p in pages for q in p.get("Quotas", []) if q["QuotaName"] == name), None
        )
        if found is None:
            return None
        try:
            return sq.get_service_quota(ServiceCode="sagemaker", QuotaCode=found["QuotaCode"])[
                "Quota"
            ]
        except ClientError:
            return found
    except (ClientError, BotoCoreError):
        return None


def _quota_fix(name: str, quota: dict[str, Any], region: str) -> str:
    """The exact place to request an increase of one quota."""
    code = quota.get("QuotaCode", "")
    url = f"https://{region}.console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas"
    return (
        f"request an increase: Service Quotas console → AWS services → Amazon SageMaker →"
        f" '{name}' → Request increase at account level ({url}/{code}); or"
        f" aws service-quotas request-service-quota-increase --service-code sagemaker"
        f" --quota-code {code} --desired-value 1 --region {region}"
    )


def preflight(
    instance_types: Sequence[str] = ("ml.m5.large",),
    *,
    bucket: str | None = None,
    show: bool = True,
    session: boto3.Session | None = None,
    region: str | None = None,
) -> pd.DataFrame:
    """Check credentials, region, bucket and training quotas before launching jobs, in one table.

    A quota of 0 is what makes CreateTrainingJob fail with ResourceLimitExceeded; its row says
    exactly where to request an increase. Column `blocking` is True for a failed check that will
    stop a job; a role that may not read quotas gets a non-blocking row (the quotas are then
    unknown, not 0), so a notebook can warn and go on: `report[report.blocking].empty`.

    Example:
        >>> preflight(["ml.m5.large", "ml.g4dn.xlarge"], bucket="teamname-yourname-titanic")
    """
    if isinstance(instance_types, str):
        instance_types = [instance_types]
    bad = [t for t in instance_types if not isinstance(t, str) or not t.startswith("ml.")]
    if bad:
        raise HelperError(f"instance types look like 'ml.m5.large', got {bad!r}")
    rows: list[dict[str, Any]] = []

    def add(check: str, value: Any, ok: bool, fix: str = "", blocking: bool = True) -> None:
        rows.append(
            {
                "check": check,
                "value": value,
                "ok": ok,
                "blocking": not ok and blocking,
                "fix": "" if ok else fix,
            }
        )

    try:
        boto, region = resolve_session(session=session, region=region)
    except HelperError as err:
        add("region", None, False, str(err))
        return show_table(pd.DataFrame(rows), show)
    add("region", region, True)
    try:
        add("credentials", caller_arn(session=boto, region=region), True)
    except HelperError as err:
        add("credentials", None, False, str(err))
        return show_table(pd.DataFrame(rows), show)
    if bucket is not None:
        try:
            add(f"bucket {bucket}", check_bucket_region(bucket, session=boto, region=region), True)
        except HelperError as err:
            add(f"bucket {bucket}", None, False, str(err))
    sq = boto.client("service-quotas", region_name=region)
    try:
        quotas = applied_quotas(sq)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in _DENIED:
            add(
                QUOTA_PERMISSION,
                "not allowed",
                False,
                "quotas unknown, not 0: your role may not read them. Look in the Service Quotas"
                " console, or ask your administrator; jobs may still start",
                blocking=False,
            )
        else:
            add(QUOTA_PERMISSION, None, False, f"listing SageMaker quotas failed: {code}: {err}")
        return show_table(pd.DataFrame(rows), show)
    except BotoCoreError as err:
        add(QUOTA_PERMISSION, None, False, f"listing SageMaker quotas failed: {err}")
        return show_table(pd.DataFrame(rows), show)
    names = [f"{t} for training job usage" for t in instance_types] + [INSTANCE_COUNT_QUOTA]
    for name in names:
        quota = quotas.get(name) or _default_quota(sq, name)
        if quota is None:
            add(
                f"quota: {name}",
                None,
                False,
                f"no such quota in {region}: check the instance"
                " type's spelling, or pick a type or region that offers it for training",
            )
            continue
        value = quota.get("Value")
        add(f"quota: {name}", value, bool(value and value > 0), _quota_fix(name, quota, region))
    return show_table(pd.DataFrame(rows), show)
