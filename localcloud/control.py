"""Start, find and stop a background server through its state folder (pid and port files)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localcloud import config, environ
from localcloud.config import ServerSettings

START_TIMEOUT_S = 60.0


def health(endpoint: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The server's health answer, or None when nothing (or not localcloud) answers there."""
    try:
        with urllib.request.urlopen(endpoint + "/localcloud/health", timeout=timeout) as reply:
            data = json.loads(reply.read())
    except (OSError, ValueError):
        return None
    return data if data.get("service") == "localcloud" else None


def running_endpoint(home: Path) -> str | None:
    """Endpoint of the server serving this state folder, if one answers."""
    settings = ServerSettings.from_env(home)
    port_text = _read(settings.port_file)
    if not port_text:
        return None
    endpoint = config.endpoint_for(int(port_text))
    answer = health(endpoint)
    if answer is None or answer.get("home") != str(home):
        return None
    return endpoint


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


@contextmanager
def _start_lock(home: Path) -> Any:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".start.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_running(home: Path, port: int | None = None) -> str:
    """Endpoint of this state folder's server, starting one in the background if none runs."""
    return start_if_needed(home, port)[0]


def start_if_needed(home: Path, port: int | None = None) -> tuple[str, bool]:
    """(endpoint, whether this call started the server) for this state folder."""
    with _start_lock(home):
        endpoint = running_endpoint(home)
        if endpoint:
            return endpoint, False
        return _spawn(home, port), True


def _spawn(home: Path, port: int | None) -> str:
    settings = ServerSettings.from_env(home, port)
    env = environ.for_server(os.environ)  # no real AWS credentials, no redirect to itself
    # stale pid and port files stay: the new server overwrites them once it holds the folder's lock
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(config.REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    log = open(home / "server.log", "ab")  # noqa: SIM115 - handed to the child
    argv = [
        config.server_python(),
        "-m",
        "localcloud",
        "serve",
        "--home",
        str(home),
    ]
    if port:
        argv += ["--port", str(port)]  # else the server derives it (and may move on if busy)
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(_last_words(home / "server.log", process.returncode))
        port_text = _read(settings.port_file)  # written once serving, maybe on a later port
        if port_text and settings.pid_file.exists():
            endpoint = config.endpoint_for(int(port_text))
            answer = health(endpoint, timeout=0.5)
            if answer and answer.get("home") == str(home):
                return endpoint
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"localcloud server did not answer within {START_TIMEOUT_S:.0f} s")


def _last_words(log: Path, code: int) -> str:
    """Why a server we started exited: its own last line, if it said one."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    said = lines[-1].removeprefix("localcloud: ") if lines else ""
    return said or f"localcloud server exited with code {code}; see {log}"


def server_pid(home: Path) -> int | None:
    """Pid of the running server of this state folder (checked against its health answer)."""
    endpoint = running_endpoint(home)
    if endpoint is None:
        return None
    answer = health(endpoint)
    return int(answer["pid"]) if answer else None


def stop(home: Path, timeout: float | None = None) -> bool:
    """SIGTERM the server (it stops its jobs first) and wait; False if none was running."""
    settings = ServerSettings.from_env(home)
    pid = server_pid(home)
    if pid is None:
        return False
    port_text = _read(settings.port_file)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + (timeout or settings.stop_grace_s + 20)
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    for path in (settings.pid_file, settings.port_file):
        if _read(path) in (str(pid), port_text) or not _alive(pid):
            path.unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
