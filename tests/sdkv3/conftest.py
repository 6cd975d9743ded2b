"""SDK v3 (the course's SDK) against localcloud: ModelTrainer jobs, the client-side patches.

One server per test session (per xdist worker), this process wired to it. The v2 compatibility
tests live in tests/localcloud and run with SDK v2 from .sdkv2 (`make test-sdkv2`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ENV = {
    "LOCALCLOUD_STOP_GRACE_S": "2",
    "LOCALCLOUD_NOTEBOOK_INSTANCE": "localcloud-notebook",
    "OMP_WAIT_POLICY": "PASSIVE",
}


def pytest_configure(config: pytest.Config) -> None:
    import sagemaker.train  # noqa: F401 - a clear failure when SDK v3 is not installed


@pytest.fixture(scope="session")
def localcloud_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One background server for the session (course venv), this process wired to it."""
    import localcloud
    from localcloud import client, control

    home = tmp_path_factory.mktemp("localcloud-home")
    saved = {k: os.environ.get(k) for k in (*SERVER_ENV, "LOCALCLOUD_HOME", "LOCALCLOUD_PORT")}
    os.environ.update(SERVER_ENV)
    os.environ.pop("LOCALCLOUD_PORT", None)
    connection = localcloud.connect(home)
    try:
        yield connection
    finally:
        control.stop(home)
        client.uninstall()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def v3_session(localcloud_server: object) -> object:
    """SDK v3's Session on the server's boto session."""
    from sagemaker.core.helper.session_helper import Session

    return Session(boto_session=localcloud_server.boto_session)  # type: ignore[attr-defined]
