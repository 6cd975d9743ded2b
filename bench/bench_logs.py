"""What a training job's log costs the server: RSS before and after a job printing a million lines
(target: it grows by less than 100 MB), and how long GetLogEvents pages take from the disk store.

Starts a server in a temporary state folder (`localcloud.control.ensure_running`), runs a small
warm-up job, then one printing N lines, sampling the server's RSS while it runs; then times
GetLogEvents: the first page, a page found by startTime in the middle, the last page
(startFromHead false), and a read of the whole stream page by page.

    .venv/bin/python bench/bench_logs.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from localcloud import config, control, credentials
from localcloud.testing import PT_IMAGE, source_tar

GROUP = config.LOG_GROUP


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _clients(home: Path, endpoint: str) -> tuple[Any, Any, Any]:
    import boto3

    secret = credentials.load(home)
    session = boto3.session.Session(
        aws_access_key_id=secret.access_key_id,
        aws_secret_access_key=secret.secret_access_key,
        aws_session_token=secret.session_token,
        region_name=config.DEFAULT_REGION,
    )
    return tuple(session.client(s, endpoint_url=endpoint) for s in ("s3", "sagemaker", "logs"))


def _run_job(s3: Any, sm: Any, name: str, lines: int) -> float:
    """Run a script-mode job printing `lines` lines; its wall time in seconds."""
    script = f"for i in range({lines}):\n    print(f'step {{i}} loss=0.{{i % 997:03d}}')\n"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="data/x.csv", Body=b"1,2\n")
    s3.put_object(Bucket=name, Key="src/sourcedir.tar.gz", Body=source_tar({"train.py": script}))
    started = time.monotonic()
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": PT_IMAGE, "TrainingInputMode": "File"},
        RoleArn=config.role_arn(),
        HyperParameters={
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": f'"s3://{name}/src/sourcedir.tar.gz"',
        },
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{name}/data"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{name}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(0.5)
    if job["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"job {name} ended {job['TrainingJobStatus']}: {job.get('FailureReason')}")
    return time.monotonic() - started


class RssSampler:
    """The server's RSS every 0.2 s, from a thread, until stopped."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.process.memory_info().rss


def _timed(call: Any, runs: int = 5) -> tuple[float, Any]:
    """Median ms of `runs` calls, and the last answer."""
    times, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        answer = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    mb = 1024 * 1024
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        endpoint = control.ensure_running(home, _free_port())
        try:
            s3, sm, logs = _clients(home, endpoint)
            _run_job(s3, sm, "warm-up", 1000)  # the server's lazy imports and first-use caches
            sampler = RssSampler(control.server_pid(home) or 0)
            before = sampler.peak
            seconds = _run_job(s3, sm, "million-lines", args.lines)
            after = sampler.stop()
            print(
                f"job printing {args.lines:,} lines: {seconds:.1f} s "
                f"({args.lines / seconds:,.0f} lines/s)"
            )
            print(
                f"server RSS before {before / mb:.1f} MB, after {after / mb:.1f} MB, "
                f"peak {sampler.peak / mb:.1f} MB: grew {(after - before) / mb:+.1f} MB "
                f"(target < 100 MB)"
            )
            on_disk = sum(p.stat().st_size for p in (home / "logs").iterdir())
            print(f"log store on disk: {on_disk / mb:.1f} MB")
            [stream] = logs.describe_log_streams(
                logGroupName=GROUP, logStreamNamePrefix="million-lines/"
            )["logStreams"]
            name = stream["logStreamName"]
            middle = (stream["firstEventTimestamp"] + stream["lastEventTimestamp"]) // 2
            cases = {
                "first page (startFromHead)": {"startFromHead": True},
                "page at a startTime mid-stream": {"startFromHead": True, "startTime": middle},
                "last page (startFromHead false)": {},
                "first page, limit 100": {"startFromHead": True, "limit": 100},
            }
            for label, extra in cases.items():
                ms, page = _timed(
                    lambda e=extra: logs.get_log_events(logGroupName=GROUP, logStreamName=name, **e)
                )
                print(f"GetLogEvents {label}: {ms:.1f} ms for {len(page['events']):,} events")
            started, token, count, pages = time.perf_counter(), None, 0, 0
            while True:
                page = logs.get_log_events(
                    logGroupName=GROUP,
                    logStreamName=name,
                    startFromHead=True,
                    **({"nextToken": token} if token else {}),
                )
                pages += 1
                if not page["events"]:
                    break
                count, token = count + len(page["events"]), page["nextForwardToken"]
            total = time.perf_counter() - started
            print(
                f"whole stream: {count:,} events in {pages} pages, {total:.1f} s "
                f"({total / pages * 1000:.0f} ms a page)"
            )
            print(
                f"server RSS after reading it all: "
                f"{RssSampler(control.server_pid(home) or 0).stop() / mb:.1f} MB"
            )
        finally:
            control.stop(home)


if __name__ == "__main__":
    main()
