"""Finding and ending a host's processes with psutil: by group, token, tree and held pipes.

A training script's children may double-fork, call setsid or keep the host's stdout open; these
are the searches that still find them, and the way they are ended (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

import psutil

TOKEN_VAR = "LOCALCLOUD_JOB_TOKEN"  # in every host process's environment: which host it is


def find_processes(
    token: str | None,
    pgid: int | None = None,
    members: dict[int, float] | None = None,
    pipes: set[str] | None = None,
) -> list[psutil.Process]:
    """Live processes of this user with this exact token, in group pgid, noted in members, or
    holding one of pipes open (Linux); their descendants too. Never this process.
    """
    if not token and pgid is None and not members and not pipes:
        return []
    me, uid = os.getpid(), os.getuid()
    members = dict(members or {})
    found: dict[int, psutil.Process] = {}
    children: dict[int, list[psutil.Process]] = {}
    for proc in psutil.process_iter(["ppid", "uids", "status", "create_time"]):
        info = proc.info
        if proc.pid == me or info["uids"] is None or info["uids"].real != uid:
            continue
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue
        children.setdefault(info["ppid"], []).append(proc)
        if _belongs(proc, token, pgid, members) or (pipes and _holds(proc.pid, pipes)):
            found[proc.pid] = proc
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child.pid not in found:
                found[child.pid] = child
                stack.append(child.pid)
    return list(found.values())


def _belongs(
    proc: psutil.Process, token: str | None, pgid: int | None, members: dict[int, float]
) -> bool:
    started = proc.info["create_time"]
    if proc.pid in members and started is not None and abs(members[proc.pid] - started) < 0.01:
        return True
    try:
        if pgid is not None and os.getpgid(proc.pid) == pgid:
            return True
        return bool(token) and proc.environ().get(TOKEN_VAR) == token
    except (OSError, psutil.Error):
        return False  # gone meanwhile, or not ours to read


def _holds(pid: int, pipes: set[str]) -> bool:
    """Whether the process has one of pipes open ("pipe:[inode]", as Linux's /proc names them)."""
    folder = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(folder)
    except OSError:
        return False  # gone, not ours, or no /proc (macOS)
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"{folder}/{fd}") in pipes:
                return True
    return False


def send_signal(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)  # psutil checks the pid still names the same process


def end_processes(procs: list[psutil.Process], grace_s: float) -> None:
    if grace_s > 0:
        for proc in procs:
            send_signal(proc, signal.SIGTERM)
        procs = _wait_dead(procs, grace_s)
    for proc in procs:
        send_signal(proc, signal.SIGKILL)
    _wait_dead(procs, 5.0)


def _wait_dead(procs: Iterable[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until none of procs runs (a zombie counts as dead); those still running."""
    alive = list(procs)
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p for p in alive if _running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill_group(pgid: int, sig: int) -> None:
    """Send sig to a process group; one already gone is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_group_gone(pgid: int, timeout_s: float = 3.0) -> None:
    """Return once no live process is left in the group (a SIGKILL lands asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and live_members(pgid):
        time.sleep(0.02)


def live_members(pgid: int) -> bool:
    """Whether any process but a zombie belongs to process group pgid."""
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue  # gone meanwhile, or not ours to look at
    return False


def start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch), or None if it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None
