"""A training job's log, a 2.5 MB line among its lines, read back alike by the SDK after a clean
restart of the server and after a SIGKILL of it (the events are on disk, not in its memory)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_client import JOB_CHILD

from localcloud import config, control
from localcloud.server.logs_store import MAX_EVENT_BYTES

pytestmark = pytest.mark.localcloud

PYTHON = sys.executable
LINES = 5000
LONG_LINE = "a€" * (int(2.5 * 1024 * 1024) // 4)  # 2.5 MiB of UTF-8; a cut may not split the €
SCRIPT = f"""
for i in range({LINES}):
    print(f"line {{i}}")
print("a€" * {len(LONG_LINE) // 2})
print("after the long line", flush=True)
"""

READER = """
import contextlib, io, json, sys
import boto3, sagemaker
name, out = sys.argv[1], sys.argv[2]
group = "/aws/sagemaker/TrainingJobs"
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    sagemaker.Session().logs_for_job(name, wait=False)  # the SDK's own reader, as fit() uses it
logs = boto3.client("logs")
streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=name + "/")
events = {}
for stream in streams["logStreams"]:
    token, got = None, []
    while True:
        page = logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True,
            **({"nextToken": token} if token else {}),
        )
        if not page["events"]:
            break
        got += page["events"]
        token = page["nextForwardToken"]
    events[stream["logStreamName"]] = got
streams.pop("ResponseMetadata")
with open(out, "w") as handle:
    json.dump({"printed": printed.getvalue(), "streams": streams, "events": events}, handle)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(home: Path, code: str, *args: str) -> str:
    """Run python code through `localcloud run` (this process may be wired to another server)."""
    done = subprocess.run(
        [PYTHON, "-m", "localcloud", "run", "--home", str(home), "--", PYTHON, "-c", code, *args],
        cwd=config.REPO_ROOT,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _read(home: Path, name: str, out: Path) -> dict:
    _run(home, textwrap.dedent(READER), name, str(out))
    return json.loads(out.read_text())


def _block(messages: list[str]) -> list[str]:
    """The script's own lines, from its first line to its last."""
    start = messages.index("line 0")
    return messages[start : messages.index("after the long line", start) + 1]


def test_a_jobs_log_is_read_back_alike_after_a_restart_and_after_a_kill(tmp_path):
    home, port, name = tmp_path / "home", _free_port(), "many-lines"
    control.ensure_running(home, port)
    try:
        status = _run(home, JOB_CHILD, name, SCRIPT)
        assert status.startswith("Completed"), status
        first = _read(home, name, tmp_path / "first.json")
        [stream] = first["events"]
        messages = [e["message"] for e in first["events"][stream]]
        block = _block(messages)
        assert block[:LINES] == [f"line {i}" for i in range(LINES)]
        pieces = block[LINES:-1]
        assert len(pieces) == 3 and "".join(pieces) == LONG_LINE
        assert all(len(p.encode()) <= MAX_EVENT_BYTES for p in pieces)
        assert _block(first["printed"].splitlines()) == block  # what logs_for_job printed

        assert control.stop(home)
        control.ensure_running(home, port)
        assert _read(home, name, tmp_path / "restarted.json") == first

        os.kill(control.server_pid(home), signal.SIGKILL)
        control.ensure_running(home, port)
        assert _read(home, name, tmp_path / "killed.json") == first
    finally:
        control.stop(home)
    assert not any(name in p.name for p in (home / "logs").iterdir())  # files are numbered
