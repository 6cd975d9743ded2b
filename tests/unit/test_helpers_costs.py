"""helpers/costs.py: the dated price table and what a training job cost."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from test_aws_helpers import (
    make_job,
    patch_describe,
)

from helpers import AWS_helpers as h


def test_price_table_is_dated_and_sourced() -> None:
    table = h.load_prices()
    assert table["retrieved"] == "2026-11-26" and table["region"] == "us-east-1"
    assert "not verified" in table["source"]
    for instance_type in ("ml.m5.large", "ml.m5.xlarge", "ml.g4dn.xlarge"):
        assert h.hourly_price(instance_type) > 0
    assert h.hourly_price("ml.t3.medium", "notebook") == 0.05
    with pytest.warns(UserWarning, match="no training price for ml.x9.huge"):
        assert h.hourly_price("ml.x9.huge") is None
    with pytest.raises(h.HelperError, match="'training' or 'notebook'"):
        h.hourly_price("ml.m5.large", "inference")


def test_price_table_errors(tmp_path: Any) -> None:
    with pytest.raises(h.HelperError, match="restore helpers/prices.json"):
        h.load_prices(tmp_path / "missing.json")
    partial = tmp_path / "partial.json"
    partial.write_text('{"retrieved": "2026-11-26"}')
    with pytest.raises(h.HelperError, match="has no 'region'"):
        h.load_prices(partial)


def test_estimate_job_cost(aws: boto3.Session) -> None:
    make_job(aws, "two-hosts", count=2)
    make_job(aws, "running", status="InProgress")
    make_job(aws, "exotic", instance_type="ml.trn1.2xlarge")
    make_job(aws, "mixed")
    groups = [
        {"InstanceType": "ml.m5.large", "InstanceCount": 1, "InstanceGroupName": "a"},
        {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "InstanceGroupName": "b"},
    ]
    patch_describe(
        aws,
        **{
            "two-hosts": {"BillableTimeInSeconds": 130},
            "exotic": {"BillableTimeInSeconds": 100},
            "mixed": {"BillableTimeInSeconds": 3600, "ResourceConfig": {"InstanceGroups": groups}},
        },
    )
    assert h.estimate_job_cost("two-hosts", session=aws) == pytest.approx(130 * 2 * 0.115 / 3600)
    assert h.estimate_job_cost("mixed", session=aws) == pytest.approx(0.115 + 0.736)
    with pytest.warns(UserWarning, match="InProgress and has no billable time"):
        assert h.estimate_job_cost("running", session=aws) is None
    with pytest.warns(UserWarning, match="ml.trn1.2xlarge"):
        assert h.estimate_job_cost("exotic", session=aws) is None
    with pytest.raises(h.HelperError, match="check the name with job_summary"):
        h.estimate_job_cost("no-such-job", session=aws)
    with pytest.raises(h.HelperError, match="job_name must be"):
        h.estimate_job_cost("", session=aws)
