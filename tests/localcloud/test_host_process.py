"""Host process groups found and ended through psutil: live members, start times, records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from localcloud.hosts import process, processtree
from localcloud.testing import wait_for

# The leader starts a child in its own group, prints the child's pid, then exits (or sleeps).
ORPHANING = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print(child.pid, flush=True)\n"
    "if sys.argv[1] == 'stay':\n"
    "    time.sleep(120)\n"
)


def _group(mode: str) -> tuple[subprocess.Popen[str], int]:
    """A process group like a host's: (its leader, the pid of a child in the same group)."""
    leader = subprocess.Popen(
        [sys.executable, "-c", ORPHANING, mode],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    return leader, child


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_live_members_and_start_time_follow_the_group() -> None:
    leader, child = _group("stay")
    try:
        assert os.getpgid(child) == leader.pid
        assert processtree.live_members(leader.pid)
        assert processtree.start_time(leader.pid) == psutil.Process(leader.pid).create_time()
        processtree.kill_group(leader.pid, signal.SIGKILL)
        leader.wait(timeout=30)
        processtree.wait_group_gone(leader.pid, timeout_s=30)
        assert not processtree.live_members(leader.pid)
        assert processtree.start_time(leader.pid) is None and _gone(child)
    finally:
        processtree.kill_group(leader.pid, signal.SIGKILL)
        leader.wait(timeout=30)


def test_group_whose_leader_is_gone_is_still_killed(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    leader, child = _group("leave")
    try:
        (jobs / "job" / process.HOSTS_RECORD).mkdir(parents=True)
        process.record_group(jobs / "job", leader.pid, "f" * 32)
        recorded = (jobs / "job" / process.HOSTS_RECORD / str(leader.pid)).read_text()
        started = psutil.Process(leader.pid).create_time()
        assert json.loads(recorded) == {"started": started, "token": "f" * 32}
        leader.wait(timeout=30)  # reaped: only the child keeps the group (and its id) alive
        assert processtree.start_time(leader.pid) is None and processtree.live_members(leader.pid)
        assert process.kill_recorded_hosts(jobs) == [leader.pid]
        assert wait_for(lambda: _gone(child), timeout=30)
        assert list((jobs / "job" / process.HOSTS_RECORD).iterdir()) == []
        # control: a record of a group with nothing left alive kills nothing, and is dropped
        (jobs / "job" / process.HOSTS_RECORD / str(leader.pid)).write_text(recorded)
        assert process.kill_recorded_hosts(jobs) == []
        assert list((jobs / "job" / process.HOSTS_RECORD).iterdir()) == []
    finally:
        processtree.kill_group(leader.pid, signal.SIGKILL)
        leader.wait(timeout=30)
