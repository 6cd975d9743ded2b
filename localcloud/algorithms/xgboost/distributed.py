"""Multi-host XGBoost over xgboost's collective (rabit), as the container does it (§4.5).

Two rounds, each with a tracker on the first host taking part: all hosts first tell each other
whether they received data, then only the hosts with data train together. The ports come from
the cluster in LOCALCLOUD_XGB_PORTS ("<first round>,<training round>").
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from xgboost import collective
from xgboost.tracker import RabitTracker

TRACKER_HOST = "127.0.0.1"
BOOTSTRAP_TIMEOUT_S = 300


def ports() -> tuple[int, int]:
    """The two tracker ports the cluster chose for this job."""
    first, second = os.environ.get("LOCALCLOUD_XGB_PORTS", "9099,9100").split(",")
    return int(first), int(second)


@contextlib.contextmanager
def communicator(hosts: list[str], current: str, port: int) -> Iterator[None]:
    """Join a rabit group of `hosts`; the first host runs the tracker. Ranks follow host order."""
    tracker = None
    if current == hosts[0]:
        tracker = RabitTracker(
            n_workers=len(hosts),
            host_ip=TRACKER_HOST,
            port=port,
            sortby="task",
            timeout=BOOTSTRAP_TIMEOUT_S,
        )
        tracker.start()
    else:
        wait_listening(port, BOOTSTRAP_TIMEOUT_S)
    args = {
        "dmlc_communicator": "rabit",
        "dmlc_tracker_uri": TRACKER_HOST,
        "dmlc_tracker_port": port,
        "dmlc_task_id": current,
        "dmlc_timeout": BOOTSTRAP_TIMEOUT_S,
        "dmlc_retry": 30,
    }
    try:
        with collective.CommunicatorContext(**args):
            yield
    finally:
        if tracker is not None:
            tracker.wait_for(BOOTSTRAP_TIMEOUT_S)
            tracker.free()


def _listening_ports() -> set[int]:
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def wait_listening(port: int, timeout_s: float) -> None:
    """Wait until the tracker listens, without connecting (a stray connection upsets it).

    Without /proc (not Linux) this returns at once and xgboost's own retries take over.
    """
    if not Path("/proc/net/tcp").exists():
        return
    deadline = time.monotonic() + timeout_s
    while port not in _listening_ports() and time.monotonic() < deadline:
        time.sleep(0.05)


def hosts_with_data(hosts: list[str], current: str, has_data: bool, port: int) -> list[str]:
    """Every host learns which hosts received data (first round)."""
    flags = np.zeros(len(hosts), dtype=np.float64)
    flags[hosts.index(current)] = 1.0 if has_data else 0.0
    with communicator(hosts, current, port):
        flags = collective.allreduce(flags, collective.Op.SUM)
    return [h for h, flag in zip(hosts, flags, strict=True) if flag > 0]
