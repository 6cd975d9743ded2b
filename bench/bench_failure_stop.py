"""How long a failing host takes to stop the job's other hosts, through Cluster.

Usage: python bench/bench_failure_stop.py [--runs 3] [--hosts 2]. Prints figures; asserts
nothing. algo-2 raises at once while every other host sleeps for ten minutes; the job ends only
when the others have been stopped (SIGTERM, SIGKILL after the grace). The figure the tests used
to assert (the whole job under 40 s) is printed here instead.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from localcloud.hosts.cluster import Cluster
from localcloud.testing import PT_IMAGE, FolderS3, source_tar

TRAIN = b"""
import os, time
if os.environ["SM_CURRENT_HOST"] == "algo-2":
    raise RuntimeError("algo-2 broke")
time.sleep(600)
"""


def run_once(work: Path, s3: FolderS3, index: int, hosts: int) -> tuple[float, float]:
    """One job: (seconds start→every host reaped, longest host wall seconds)."""
    name = f"stop-{index}"
    request = {
        "TrainingJobName": name,
        "Region": "us-east-1",
        "AlgorithmSpecification": {"TrainingImage": PT_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": '"s3://bkt/code/sourcedir.tar.gz"',
        },
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": hosts},
    }
    cluster = Cluster(request, work / "jobs" / name, s3, lambda host, line: None)
    cluster.prepare()
    start = time.perf_counter()
    cluster.start()
    if not cluster.wait(300):
        cluster.stop(0)
        raise SystemExit("the other hosts were not stopped within 300 s")
    elapsed = time.perf_counter() - start
    outcome = cluster.outcome()
    if outcome.failed_host != "algo-2":
        raise SystemExit(f"unexpected outcome: {outcome}")
    return elapsed, max(outcome.wall_seconds.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        s3 = FolderS3(work / "s3")
        s3.put("bkt", "code/sourcedir.tar.gz", source_tar({"train.py": TRAIN.decode()}))
        results = [run_once(work, s3, i, args.hosts) for i in range(args.runs)]
    jobs = [r[0] for r in results]
    walls = [r[1] for r in results]
    print(f"{args.hosts} hosts, algo-2 fails at once, the others sleep 600 s, {args.runs} runs")
    print(
        f"start → all hosts reaped: median {statistics.median(jobs):.2f} s "
        f"(min {min(jobs):.2f}, max {max(jobs):.2f})"
    )
    print(f"longest host wall: median {statistics.median(walls):.2f} s")


if __name__ == "__main__":
    main()
