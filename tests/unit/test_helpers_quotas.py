"""helpers/quotas.py: preflight's checks and quota rows, answered by stubbed Service Quotas."""

from __future__ import annotations

import boto3
import pytest
from test_aws_helpers import (
    ME,
    REGION,
    answer,
    error,
    make_bucket,
)

from helpers import AWS_helpers as h
from helpers.quotas import INSTANCE_COUNT_QUOTA, QUOTA_PERMISSION

QUOTAS = [
    {"QuotaName": "ml.m5.large for training job usage", "QuotaCode": "L-M5L", "Value": 20.0},
    {"QuotaName": "ml.g4dn.xlarge for training job usage", "QuotaCode": "L-G4", "Value": 0.0},
    {"QuotaName": "Number of instances across all training jobs", "QuotaCode": "L-N", "Value": 8.0},
]


def serve_quotas(session: boto3.Session, quotas: list[dict] = QUOTAS) -> list[dict]:
    """Answer ListServiceQuotas in pages of two, as a paginating client must handle."""

    def reply(params: dict) -> dict:
        start = int(params.get("NextToken", 0))
        page = {"Quotas": quotas[start : start + 2]}
        if start + 2 < len(quotas):
            page["NextToken"] = str(start + 2)
        return page

    return answer(session, "service-quotas", "ListServiceQuotas", reply)


def test_preflight_finds_a_zero_quota(aws: boto3.Session, capsys: pytest.CaptureFixture) -> None:
    make_bucket(aws)
    seen = serve_quotas(aws)
    report = h.preflight(["ml.m5.large", "ml.g4dn.xlarge"], bucket="me-titanic", session=aws)
    assert len(seen) == 2 and seen[0]["ServiceCode"] == "sagemaker"
    rows = report.set_index("check")
    assert rows.loc["region", "value"] == REGION and rows.loc["credentials", "value"] == ME
    assert rows.loc["bucket me-titanic", "ok"]
    assert rows.loc["quota: ml.m5.large for training job usage", "value"] == 20
    zero = rows.loc["quota: ml.g4dn.xlarge for training job usage"]
    assert not zero.ok and zero.value == 0
    assert "Amazon SageMaker → 'ml.g4dn.xlarge for training job usage' → Request increase" in (
        zero.fix
    )
    assert "servicequotas/home/services/sagemaker/quotas/L-G4" in zero.fix
    assert rows.loc["quota: Number of instances across all training jobs", "ok"]
    assert "Request increase" in capsys.readouterr().out
    assert list(report.check[report.blocking]) == ["quota: ml.g4dn.xlarge for training job usage"]
    assert QUOTA_PERMISSION not in rows.index  # read: no permission row


def test_no_permission_to_read_quotas_is_not_a_zero_quota(aws: boto3.Session) -> None:
    make_bucket(aws)
    allowed = {"yes": True}
    readable = {"Quotas": QUOTAS[:1] + QUOTAS[2:]}  # all above 0
    denied = error("AccessDeniedException", "not authorized to perform ListServiceQuotas")
    answer(
        aws, "service-quotas", "ListServiceQuotas", lambda _: readable if allowed["yes"] else denied
    )
    control = h.preflight(["ml.m5.large"], bucket="me-titanic", session=aws, show=False)
    assert control.ok.all() and not control.blocking.any()  # positive control: readable, enough

    allowed["yes"] = False
    report = h.preflight(["ml.m5.large"], bucket="me-titanic", session=aws, show=False)
    rows = report.set_index("check")
    row = rows.loc[QUOTA_PERMISSION]
    assert not row.ok and not row.blocking and "quotas unknown, not 0" in row.fix
    assert not [c for c in rows.index if c.startswith("quota")]  # no quota row claims a value
    assert report[report.blocking].empty  # so a notebook may go on, with a warning


def test_preflight_bad_inputs(aws: boto3.Session, capsys: pytest.CaptureFixture) -> None:
    serve_quotas(aws)
    report = h.preflight("ml.m5.large", bucket="no-such-bucket", session=aws, show=False)
    assert not report.set_index("check").loc["bucket no-such-bucket", "ok"]
    assert capsys.readouterr().out == ""
    typo = h.preflight(["ml.m5.larg"], session=aws, show=False).set_index("check")
    assert (
        "check the instance type's spelling"
        in typo.loc["quota: ml.m5.larg for training job usage", "fix"]
    )
    with pytest.raises(h.HelperError, match="look like 'ml.m5.large'"):
        h.preflight(["m5.large"], session=aws)


def test_preflight_uses_default_quotas_when_not_applied(aws: boto3.Session) -> None:
    serve_quotas(aws, QUOTAS[:1])
    listed = {"QuotaName": INSTANCE_COUNT_QUOTA, "QuotaCode": "L-N", "Value": 4.0}
    answer(aws, "service-quotas", "ListAWSDefaultServiceQuotas", lambda _: {"Quotas": [listed]})
    asked = answer(aws, "service-quotas", "GetServiceQuota", lambda _: {"Quota": listed})
    rows = h.preflight(["ml.m5.large"], session=aws, show=False).set_index("check")
    assert rows.loc[f"quota: {INSTANCE_COUNT_QUOTA}", "value"] == 4
    assert asked == [{"ServiceCode": "sagemaker", "QuotaCode": "L-N"}]


def test_preflight_default_quota_without_applied_value(aws: boto3.Session) -> None:
    serve_quotas(aws, QUOTAS[:1])
    listed = {"QuotaName": INSTANCE_COUNT_QUOTA, "QuotaCode": "L-N", "Value": 4.0}
    answer(aws, "service-quotas", "ListAWSDefaultServiceQuotas", lambda _: {"Quotas": [listed]})
    answer(aws, "service-quotas", "GetServiceQuota", lambda _: error("NoSuchResourceException"))
    rows = h.preflight(["ml.m5.large"], session=aws, show=False).set_index("check")
    assert rows.loc[f"quota: {INSTANCE_COUNT_QUOTA}", "value"] == 4


def test_preflight_reports_failures_as_rows(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer(aws, "service-quotas", "ListServiceQuotas", lambda _: error("NoSuchResourceException"))
    rows = h.preflight(session=aws, show=False).set_index("check")
    assert rows.loc[QUOTA_PERMISSION, "blocking"]  # not a permission problem: quotas unknown
    assert "NoSuchResourceException" in rows.loc[QUOTA_PERMISSION, "fix"]

    answer(aws, "sts", "GetCallerIdentity", lambda _: error("ExpiredToken", "token expired"))
    rows = h.preflight(session=aws, show=False).set_index("check")
    assert not rows.loc["credentials", "ok"] and "ExpiredToken" in rows.loc["credentials", "fix"]

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    rows = h.preflight(show=False).set_index("check")
    assert not rows.loc["region", "ok"]
