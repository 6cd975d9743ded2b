"""Where a host's lines go: the CloudWatch event, the host's log file, the job's metrics."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Protocol

from localcloud.hosts import safepaths
from localcloud.jobs.model import TrainingJob


class LogWriter(Protocol):
    """Where host output goes: one CloudWatch Logs event per line."""

    def __call__(self, region: str, stream: str, timestamp_ms: int, message: str) -> None: ...


class LogSink:
    """log_sink(host, line) for one job: CloudWatch event, host log file, metrics."""

    def __init__(
        self, job: TrainingJob, job_dir: Path, writer: LogWriter, lock: threading.Condition
    ) -> None:
        self._job = job
        self._dir = job_dir
        self._writer = writer
        self._lock = lock
        self._epoch = int(job.training_start or time.time())
        self._io = threading.Lock()

    def __call__(self, host: str, line: str) -> None:
        line = line.rstrip("\r\n")
        now = time.time()
        message = line.replace("\t", "#011")  # what CloudWatch shows for a tab (contract §4.3)
        with self._io:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            with os.fdopen(safepaths.open_no_follow(self._dir, f"{host}.log", flags), "a") as log:
                log.write(line + "\n")  # never through a link a script left at that name
            stream = f"{self._job.name}/{host}-{self._epoch}"
            self._writer(self._job.region, stream, int(now * 1000), message)
        if self._job.metric_rules:
            with self._lock:
                self._job.record_metrics(message, now)
