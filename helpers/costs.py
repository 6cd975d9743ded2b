"""What things cost, from the dated price table helpers/prices.json, and what a job cost."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import boto3

from helpers.session import HelperError, client, describe_job, read_table

PRICES_FILE = Path(__file__).with_name("prices.json")
GIB = 1024**3


def load_prices(path: str | Path | None = None) -> dict[str, Any]:
    """Read the dated price table, so every cost figure says where it came from.

    Example:
        >>> load_prices()["training"]["ml.m5.large"]
        0.115
    """
    path = Path(path) if path else PRICES_FILE
    parts = ("retrieved", "region", "training", "s3_standard_gb_month")
    return read_table(path, parts, "price table ", "helpers/prices.json")


def hourly_price(instance_type: str, use: str = "training") -> float | None:
    """On-demand USD per hour for an instance type, or None (with a warning) when unknown.

    Example:
        >>> hourly_price("ml.m5.large")
        0.115
    """
    table = load_prices()
    if use not in ("training", "notebook"):
        raise HelperError(f"use must be 'training' or 'notebook', got {use!r}")
    price = table.get(use, {}).get(instance_type)
    if price is None:
        warnings.warn(
            f"no {use} price for {instance_type} in helpers/prices.json: cost shown as None;"
            " add it from the SageMaker pricing page",
            stacklevel=2,
        )
        return None
    return float(price)


def job_instances(desc: dict[str, Any]) -> list[tuple[str, int]]:
    """(type, count) pairs of a described training job, for plain and heterogeneous clusters."""
    config = desc.get("ResourceConfig", {})
    if config.get("InstanceType"):
        return [(config["InstanceType"], int(config.get("InstanceCount", 1)))]
    return [(g["InstanceType"], int(g["InstanceCount"])) for g in config.get("InstanceGroups", [])]


def job_cost(desc: dict[str, Any]) -> float | None:
    """USD of a described job: billable seconds (per instance) × count × hourly price."""
    billable = desc.get("BillableTimeInSeconds")
    if billable is None:
        return None
    total = 0.0
    for instance_type, count in job_instances(desc):
        price = hourly_price(instance_type)
        if price is None:
            return None
        total += billable * count * price / 3600
    return total


def estimate_job_cost(
    job_name: str, *, session: boto3.Session | None = None, region: str | None = None
) -> float | None:
    """Estimate what a training job cost from its billable seconds and the dated price table.

    Returns None while the job has no billable time yet, or when its instance type has no price.

    Example:
        >>> estimate_job_cost("titanic-xgb-2026-11-26-10-00-00-000")  # 130 s on ml.m5.large
        0.004152777777777778
    """
    sm = client("sagemaker", session=session, region=region)
    desc = describe_job(sm, job_name)
    if desc.get("BillableTimeInSeconds") is None:
        warnings.warn(
            f"job {job_name} is {desc.get('TrainingJobStatus')} and has no billable time yet:"
            " ask again when it has finished",
            stacklevel=2,
        )
    return job_cost(desc)
