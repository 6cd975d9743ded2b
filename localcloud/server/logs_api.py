"""CloudWatch Logs for training jobs: host lines written straight into moto's Logs backend.

moto's reads already behave as contract §6 needs (checked by tests/localcloud/test_logs.py):
GetLogEvents treats startTime as inclusive, keeps equal timestamps in write order and ends with an
empty page that carries the same nextForwardToken; DescribeLogStreams sends no nextToken when
everything fits in `limit`. So only the write side lives here.
"""

from __future__ import annotations

import threading

from localcloud.config import LOG_GROUP


class MotoLogWriter:
    """LogWriter appending to `/aws/sagemaker/TrainingJobs` in moto, creating what is missing."""

    def __init__(self, account: str) -> None:
        self._account = account
        self._lock = threading.Lock()

    def __call__(self, region: str, stream: str, timestamp_ms: int, message: str) -> None:
        from moto.logs.models import logs_backends

        backend = logs_backends[self._account][region]
        with self._lock:
            group = backend.groups.get(LOG_GROUP)
            if group is None:
                group = backend.create_log_group(LOG_GROUP, tags={})
            if stream not in group.streams:
                group.create_log_stream(stream)
            backend.put_log_events(
                LOG_GROUP, stream, [{"timestamp": timestamp_ms, "message": message}]
            )
