"""One localcloud server for the whole test session, shared by the localcloud and notebook tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

# Set before the server starts (the server, job hosts and notebook kernels inherit them): quick
# stops, one zero quota so ResourceLimitExceeded can be shown, idle OpenMP threads that don't spin.
SERVER_ENV = {
    "LOCALCLOUD_STOP_GRACE_S": "2",
    "LOCALCLOUD_QUOTAS": '{"ml.p3.2xlarge for training job usage": 0}',
    "LOCALCLOUD_NOTEBOOK_INSTANCE": "localcloud-notebook",
    "OMP_WAIT_POLICY": "PASSIVE",
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
}


@pytest.fixture(scope="session")
def localcloud_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A background server in a temporary state folder, this process wired to it; stopped after."""
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


@pytest.fixture
def sm_session(localcloud_server: object) -> object:
    """A sagemaker.Session talking to the session's server."""
    import sagemaker

    return sagemaker.Session(boto_session=localcloud_server.boto_session)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def localcloud_kernel(localcloud_server: object) -> str:
    """The `localcloud` kernel, installed; its sessions find the server through LOCALCLOUD_HOME."""
    subprocess.run(
        [sys.executable, "-m", "localcloud", "install-kernel"], check=True, capture_output=True
    )
    return "localcloud"
