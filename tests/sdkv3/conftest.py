"""SDK v3 (the course's SDK) against localcloud: ModelTrainer jobs, the client-side patches.

One server per test session (per xdist worker), this process wired to it. The v2 compatibility
tests live in tests/localcloud and run with SDK v2 from .sdkv2 (`make test-sdkv2`).
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    import sagemaker.train  # noqa: F401 - a clear failure when SDK v3 is not installed


# `localcloud_server` (one server per session and xdist worker) comes from tests/conftest.py.
@pytest.fixture(scope="session")
def v3_session(localcloud_server: object) -> object:
    """SDK v3's Session on the server's boto session."""
    from sagemaker.core.helper.session_helper import Session

    return Session(boto_session=localcloud_server.boto_session)  # type: ignore[attr-defined]
