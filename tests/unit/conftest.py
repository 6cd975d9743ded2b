"""The one fixture every helpers test module shares: a fresh moto account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from test_aws_helpers import moto_account


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[boto3.Session]:
    """A moto account and a session in us-east-1, with no ambient course settings."""
    with moto_account(monkeypatch, tmp_path) as account:
        yield account
