"""Host processes: spawned in a group of their own, read line by line, reaped, killed as a group.

The counterpart of toolkit process.py. Each host group is recorded under its job folder while it
lives, so a server started after one that was killed can end what the dead one left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
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

LogSink = Callable[[str, str], None]  # (host, line)
HOSTS_RECORD = ".host-groups"  # under a job folder: one file per live host process group
# How far a recorded start time may be from the live one and still be the same process: the
# clock may have been adjusted in between; a reused id would have to start within it.
_SAME_START_S = 1.0


@dataclass
class HostProcess:
    """One process group of a host: its command, the live process and its captured errors."""

    host: str
    cmd: list[str]
    proc: subprocess.Popen[bytes]
    capture: ErrorCapture = field(default_factory=ErrorCapture)
    readers: list[threading.Thread] = field(default_factory=list)


def launch(host: str, cmd: list[str], env: dict[str, str], cwd: Path) -> HostProcess:
    """Start cmd as the leader of a new process group, its output piped to us."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return HostProcess(host, cmd, proc)


def supervise(
    worker: HostProcess, job_dir: Path, log: LogSink, on_exit: Callable[[HostProcess, int], None]
) -> None:
    """Log both streams line by line; once the leader exits, end its group, then call on_exit."""
    for stream in (worker.proc.stdout, worker.proc.stderr):
        reader = threading.Thread(target=_read, args=(worker, stream, log), daemon=True)
        reader.start()
        worker.readers.append(reader)
    threading.Thread(target=_reap, args=(worker, job_dir, on_exit), daemon=True).start()


def _read(worker: HostProcess, stream: IO[bytes], log: LogSink) -> None:
    is_err = stream is worker.proc.stderr
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        worker.capture.feed(line, is_err)
        log(worker.host, line)
    stream.close()


def _reap(worker: HostProcess, job_dir: Path, on_exit: Callable[[HostProcess, int], None]) -> None:
    code = worker.proc.wait()
    kill_group(worker.proc.pid, signal.SIGKILL)  # stragglers the entry point left behind
    wait_group_gone(worker.proc.pid)
    forget_group(job_dir, worker.proc.pid)
    for reader in worker.readers:
        reader.join(timeout=10)
    on_exit(worker, code)


def terminate(workers: list[HostProcess], grace_s: float) -> None:
    """SIGTERM every live group, SIGKILL the leaders still running after grace_s."""
    for worker in workers:
        if worker.proc.poll() is None:
            kill_group(worker.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for worker in workers:
        try:
            worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait()


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


# ----------------------------------------------------------------------- host group records


def record_group(job_dir: Path, pgid: int) -> None:
    """Note a live host group, so a server started after a crash of this one can end it."""
    # Hosts already run while later ones are recorded: nothing on the way is followed.
    with contextlib.suppress(OSError, safepaths.UnsafePath):
        started = start_time(pgid)
        text = "" if started is None else repr(started)
        safepaths.write_file(job_dir, f"{HOSTS_RECORD}/{pgid}", text.encode(), create_parents=True)


def forget_group(job_dir: Path, pgid: int) -> None:
    """Drop the record of a group that has ended."""
    with contextlib.suppress(OSError, safepaths.UnsafePath):
        safepaths.remove(job_dir, f"{HOSTS_RECORD}/{pgid}")


def kill_recorded_hosts(jobs_dir: Path) -> list[int]:
    """SIGKILL the host process groups a killed server left running; returns their ids."""
    killed = []
    for record in _host_records(jobs_dir):
        try:
            pgid = int(record.rsplit("/", 1)[1])
            started = (safepaths.read_regular(jobs_dir, record, 64) or b"").decode().strip()
        except (OSError, ValueError, safepaths.UnsafePath):
            continue
        now = start_time(pgid)
        # A leader gone with its group still alive keeps the id taken, so the group is ours;
        # a live process with another start time got the id after our group had ended.
        if (now is None and live_members(pgid)) or (now is not None and _same(now, started)):
            kill_group(pgid, signal.SIGKILL)
            wait_group_gone(pgid)
            killed.append(pgid)
        with contextlib.suppress(OSError, safepaths.UnsafePath):
            safepaths.remove(jobs_dir, record)
    return killed


def _same(now: float, recorded: str) -> bool:
    try:
        return abs(now - float(recorded)) < _SAME_START_S
    except ValueError:
        return False


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
