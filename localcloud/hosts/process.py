"""Host processes: spawned, read line by line, reaped, and ended with everything they started.

The counterpart of toolkit process.py. A host's main process leads a process group of its own and
carries a token no other host has (LOCALCLOUD_JOB_TOKEN). When it exits, every process it left
behind is ended: the members of its group, every process of this user carrying its token (daemons
that called setsid or double-forked keep their environment), every process seen in its tree
(on Linux the main process is a child subreaper, so orphaned grandchildren stay in that tree while
it lives), on Linux every process holding its stdout or stderr pipe, and their descendants. Each
live host is recorded under its job folder with its token, so a server started after one that was
killed can end what the dead one left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import psutil

from localcloud.hosts import safepaths
from localcloud.hosts.errors import ErrorCapture
from localcloud.hosts.processtree import (
    TOKEN_VAR,
    end_processes,
    find_processes,
    kill_group,
    live_members,
    send_signal,
    start_time,
)

LogSink = Callable[[str, str], None]  # (host, line)
HOSTS_RECORD = ".host-groups"  # under a job folder: one file per live host process group
END_GRACE_S = 1.0  # SIGTERM, then SIGKILL, for what a host's main process left running
READER_GRACE_S = 1.0  # a pipe silent this long once the host's processes are gone is left
READER_MAX_S = 3.0  # and one still written to (by a process we could not find), this long
WATCH_S = 0.5  # how often a host's process tree is noted while its main process runs
# How far a recorded start time may be from the live one and still be the same process: the
# clock may have been adjusted in between; a reused id would have to start within it.
_SAME_START_S = 1.0
_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
_LINUX = sys.platform.startswith("linux")
# Makes the host's main process a child subreaper (kept across exec), then runs the command.
_SUBREAPER_EXEC = (
    "import os, sys\n"
    "try:\n"
    "    import ctypes\n"
    f"    ctypes.CDLL(None).prctl({_PR_SET_CHILD_SUBREAPER}, 1, 0, 0, 0)\n"
    "except (ImportError, OSError, AttributeError):\n"
    "    pass  # the host still runs; only its orphans are no longer kept in its tree\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


@dataclass
class HostProcess:
    """One host's main process: its command, token, captured errors and what it started."""

    host: str
    cmd: list[str]
    proc: subprocess.Popen[bytes]
    token: str = ""
    capture: ErrorCapture = field(default_factory=ErrorCapture)
    readers: list[threading.Thread] = field(default_factory=list)
    members: dict[int, float] = field(default_factory=dict)  # pid -> start, seen in its tree
    exited: threading.Event = field(default_factory=threading.Event)
    gate: threading.Lock = field(default_factory=threading.Lock)
    logging: bool = True  # False once the host has ended: no later line reaches its log
    last_read: float = 0.0  # monotonic time a reader last handled a line


def launch(host: str, cmd: list[str], env: dict[str, str], cwd: Path) -> HostProcess:
    """Start cmd as the leader of a new process group, marked with a fresh token, piped to us."""
    token = secrets.token_hex(16)
    argv = [sys.executable, "-I", "-S", "-c", _SUBREAPER_EXEC, *cmd] if _LINUX else cmd
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**env, TOKEN_VAR: token},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return HostProcess(host, cmd, proc, token)


def supervise(
    worker: HostProcess, job_dir: Path, log: LogSink, on_exit: Callable[[HostProcess, int], None]
) -> None:
    """Log both streams line by line; once the main process exits, end the rest, then on_exit."""
    for stream in (worker.proc.stdout, worker.proc.stderr):
        reader = threading.Thread(target=_read, args=(worker, stream, log), daemon=True)
        reader.start()
        worker.readers.append(reader)
    watcher = threading.Thread(target=_watch, args=(worker,), daemon=True)
    watcher.start()
    threading.Thread(target=_reap, args=(worker, job_dir, watcher, on_exit), daemon=True).start()


def _read(worker: HostProcess, stream: IO[bytes], log: LogSink) -> None:
    is_err = stream is worker.proc.stderr
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        with worker.gate:
            if worker.logging:  # once closed, the pipe is only drained so no writer blocks
                worker.capture.feed(line, is_err)
                log(worker.host, line)
        worker.last_read = time.monotonic()
    stream.close()


def _watch(worker: HostProcess) -> None:
    """Note every process in the main process's tree while it runs (its orphans included)."""
    try:
        leader = psutil.Process(worker.proc.pid)
        while not worker.exited.wait(WATCH_S):
            for child in leader.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    worker.members.setdefault(child.pid, child.create_time())
    except psutil.Error:
        return  # the main process is gone


def _reap(
    worker: HostProcess,
    job_dir: Path,
    watcher: threading.Thread,
    on_exit: Callable[[HostProcess, int], None],
) -> None:
    pid = worker.proc.pid
    _wait_exited(worker.proc)
    worker.exited.set()
    watcher.join(5)
    try:
        end_rest(worker)
    finally:  # a bug of ours in ending the rest must still end the host
        code = worker.proc.wait()
        forget_group(job_dir, pid)
        _drain(worker)
        with worker.gate:
            worker.logging = False
        on_exit(worker, code)


def _drain(worker: HostProcess) -> None:
    """Let the readers reach EOF; leave a pipe only a process we could not find holds open."""
    start = worker.last_read = time.monotonic()
    while any(reader.is_alive() for reader in worker.readers):
        now = time.monotonic()
        if now - worker.last_read > READER_GRACE_S or now - start > READER_MAX_S:
            return
        for reader in worker.readers:
            reader.join(0.05)


def _wait_exited(proc: subprocess.Popen[bytes]) -> None:
    """Block until the main process has exited, leaving it unreaped where the platform can."""
    # Unreaped, its pid and group id cannot be taken by a new process while the rest is ended.
    if hasattr(os, "waitid"):
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            return
    proc.wait()


def end_rest(worker: HostProcess, grace_s: float = END_GRACE_S) -> list[int]:
    """End what a host's main process left running: SIGTERM, SIGKILL after grace_s; their ids."""
    ended: list[int] = []
    for round_grace in (grace_s, 0.0, 0.0):  # later rounds: what forked meanwhile
        procs = host_processes(worker)
        if not procs:
            break
        ended += [p.pid for p in procs]
        end_processes(procs, round_grace)
    return ended


def terminate(workers: list[HostProcess], grace_s: float) -> None:
    """SIGTERM every live host and what it started, SIGKILL the main processes after grace_s."""
    live = [w for w in workers if not w.exited.is_set()]
    for worker in live:
        for proc in host_processes(worker):
            send_signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for worker in live:
        if not worker.exited.wait(max(0.0, deadline - time.monotonic())):
            kill_group(worker.proc.pid, signal.SIGKILL)  # the main one is unreaped: still its id
            worker.exited.wait(10)


def host_processes(worker: HostProcess) -> list[psutil.Process]:
    """Every live process of a host: its group, token, tree, holders of its pipes; no zombie."""
    # A pipe we still read from cannot be freed, so its inode names no other pipe meanwhile.
    pipes = set()
    for stream in (worker.proc.stdout, worker.proc.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed by its reader
            pipes.add(f"pipe:[{os.fstat(stream.fileno()).st_ino}]")
    return find_processes(worker.token, worker.proc.pid, worker.members, pipes)


# ----------------------------------------------------------------------- host group records


def record_group(job_dir: Path, pgid: int, token: str = "") -> None:
    """Note a live host group and its token, so a server started after a crash can end it."""
    # Hosts already run while later ones are recorded: nothing on the way is followed.
    with contextlib.suppress(OSError, safepaths.UnsafePath):
        text = json.dumps({"started": start_time(pgid), "token": token})
        safepaths.write_file(job_dir, f"{HOSTS_RECORD}/{pgid}", text.encode(), create_parents=True)


def forget_group(job_dir: Path, pgid: int) -> None:
    """Drop the record of a group that has ended."""
    with contextlib.suppress(OSError, safepaths.UnsafePath):
        safepaths.remove(job_dir, f"{HOSTS_RECORD}/{pgid}")


def kill_recorded_hosts(jobs_dir: Path) -> list[int]:
    """SIGKILL what the hosts of a server that is gone left running; the recorded group ids.

    Only a server holding the state folder's lock may call it: every record is then a dead one's.
    """
    killed = []
    for record in _host_records(jobs_dir):
        try:
            pgid = int(record.rsplit("/", 1)[1])
            text = (safepaths.read_regular(jobs_dir, record, 512) or b"").decode()
        except (OSError, ValueError, UnicodeDecodeError, safepaths.UnsafePath):
            continue
        started, token = _parse_record(text)
        now = start_time(pgid)
        # A leader gone with its group still alive keeps the id taken, so the group is ours;
        # a live process with another start time got the id after our group had ended.
        ours = (now is None and live_members(pgid)) or (
            now is not None and started is not None and abs(now - started) < _SAME_START_S
        )
        procs = find_processes(token, pgid if ours else None)
        if procs:
            for _ in range(3):  # what forked while the first ones were being killed
                end_processes(procs, 0.0)
                procs = find_processes(token, pgid if ours else None)
                if not procs:
                    break
            killed.append(pgid)
        with contextlib.suppress(OSError, safepaths.UnsafePath):
            safepaths.remove(jobs_dir, record)
    return killed


def _parse_record(text: str) -> tuple[float | None, str | None]:
    """(start time, token) from a record; records of older servers hold the start time only."""
    try:
        value = json.loads(text)
    except ValueError:
        return None, None
    if isinstance(value, (int, float)):
        return float(value), None
    if not isinstance(value, dict):
        return None, None
    started, token = value.get("started"), value.get("token")
    started = float(started) if isinstance(started, (int, float)) else None
    return started, token if isinstance(token, str) and len(token) >= 16 else None


def _host_records(jobs_dir: Path) -> list[str]:
    """<job>/<HOSTS_RECORD>/<pgid> names under jobs_dir, reached without following links."""
    records = []
    for job in sorted(os.listdir(jobs_dir)) if jobs_dir.is_dir() else []:
        folder = f"{job}/{HOSTS_RECORD}"
        with contextlib.suppress(OSError, safepaths.UnsafePath):
            records.extend(
                f"{folder}/{name}" for name in sorted(safepaths.list_entries(jobs_dir, folder))
            )
    return records


def toolkit_line(message: str, level: str = "INFO") -> str:
    """A log line in the toolkit's format, so the host log reads like the container's."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    return f"{stamp} {'sagemaker-training-toolkit':<12} {level:<8} {message}"
