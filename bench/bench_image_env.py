"""Image environments: the first XGBoost 3.2-0 job (which needs the env built) vs later jobs.

Usage: .venv/bin/python bench/bench_image_env.py [--runs 3] [--no-cold]
Builds the env twice in a temporary cache, with an empty pip cache (cold) and then with the pip
cache the first build filled (warm), once each; then times ModelTrainer jobs with the env and,
for comparison, with the server's own Python (an image without an env). Needs PyPI and a
Python 3.12; prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com"
ENV_IMAGE = f"{ECR}/sagemaker-xgboost:3.2-0"
NO_ENV_IMAGE = f"{ECR}/sagemaker-xgboost:3.0-5"  # never built in the bench's cache


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-pip-cache build")
    args = parser.parse_args()

    from localcloud.images import catalog, envs

    entry = catalog.lookup(ENV_IMAGE)
    work = Path(tempfile.mkdtemp(prefix="bench-image-env-"))
    pip_cache = work / "pip-cache"
    quiet = lambda _line: None  # noqa: E731
    builds: dict[str, float] = {}
    # --no-cold: the warm build uses the user's own pip cache
    pip_env = {} if args.no_cold else {"PIP_CACHE_DIR": str(pip_cache)}
    cache = work / "images"
    try:
        if not args.no_cold:
            with environ(**pip_env):
                builds["cold"] = timed(lambda: envs.pull(entry, work / "cold", log=quiet))
        with environ(**pip_env):
            builds["warm"] = timed(lambda: envs.pull(entry, cache, log=quiet))
        with environ(LOCALCLOUD_IMAGE_CACHE=str(cache)):  # the server reads it at each job
            first, with_env, without = jobs(work, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    w = builds["warm"]
    print(f"runs={args.runs} (seconds, measured on this machine; python {sys.version.split()[0]})")
    if "cold" in builds:
        print(f"env build, empty pip cache (cold)       {builds['cold']:7.1f}")
    print(f"env build, filled pip cache (warm)      {w:7.1f}")
    print(f"first job: warm build + its job         {w + first:7.1f}")
    print(f"later jobs in the env (median)          {statistics.median(with_env):7.2f}")
    print(f"jobs with the server's Python (median)  {statistics.median(without):7.2f}")


def jobs(work: Path, runs: int) -> tuple[float, list[float], list[float]]:
    """(first job's seconds, later jobs with the env, jobs without one) on a fresh server."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, InputData, SourceCode, StoppingCondition
    from sagemaker.train import ModelTrainer

    import localcloud
    from localcloud import control

    home = work / "home"
    connection = localcloud.connect(home)
    try:
        session = Session(boto_session=connection.boto_session)
        bucket = session.default_bucket()
        train = session.upload_data(str(ROOT / "data" / "titanic_train.csv"), bucket, "bench")
        source = work / "src"
        source.mkdir()
        shutil.copy(ROOT / "scripts" / "train_xgboost.py", source)

        def job(image: str) -> Callable[[], None]:
            return lambda: ModelTrainer(
                role=connection.role_arn,
                sagemaker_session=session,
                training_image=image,
                compute=Compute(instance_type="ml.m5.large", instance_count=1),
                stopping_condition=StoppingCondition(max_runtime_in_seconds=900),
                source_code=SourceCode(source_dir=str(source), entry_script="train_xgboost.py"),
                hyperparameters={"train": "titanic_train.csv"},
                input_data_config=[InputData(channel_name="train", data_source=train)],
            ).train(wait=True, logs=False)

        first = timed(job(ENV_IMAGE))  # the env's files are read from disk for the first time
        with_env, without = [], []
        for _ in range(runs):  # alternating, so both sides see the same machine
            with_env.append(timed(job(ENV_IMAGE)))
            without.append(timed(job(NO_ENV_IMAGE)))
        return first, with_env, without
    finally:
        control.stop(home)


if __name__ == "__main__":
    main()
