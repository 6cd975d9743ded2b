"""Wall time of a 1-host built-in XGBoost job (the lesson's settings) through Cluster.

Usage: python bench/bench_builtin_xgboost.py [--runs 3]. Prints figures; asserts nothing.
The data is the course CSV as the lesson uploads it (header and text columns included).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from localcloud.hosts.cluster import Cluster
from localcloud.testing import XGB_IMAGE, FolderS3, channel

ROOT = Path(__file__).resolve().parents[1]

LESSON_HPS = {
    "max_depth": "5",
    "eta": "0.1",
    "subsample": "0.8",
    "colsample_bytree": "0.8",
    "num_round": "100",
}


def run_once(work: Path, index: int) -> tuple[float, float]:
    """One job: (wall seconds prepare→exit, host process seconds)."""
    s3 = FolderS3(work / "s3")
    s3.put("bkt", "data/titanic_train.csv", (ROOT / "data" / "titanic_train.csv").read_bytes())
    request = {
        "TrainingJobName": f"xgb-{index}",
        "Region": "us-east-1",
        "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": LESSON_HPS,
        "InputDataConfig": [
            channel("train", "s3://bkt/data/titanic_train.csv", content_type="csv")
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    start = time.perf_counter()
    cluster = Cluster(request, work / "jobs" / f"xgb-{index}", s3, lambda host, line: None)
    cluster.prepare()
    cluster.start()
    cluster.wait(600)
    outcome = cluster.outcome()
    cluster.collect(s3, "s3://bkt/out")
    if outcome.failure_reason:
        raise SystemExit(outcome.failure_reason)
    return time.perf_counter() - start, outcome.wall_seconds["algo-1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_once(Path(tmp), i) for i in range(args.runs)]
    walls = [r[0] for r in results]
    hosts = [r[1] for r in results]
    print(
        f"built-in XGBoost, 1 host, titanic_train.csv (712 rows + header), 100 rounds, "
        f"{args.runs} runs"
    )
    print(
        f"job wall (prepare..collect): median {statistics.median(walls):.2f} s "
        f"(min {min(walls):.2f}, max {max(walls):.2f})"
    )
    print(f"host process: median {statistics.median(hosts):.2f} s")


if __name__ == "__main__":
    main()
