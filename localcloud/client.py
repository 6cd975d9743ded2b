"""Client side: send every botocore client to localcloud and patch the SageMaker SDK
(sdk_patches: its polling clock, config checks and telemetry)."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from localcloud import config, credentials, environ, sdk_patches

# Kept for tests/localcloud/test_client.py and test_offline.py, which predate sdk_patches.
ScaledClock = sdk_patches.ScaledClock
_real_time = sdk_patches._real_time


def _patch_sagemaker_telemetry(module: ModuleType) -> None:
    needs = ("TELEMETRY_OPT_OUT_PATH",)
    target = sdk_patches.Target(module.__name__, "resolve_value_from_config", "telemetry", needs)
    sdk_patches.apply(module, target)


_state: dict[str, Any] = {}
_ENV_KEYS = (
    "LOCALCLOUD_ENDPOINT",
    "LOCALCLOUD_HOME",
    "SAGEMAKER_SUPPRESS_V2_WARNING",
    "SAGEMAKER_USER_CONFIG_OVERRIDE",
    "SAGEMAKER_ROLE",
    "NOTEBOOK_INSTANCE_NAME",
)


def not_running_message(endpoint: str) -> str:
    """The one line a client sees when the server is gone."""
    return f"localcloud is not running at {endpoint} — start it with: python -m localcloud start"


def _patch_botocore_session(module: ModuleType) -> None:
    session_cls = module.Session
    if getattr(session_cls.create_client, "_localcloud", False):
        return
    original = session_cls.create_client
    signature = inspect.signature(original)

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        endpoint = _state.get("endpoint")
        if not endpoint:
            return original(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        if not _names_loopback(bound.arguments.get("endpoint_url")):
            # every endpoint, the SDK's explicit regional ones included, becomes ours; one that
            # already names a server on this machine (another localcloud) is kept
            bound.arguments["endpoint_url"] = endpoint
        bound.arguments["config"] = _client_config(bound.arguments.get("config"))
        client = original(*bound.args, **bound.kwargs)
        client.meta.events.register("after-call-error", _explain_connection_error)
        return client

    create_client._localcloud = True  # type: ignore[attr-defined]
    session_cls.create_client = create_client


def _names_loopback(url: str | None) -> bool:
    from urllib.parse import urlsplit

    from localcloud.offline import is_loopback_host

    return bool(url) and is_loopback_host(urlsplit(url).hostname or "")


def _client_config(user: Any) -> Any:
    from botocore.config import Config

    # localcloud never throttles: a client's own generous retries (the SDK asks for up to 15 on
    # its Logs client) would only make a learner wait a minute to hear that the server is gone
    ours = Config(connect_timeout=2, retries={"total_max_attempts": 2, "mode": "standard"})
    return ours if user is None else user.merge(ours)


class LocalcloudNotRunning(Exception):
    """Raised instead of botocore's connection errors when localcloud's server is not there."""


def _explain_connection_error(exception: Exception, **_: Any) -> None:
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    if isinstance(exception, EndpointConnectionError | ConnectionClosedError):
        endpoint = _state.get("endpoint") or os.environ.get("LOCALCLOUD_ENDPOINT", "")
        raise LocalcloudNotRunning(not_running_message(endpoint)) from None


def install(endpoint: str | None = None) -> None:
    """Redirect this process's botocore clients to localcloud and scale the SDK's clock."""
    endpoint = endpoint or os.environ.get("LOCALCLOUD_ENDPOINT")
    if not endpoint:
        raise RuntimeError("install() needs an endpoint or LOCALCLOUD_ENDPOINT")
    _state.setdefault("saved_env", _saved_env())
    _state["endpoint"] = endpoint
    os.environ["LOCALCLOUD_ENDPOINT"] = endpoint
    os.environ.setdefault("AWS_DEFAULT_REGION", config.region())
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    sdk_patches.install(config.clock_scale(), also={"botocore.session": _patch_botocore_session})
    if not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SESSION_TOKEN")):
        home = os.environ.get("LOCALCLOUD_HOME")
        if not home:
            raise RuntimeError("install() needs LOCALCLOUD_HOME to read the server's credentials")
        os.environ.update(assumed_role_env(endpoint, os.environ["AWS_DEFAULT_REGION"], Path(home)))


def _saved_env() -> dict[str, str | None]:
    """The variables install()/connect() may change, as they are now (for uninstall())."""
    keys = {*_ENV_KEYS, *(k for k in os.environ if k.startswith("AWS_"))}
    keys |= set(environ.scrubbed({})) | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    keys |= {"AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"}
    return {k: os.environ.get(k) for k in keys}


def uninstall() -> None:
    """Undo install(): clients go where they would have gone, the SDK's clock is real again."""
    _state.pop("endpoint", None)
    sdk_patches.uninstall()
    for key, value in _state.pop("saved_env", {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def assumed_role_env(endpoint: str, region: str, home: Path) -> dict[str, str]:
    """AWS_* credentials of the course's execution role, read from the state folder and checked.

    The server registers the folder's credentials at every start, so a process that holds them
    keeps being the role across a server restart; one that cannot read the folder cannot sign.
    """
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    try:
        env = credentials.load(home).as_env()
    except FileNotFoundError:
        raise LocalcloudNotRunning(not_running_message(endpoint)) from None
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(
            f"cannot read localcloud's credentials in {home}: {type(exc).__name__}"
        ) from None
    # this process's own profile and config files play no part (and may name what isn't there)
    session = botocore.session.Session(
        session_vars={
            "profile": (None, None, None, None),
            "config_file": (None, None, os.devnull, None),
            "credentials_file": (None, None, os.devnull, None),
        }
    )
    session.set_credentials(
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]
    )
    sts = session.create_client(
        "sts",
        region_name=region,
        endpoint_url=endpoint,
        config=Config(retries={"total_max_attempts": 1}),
    )
    try:
        arn = sts.get_caller_identity()["Arn"]
    except (EndpointConnectionError, ConnectionClosedError):
        raise LocalcloudNotRunning(not_running_message(endpoint)) from None
    if f":assumed-role/{config.ROLE_NAME}/" not in arn:
        raise RuntimeError(f"localcloud at {endpoint} does not know the course role's session")
    return env


def notebook_instance_name(endpoint: str) -> str:
    """The notebook instance the server registered (its LOCALCLOUD_NOTEBOOK_INSTANCE)."""
    from localcloud import control

    answer = control.health(endpoint) or {}
    return str(answer.get("notebook_instance") or config.DEFAULT_NOTEBOOK_INSTANCE)


def client_env(endpoint: str, home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child process whose AWS calls must all go to localcloud."""
    env = environ.scrubbed(os.environ if base is None else base)
    assumed_role_env(endpoint, environ.region_of(env), home)  # the server knows these credentials
    return environ.redirected(
        env,
        endpoint=endpoint,
        home=home,
        secret=credentials.load(home),
        notebook_instance=notebook_instance_name(endpoint),
    )


@dataclass
class Connection:
    """A process wired to a localcloud server (what `connect()` returns)."""

    endpoint: str
    region: str
    role_arn: str
    home: Path
    boto_session: Any

    def client(self, service: str) -> Any:
        """A boto3 client for `service`, sent to localcloud."""
        return self.boto_session.client(service)


def connect(home: str | os.PathLike[str] | None = None, *, start: bool = True) -> Connection:
    """Wire this process to localcloud (starting a background server if none runs)."""
    from localcloud import control

    state = config.state_dir(home)
    endpoint = control.ensure_running(state) if start else control.running_endpoint(state)
    if endpoint is None:
        raise LocalcloudNotRunning(
            not_running_message(config.endpoint_for(config.default_port(state)))
        )
    _state.setdefault("saved_env", _saved_env())
    scrubbed = environ.scrubbed(os.environ)
    for key in [k for k in os.environ if k not in scrubbed]:
        del os.environ[key]
    os.environ.update(scrubbed)
    os.environ["LOCALCLOUD_HOME"] = str(state)
    os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(environ.write_sdk_config(state))
    os.environ["NOTEBOOK_INSTANCE_NAME"] = notebook_instance_name(endpoint)
    os.environ["SAGEMAKER_ROLE"] = config.role_arn()
    install(endpoint)
    import boto3

    return Connection(
        endpoint=endpoint,
        region=os.environ["AWS_DEFAULT_REGION"],
        role_arn=config.role_arn(),
        home=state,
        boto_session=boto3.session.Session(region_name=os.environ["AWS_DEFAULT_REGION"]),
    )
