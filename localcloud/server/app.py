"""The server: moto's WSGI app on 127.0.0.1 behind the guard and our routes, and its lifecycle."""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from localcloud import config, credentials, environ
from localcloud.config import ServerSettings
from localcloud.credentials import RoleCredentials
from localcloud.jobs.manager import JobManager
from localcloud.server import s3_journal
from localcloud.server.guard import CredentialBook, Guard
from localcloud.server.router import Router


class LocalCloudServer:
    """moto + our routes + the job manager, serving on 127.0.0.1:<port> from a thread."""

    def __init__(self, settings: ServerSettings, guard: bool = True) -> None:
        self.settings = settings
        self.endpoint = config.endpoint_for(settings.port)
        self.guard = guard  # False only in-process, for bench/ to measure what the checks cost
        self._server: Any = None
        self._lock: Any = None
        self.logs: Any = None  # the training-job log store (server/logs_store.py), once started
        self._thread: threading.Thread | None = None
        self.manager: JobManager | None = None

    def start(self) -> None:
        """Bind, serve in a background thread, create the course's role and notebook instance."""
        os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"  # browsers are never clients
        os.environ["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(s3_journal.MOTO_BUFFER_BYTES)
        from moto.moto_server import werkzeug_app
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from localcloud.hosts.process import kill_recorded_hosts
        from localcloud.jobs.s3io import ServerS3
        from localcloud.server.logs_api import DiskLogWriter
        from localcloud.server.logs_store import LogStore

        werkzeug_app.DISABLE_GLOBAL_CORS = True  # read at import; moto may be imported already
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines in logs
        self._lock = hold_state_lock(self.settings)  # before anything in the folder is touched
        secret = credentials.load_or_create(self.settings.home)
        self.settings.jobs_dir.mkdir(parents=True, exist_ok=True)
        kill_recorded_hosts(self.settings.jobs_dir)  # we hold the lock: their server is gone
        self.logs = LogStore(self.settings.home / "logs")  # a write a kill cut off is repaired
        listener = _listen(self.settings)
        self.settings = replace(self.settings, port=listener.getsockname()[1])
        self.endpoint = config.endpoint_for(self.settings.port)
        self.manager = JobManager(
            self.settings.jobs_dir,
            ServerS3(self.endpoint, config.DEFAULT_REGION, secret),
            DiskLogWriter(self.logs),
            max_running=self.settings.max_running_jobs,
            stop_grace_s=self.settings.stop_grace_s,
            records_dir=self.settings.records_dir,
            host_env=functools.partial(
                environ.redirected,
                endpoint=self.endpoint,
                home=self.settings.home,
                secret=secret,
                notebook_instance=self.settings.notebook_instance,
            ),
        )
        app: Any = Router(
            # S3 from the state folder, loaded before serving; each change stored before its answer
            s3_journal.durable(
                DomainDispatcherApplication(create_backend_app), self.settings.home / "s3"
            ),
            self.manager,
            self.settings,
            logs=self.logs,
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
        if self.logs is not None:
            self.logs.close()
            self.logs = None
        if self._lock is not None:
            self._lock.close()  # the next server of this folder may start
            self._lock = None


class AlreadyServing(RuntimeError):
    """Another live server holds this state folder."""


def hold_state_lock(settings: ServerSettings) -> Any:
    """The state folder's lock, held open for the server's life; AlreadyServing if taken.

    The kernel lets go of it when the process ends, however it ends, so a crashed server never
    blocks the next; a pid file could name a process that is gone or someone else's.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    handle = open(settings.home / "server.lock", "a+")  # noqa: SIM115 - held for the server's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        pid = settings.pid_file.read_text().strip() if settings.pid_file.exists() else "?"
        raise AlreadyServing(
            f"a server (pid {pid}) is already serving {settings.home}; nothing was changed. "
            "Use it, or stop it first: python -m localcloud stop"
        ) from None
    return handle


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


# The course role's permissions: the part of AmazonSageMakerFullAccess the course's jobs use
# (SageMaker, its images, logs and metrics, S3, quotas, passing the role, a VPC's interfaces).
# IAM's simulator (server/iam_api.py) answers from it, so SDK v3's role check passes as on AWS.
COURSE_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "sagemaker:*",
                "s3:*",
                "logs:*",
                "cloudwatch:PutMetricData",
                "cloudwatch:GetMetricData",
                "ecr:GetAuthorizationToken",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
                "servicequotas:GetServiceQuota",
                "servicequotas:ListServiceQuotas",
                "iam:GetRole",
                "iam:PassRole",
                # what a job in a VPC needs (AmazonSageMakerFullAccess grants the same)
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            "Resource": "*",
        }
    ],
}


def bootstrap(endpoint: str, settings: ServerSettings, secret: RoleCredentials) -> None:
    """Create what a SageMaker notebook account already has: the execution role, the notebook."""
    session = secret.boto_session(config.region())
    iam = session.client("iam", endpoint_url=endpoint)
    iam.create_role(
        RoleName=config.ROLE_NAME,
        AssumeRolePolicyDocument=json.dumps(config.SAGEMAKER_TRUST),
        Description="Execution role for the course's SageMaker training jobs (localcloud)",
    )
    iam.put_role_policy(
        RoleName=config.ROLE_NAME,
        PolicyName="localcloud-course",
        PolicyDocument=json.dumps(COURSE_ROLE_POLICY),
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
    clean = environ.for_server(os.environ)  # no real AWS credentials, no redirect to itself
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
