"""One localcloud server for the whole test session, and a SageMaker SDK session wired to it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Set before the server starts: quick stops, and one zero quota so ResourceLimitExceeded can show.
SERVER_ENV = {
    "LOCALCLOUD_STOP_GRACE_S": "2",
    "LOCALCLOUD_QUOTAS": '{"ml.p3.2xlarge for training job usage": 0}',
    "LOCALCLOUD_NOTEBOOK_INSTANCE": "localcloud-notebook",
}


@pytest.fixture(scope="session")
def localcloud_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A background server in a temporary state folder, this process wired to it; stopped after."""
    import localcloud
    from localcloud import client
    from localcloud.server import control

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


@pytest.fixture
def sm_session(localcloud_server: object) -> object:
    """A sagemaker.Session talking to the session's server."""
    import sagemaker

    return sagemaker.Session(boto_session=localcloud_server.boto_session)  # type: ignore[attr-defined]
