"""localcloud's own tests, many through SDK v2 estimators (the seed lesson's API).

They need SDK v2, which the course venv no longer has: `make test-sdkv2` runs them with
PYTHONPATH=.sdkv2 (requirements-sdkv2.txt).
"""

from __future__ import annotations

from importlib import metadata

import pytest


def pytest_configure(config: pytest.Config) -> None:
    import sagemaker

    version = getattr(sagemaker, "__version__", None) or metadata.version("sagemaker")
    if not str(version).startswith("2."):
        raise pytest.UsageError(
            f"tests/localcloud needs SDK v2 (found sagemaker {version}): run `make test-sdkv2`"
        )
