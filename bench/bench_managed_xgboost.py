"""How long a learner waits for the course's managed XGBoost job, against running the script itself.

Runs `XGBoost(entry_point="train_xgboost.py", source_dir=scripts).fit(logs=True)` on localcloud and
downloads model.tar.gz, N times; runs `python scripts/train_xgboost.py` N times as a subprocess;
prints both medians, their ratio and the server's RSS. Target: managed median <= 5 s.

    .venv/bin/python bench/bench_managed_xgboost.py [--runs 5] [--home DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from localcloud.testing import COURSE_XGBOOST_HYPERPARAMETERS as HYPERPARAMETERS

REPO = Path(__file__).resolve().parents[1]


def direct_run(workdir: Path) -> float:
    """Seconds for one run of the training script as a plain subprocess."""
    argv = [sys.executable, str(REPO / "scripts" / "train_xgboost.py")]
    for key, value in HYPERPARAMETERS.items():
        argv += [f"--{key}", str(value)]
    argv[-1] = str(REPO / "data" / "titanic_train.csv")
    argv += ["--model_dir", str(workdir)]
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=workdir)
    return time.perf_counter() - start


def managed_run(session: object, role: str, train_uri: str, workdir: Path, show: bool) -> float:
    """Seconds for one managed fit(logs=True) plus the model download."""
    from sagemaker.s3 import S3Downloader
    from sagemaker.xgboost import XGBoost

    estimator = XGBoost(
        entry_point="train_xgboost.py",
        source_dir=str(REPO / "scripts"),
        framework_version="1.7-1",
        role=role,
        instance_count=1,
        instance_type="ml.m5.large",
        hyperparameters=dict(HYPERPARAMETERS),  # the SDK adds its keys to the dict it gets
        sagemaker_session=session,
    )
    out = contextlib.nullcontext() if show else contextlib.redirect_stdout(io.StringIO())
    start = time.perf_counter()
    with out:
        estimator.fit({"train": train_uri}, logs=True)
        S3Downloader.download(estimator.model_data, str(workdir), sagemaker_session=session)
    elapsed = time.perf_counter() - start
    if not (workdir / "model.tar.gz").exists():
        raise SystemExit("model.tar.gz was not downloaded")
    return elapsed


def server_rss_mb(home: Path) -> float | None:
    """Resident memory of the server process, in MB."""
    import psutil

    from localcloud import control

    pid = control.server_pid(home)
    return psutil.Process(pid).memory_info().rss / 1e6 if pid else None


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--home", help="state folder (default: a temporary one, stopped after)")
    args = parser.parse_args()

    import localcloud
    from localcloud import control

    temp = None if args.home else tempfile.TemporaryDirectory(prefix="lc-bench-")
    home = Path(args.home or temp.name).resolve()  # type: ignore[union-attr]
    try:
        conn = localcloud.connect(home)
        import sagemaker

        session = sagemaker.Session(boto_session=conn.boto_session)
        bucket = session.default_bucket()
        train_uri = session.upload_data(
            str(REPO / "data" / "titanic_train.csv"), bucket, "bench/titanic/train"
        )
        direct, managed = [], []
        with tempfile.TemporaryDirectory() as scratch:
            for i in range(args.runs):
                run_dir = Path(scratch) / f"d{i}"
                run_dir.mkdir()
                direct.append(direct_run(run_dir))
                run_dir = Path(scratch) / f"m{i}"
                run_dir.mkdir()
                managed.append(managed_run(session, conn.role_arn, train_uri, run_dir, i == 0))
                print(f"run {i + 1}: managed {managed[-1]:.2f} s, direct {direct[-1]:.2f} s")
        m_med, d_med = statistics.median(managed), statistics.median(direct)
        rss = server_rss_mb(home)
        print(f"managed fit()+download median: {m_med:.2f} s over {args.runs} runs (target <= 5 s)")
        print(f"direct script median:          {d_med:.2f} s")
        print(f"ratio managed/direct:          {m_med / d_med:.2f}x")
        if rss is not None:
            print(f"server RSS:                    {rss:.0f} MB (target < 300 MB)")
    finally:
        if temp is not None:
            control.stop(home)
            temp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
