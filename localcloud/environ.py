"""Every environment localcloud hands a process, built in one place.

`scrubbed` is what the server and any child start from (no way to a real AWS account);
`redirected` adds what sends a process's AWS calls to localcloud: the endpoint, the state folder's
credentials, the course role and notebook, the SDK config that opts out of telemetry, and the boot
folder whose sitecustomize installs the redirection and the offline hook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from localcloud import config
from localcloud.credentials import RoleCredentials

# AWS_* variables a process of localcloud keeps from its parent; the rest (credentials, profiles,
# config files, endpoints, web identity, container credentials) could reach a real account.
KEPT_AWS_VARS = ("AWS_REGION", "AWS_DEFAULT_REGION")
SDK_CONFIG_NAME = "sagemaker-config.yaml"
SDK_CONFIG = """\
# Written by localcloud: keep the SageMaker Python SDK from sending telemetry (contract §6.2).
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


def scrubbed(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of env with no way to a real AWS account: no AWS_* but the region, no config files."""
    clean = {k: v for k, v in env.items() if not k.startswith("AWS_") or k in KEPT_AWS_VARS}
    clean.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return clean


def for_server(env: Mapping[str, str]) -> dict[str, str]:
    """The server's own environment: scrubbed, and never redirected to itself."""
    clean = scrubbed(env)
    clean.pop("LOCALCLOUD_ENDPOINT", None)
    return clean


def write_sdk_config(home: Path) -> Path:
    """The SageMaker SDK config YAML that opts out of telemetry; returns its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / SDK_CONFIG_NAME
    if not path.exists() or path.read_text() != SDK_CONFIG:
        path.write_text(SDK_CONFIG)
    return path


def region_of(env: Mapping[str, str]) -> str:
    """The region a process uses: its AWS_REGION / AWS_DEFAULT_REGION, else localcloud's default."""
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or config.DEFAULT_REGION


def redirected(
    base: Mapping[str, str],
    *,
    endpoint: str,
    home: Path,
    secret: RoleCredentials,
    notebook_instance: str,
) -> dict[str, str]:
    """The environment of a child whose every AWS call goes to the server at `endpoint`."""
    env = scrubbed(base)
    region = region_of(env)
    env.update(secret.as_env())
    parts = [str(config.BOOT_DIR), str(config.REPO_ROOT)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env.update(
        {
            "LOCALCLOUD_ENDPOINT": endpoint,
            "LOCALCLOUD_HOME": str(home),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(parts)),
            "NOTEBOOK_INSTANCE_NAME": notebook_instance,
            "SAGEMAKER_ROLE": config.role_arn(),
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(write_sdk_config(home)),
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        }
    )
    return env
