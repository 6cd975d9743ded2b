"""The server: moto's WSGI app on 127.0.0.1, behind a thin layer that routes what moto lacks."""

from __future__ import annotations

import errno
import functools
import io
import json
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from localcloud import config, credentials
from localcloud.config import ServerSettings
from localcloud.credentials import RoleCredentials
from localcloud.jobs.manager import JobManager
from localcloud.server import quotas, sagemaker_api
from localcloud.server.errors import AwsError
from localcloud.server.guard import HEALTH_PATH, CredentialBook, Guard

StartResponse = Callable[..., Any]


def _region_of(environ: dict[str, Any]) -> str:
    """The region from the SigV4 credential scope (`Credential=KEY/date/region/service/...`)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
        return scope.split("/")[2]
    except IndexError:
        return config.DEFAULT_REGION


def _json_response(
    start_response: StartResponse, status: int, payload: dict[str, Any]
) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
    start_response(
        f"{status} {reason.get(status, 'Error')}",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [body]


# X-Amz-Target prefixes of the JSON-protocol services the course uses, and botocore's names.
JSON_TARGETS = {
    "SageMaker": "sagemaker",
    "ServiceQuotasV20190624": "service-quotas",
    "Logs_20140328": "logs",
}


@functools.cache
def _operations(service: str) -> frozenset[str]:
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return frozenset(model.operation_names)


def json_request(prefix: str, action: str, raw: bytes) -> dict[str, Any]:
    """The body of a JSON-protocol call, refused as the service refuses what it can't read."""
    if action not in _operations(JSON_TARGETS[prefix]):
        raise AwsError("UnknownOperationException", f"Unknown operation {action}")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AwsError("SerializationException", "The request body is not a JSON object")
    return body


class Router:
    """WSGI app: training jobs and SageMaker quotas to us, everything else to moto unchanged."""

    def __init__(self, moto_app: Any, manager: JobManager, settings: ServerSettings) -> None:
        self.moto_app = moto_app
        self.manager = manager
        self.settings = settings

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return _json_response(
                start_response,
                200,
                {
                    "service": "localcloud",
                    "pid": os.getpid(),
                    "home": str(self.settings.home),
                    "notebook_instance": self.settings.notebook_instance,
                },
            )
        prefix, _, action = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        if prefix in JSON_TARGETS:
            raw = self._read_body(environ)
            try:
                body = json_request(prefix, action, raw)
            except AwsError as exc:
                return _json_response(start_response, exc.status, exc.body())
            handler = self._handler(prefix, action, body)
            if handler is not None:
                return self._answer(handler, _region_of(environ), start_response)
            environ["wsgi.input"] = io.BytesIO(raw)
        return self.moto_app(environ, start_response)

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return environ["wsgi.input"].read(length) if length else b""

    def _handler(
        self, prefix: str, action: str, body: dict[str, Any]
    ) -> Callable[[str], dict[str, Any]] | None:
        if prefix == "SageMaker" and sagemaker_api.handles(action, body):
            return lambda region: sagemaker_api.handle(
                self.manager, action, body, region, config.ACCOUNT_ID
            )
        if prefix == "ServiceQuotasV20190624" and quotas.handles(action, body):
            return lambda region: quotas.handle(action, body, region)
        return None

    @staticmethod
    def _answer(
        handler: Callable[[str], dict[str, Any]], region: str, start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            return _json_response(start_response, 200, handler(region))
        except AwsError as exc:
            return _json_response(start_response, exc.status, exc.body())
        except Exception as exc:  # answer like the service rather than dropping the connection
            logging.getLogger("localcloud").exception("internal error")
            return _json_response(
                start_response, 500, {"__type": "InternalFailure", "message": str(exc)}
            )


class LocalCloudServer:
    """moto + our routes + the job manager, serving on 127.0.0.1:<port> from a thread."""

    def __init__(self, settings: ServerSettings, guard: bool = True) -> None:
        self.settings = settings
        self.endpoint = config.endpoint_for(settings.port)
        self.guard = guard  # False only in-process, for bench/ to measure what the checks cost
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.manager: JobManager | None = None

    def start(self) -> None:
        """Bind, serve in a background thread, create the course's role and notebook instance."""
        os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"  # browsers are never clients
        from moto.moto_server import werkzeug_app
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from localcloud.jobs.cluster import kill_recorded_hosts
        from localcloud.jobs.s3io import ServerS3
        from localcloud.server.logs_api import MotoLogWriter

        werkzeug_app.DISABLE_GLOBAL_CORS = True  # read at import; moto may be imported already
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines in logs
        secret = credentials.load_or_create(self.settings.home)
        self.settings.jobs_dir.mkdir(parents=True, exist_ok=True)
        kill_recorded_hosts(self.settings.jobs_dir)  # hosts a killed server left running
        listener = _listen(self.settings)
        self.settings = replace(self.settings, port=listener.getsockname()[1])
        self.endpoint = config.endpoint_for(self.settings.port)
        self.manager = JobManager(
            self.settings.jobs_dir,
            ServerS3(self.endpoint, config.DEFAULT_REGION, secret),
            MotoLogWriter(config.ACCOUNT_ID),
            max_running=self.settings.max_running_jobs,
            stop_grace_s=self.settings.stop_grace_s,
            endpoint=self.endpoint,
            home=self.settings.home,
        )
        app: Any = Router(
            DomainDispatcherApplication(create_backend_app), self.manager, self.settings
        )
        if self.guard:
            app = Guard(app, CredentialBook(secret, config.ACCOUNT_ID), self.settings.port)
        self._server = make_server(
            config.HOST,
            self.settings.port,
            app,
            threaded=True,
            request_handler=MotoRequestHandler,
            fd=listener.fileno(),  # werkzeug serves on a duplicate of it
        )
        listener.close()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        register_role_session(secret)
        bootstrap(self.endpoint, self.settings, secret)

    def stop(self) -> None:
        """Stop every job (no host left behind), then stop serving."""
        if self.manager is not None:
            self.manager.shutdown()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def _listen(settings: ServerSettings) -> socket.socket:
    """A listening socket on the settings' port, or (derived port busy) on one of the next."""
    tries = 1 if settings.fixed_port else config.PORT_TRIES
    for offset in range(tries):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.HOST, settings.port + offset))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or offset == tries - 1:
                raise RuntimeError(
                    f"cannot listen on {config.HOST}:{settings.port + offset}: {exc.strerror}"
                    + (f" (tried {tries} ports from {settings.port})" if tries > 1 else "")
                ) from None
            continue
        sock.listen(128)
        return sock
    raise AssertionError("unreachable")


def register_role_session(secret: RoleCredentials) -> None:
    """Register the state folder's credentials in moto as a session of the course role."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    partition = "aws"
    sts = sts_backends[config.ACCOUNT_ID][partition]
    iam = iam_backends[config.ACCOUNT_ID][partition]
    session = sts.assume_role(
        region_name=config.DEFAULT_REGION,
        role_session_name=config.ROLE_SESSION_NAME,
        role_arn=config.role_arn(),
        policy="",
        duration=12 * 3600,
        external_id="",
    )
    key = session.access_key
    iam.access_keys.pop(key.access_key_id, None)
    key.access_key_id = session.access_key_id = secret.access_key_id
    key.secret_access_key = session.secret_access_key = secret.secret_access_key
    session.session_token = secret.session_token
    iam.access_keys[key.access_key_id] = key


def bootstrap(endpoint: str, settings: ServerSettings, secret: RoleCredentials) -> None:
    """Create what a SageMaker notebook account already has: the execution role, the notebook."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=secret.access_key_id,
        aws_secret_access_key=secret.secret_access_key,
        aws_session_token=secret.session_token,
        region_name=config.region(),
    )
    iam = session.client("iam", endpoint_url=endpoint)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(
        RoleName=config.ROLE_NAME,
        AssumeRolePolicyDocument=json.dumps(trust),
        Description="Execution role for the course's SageMaker training jobs (localcloud)",
    )
    sagemaker = session.client("sagemaker", endpoint_url=endpoint)
    sagemaker.create_notebook_instance(
        NotebookInstanceName=settings.notebook_instance,
        InstanceType="ml.t3.medium",
        RoleArn=config.role_arn(),
    )


def serve(settings: ServerSettings, ready: Callable[[], None] | None = None) -> int:
    """Run in the foreground until SIGTERM/SIGINT; pid and port files exist while serving."""
    from localcloud import offline

    offline.install()  # the server itself needs nothing beyond loopback either
    clean = config.scrub_aws_env(os.environ)  # the server never holds real AWS credentials
    clean.pop("LOCALCLOUD_ENDPOINT", None)  # nor redirects to itself
    os.environ.clear()
    os.environ.update(clean)
    settings.home.mkdir(parents=True, exist_ok=True)
    server = LocalCloudServer(settings)
    server.start()
    settings = server.settings  # the port actually used
    settings.pid_file.write_text(str(os.getpid()))
    settings.port_file.write_text(str(settings.port))
    done = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(f"localcloud serving at {server.endpoint} (state folder {settings.home})", flush=True)
    if ready:
        ready()
    try:
        while not done.wait(1.0):
            pass
    finally:
        print("localcloud stopping: ending running jobs", flush=True)
        server.stop()
        for path in (settings.pid_file, settings.port_file):
            if path.exists() and (
                path != settings.pid_file or path.read_text() == str(os.getpid())
            ):
                path.unlink()
    return 0
