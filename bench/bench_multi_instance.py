"""2-host vs 1-host PyTorch script-mode job through Cluster, on Titanic features replicated.

Usage: python bench/bench_multi_instance.py [--rows 200000] [--runs 3] [--epochs 3]
                                              [--hidden 512,256] [--batch-size 4096]
Runs scripts/train_nn.py (data-parallel over SM_HOSTS/MASTER_ADDR) as the entry point and prints
the median wall time of each job and the speed-up; asserts nothing. Each host is one process with
one thread, so on this 2-core machine two hosts can at best halve the training part.

Parallelism pays only when a step's arithmetic outweighs its fixed cost (data loading, the
gradient allreduce): hence a wider network and a larger batch than the course's (64,32 and 64),
for which a second host gives no speed-up at all (`--hidden 64,32 --batch-size 1024` shows it).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from localcloud.hosts.cluster import Cluster
from localcloud.testing import PT_IMAGE, FolderS3, channel

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    """A training script of scripts/ as a module: they are uploaded code, not a package."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_data(s3: FolderS3, rows: int, work: Path) -> None:
    """train_data.npz / val_data.npz from the course CSV, training rows replicated to `rows`."""
    paths = load_script("train_nn").prepare_npz(ROOT / "data" / "titanic_train.csv", work / "npz")
    with np.load(paths["train"], allow_pickle=False) as npz:
        arrays = dict(npz)
    reps = -(-rows // len(arrays["y_train"]))
    arrays["X_train"] = np.tile(arrays["X_train"], (reps, 1))[:rows]
    arrays["y_train"] = np.tile(arrays["y_train"], reps)[:rows]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    s3.put("bkt", "data/train/train_data.npz", buf.getvalue())
    s3.put("bkt", "data/val/val_data.npz", paths["val"].read_bytes())
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as archive:
        archive.add(ROOT / "scripts" / "train_nn.py", arcname="train_nn.py")
    s3.put("bkt", "code/sourcedir.tar.gz", tar.getvalue())


def run_job(
    work: Path, s3: FolderS3, name: str, hosts: int, epochs: int, hidden: str, batch_size: int
) -> float:
    request = {
        "TrainingJobName": name,
        "Region": "us-east-1",
        "AlgorithmSpecification": {"TrainingImage": PT_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {
            "train": '"train_data.npz"',
            "val": '"val_data.npz"',
            "epochs": str(epochs),
            "batch_size": str(batch_size),
            "hidden": f'"{hidden}"',
            "learning_rate": "0.001",
            "sagemaker_program": '"train_nn.py"',
            "sagemaker_submit_directory": '"s3://bkt/code/sourcedir.tar.gz"',
        },
        "InputDataConfig": [
            channel("train", "s3://bkt/data/train/"),
            channel("val", "s3://bkt/data/val/"),
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": hosts},
    }
    lines: list[str] = []
    start = time.perf_counter()
    cluster = Cluster(request, work / "jobs" / name, s3, lambda h, line: lines.append(line))
    cluster.prepare()
    cluster.start()
    cluster.wait(1800)
    outcome = cluster.outcome()
    if outcome.failure_reason:
        raise SystemExit(outcome.failure_reason + "\n" + "\n".join(lines[-20:]))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hidden", default="512,256", help="hidden layer sizes")
    parser.add_argument("--batch-size", type=int, default=4096, help="global batch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        s3 = FolderS3(work / "s3")
        make_data(s3, args.rows, work)
        times: dict[int, list[float]] = {1: [], 2: []}
        for run in range(args.runs):
            for hosts in (1, 2):
                name = f"nn-{hosts}-{run}"
                times[hosts].append(
                    run_job(work, s3, name, hosts, args.epochs, args.hidden, args.batch_size)
                )
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(
        f"train_nn.py, {args.rows} rows, {args.epochs} epochs, hidden {args.hidden}, "
        f"global batch {args.batch_size}, {args.runs} runs"
    )
    print(f"1 host : median {one:.2f} s  {[round(t, 2) for t in times[1]]}")
    print(f"2 hosts: median {two:.2f} s  {[round(t, 2) for t in times[2]]}")
    print(f"speed-up 1→2 hosts: {one / two:.2f}x")


if __name__ == "__main__":
    main()
