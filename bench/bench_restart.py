"""How long a server takes to start on a state folder that holds a course's worth of work.

Fills a fresh state folder with N job records (as a finished job leaves them) and, with
`--objects`, M small S3 objects stored through a running server; then times `start` (until the
server answers) against a start on an empty folder, median of several runs, in one run.

    .venv/bin/python bench/bench_restart.py [--jobs 100] [--objects 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

from localcloud import config, control, credentials
from localcloud.jobs import records
from localcloud.jobs.model import TrainingJob


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def finished_job(name: str) -> TrainingJob:
    """A record like the ones a completed course job leaves."""
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "x/sagemaker-xgboost:3.0-5"},
        "RoleArn": config.role_arn(),
        "OutputDataConfig": {"S3OutputPath": "s3://bench/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": {"num_round": "100", "max_depth": "5"},
        "Tags": [{"Key": "course", "Value": "bench"}],
    }
    job = TrainingJob(request=request, region="us-east-1", account=config.ACCOUNT_ID)
    job.training_start, job.training_end = job.creation_time, job.creation_time + 2
    job.model_uri = f"s3://bench/out/{name}/output/model.tar.gz"
    job.finish("Completed", "Completed")
    return job


def fill(home: Path, jobs: int, objects: int) -> None:
    for i in range(jobs):
        job = finished_job(f"bench-job-{i:04d}")
        records.write(home / "records", job.name, records.dumps(job))
    if not objects:
        return
    endpoint = control.ensure_running(home, free_port())
    s3 = credentials.load(home).boto_session().client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="bench")
    for i in range(objects):
        s3.put_object(Bucket="bench", Key=f"data/part-{i:05d}.csv", Body=f"{i},1\n".encode())
    control.stop(home)


def time_start(home: Path) -> float:
    started = time.perf_counter()
    control.ensure_running(home, free_port())
    seconds = time.perf_counter() - started
    control.stop(home)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--objects", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lc-bench-restart-") as scratch:
        full, empty = Path(scratch, "full"), Path(scratch, "empty")
        fill(full, args.jobs, args.objects)
        time_start(empty)  # the folder's first start makes its credentials
        timings: dict[str, list[float]] = {"empty": [], "full": []}
        for _ in range(args.runs):
            timings["empty"].append(time_start(empty))
            timings["full"].append(time_start(full))
    base, loaded = (statistics.median(timings[k]) for k in ("empty", "full"))
    print(f"start, empty state folder:      {base:.2f} s (median of {args.runs})")
    print(
        f"start, {args.jobs} jobs + {args.objects} objects: {loaded:.2f} s "
        f"(ratio {loaded / base:.2f})"
    )


if __name__ == "__main__":
    main()
