"""What the guard (browser, Host and SigV4 checks) costs a learner: requests and whole fit() calls.

Starts two servers in temporary state folders, `LocalCloudServer(settings)` and
`LocalCloudServer(settings, guard=False)`, each in its own child process (moto keeps its backends
in process globals, so two servers cannot share one process). Then, alternating between them:
the course's managed XGBoost `fit()` (script mode, logs on) N times, and DescribeTrainingJob of
the Completed job that fit left, M times. Prints medians with the checks on and off, and on/off.

    .venv/bin/python bench/bench_auth.py [--runs 200] [--fits 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from localcloud.testing import COURSE_XGBOOST_HYPERPARAMETERS as HYPERPARAMETERS

REPO = Path(__file__).resolve().parents[1]


def serve(home: str, guard: bool, pipe: Connection) -> None:
    """Child process: one server, its endpoint sent up the pipe, stopped when the pipe says so."""
    from localcloud import environ
    from localcloud.config import ServerSettings
    from localcloud.server.app import LocalCloudServer

    clean = environ.for_server(os.environ)  # as `localcloud serve` does
    os.environ.clear()
    os.environ.update(clean)
    server = LocalCloudServer(ServerSettings.from_env(Path(home)), guard=guard)
    server.start()
    pipe.send(server.endpoint)
    try:
        pipe.recv()  # anything, or EOF when the parent is gone
    except EOFError:
        pass
    finally:
        server.stop()


@dataclass
class Side:
    """One server and the SDK session talking to it."""

    label: str
    home: Path
    endpoint: str
    process: Any
    pipe: Connection
    session: Any = None
    train_uri: str = ""
    job_name: str = ""

    def use(self) -> None:
        """Send the botocore clients made from now on to this server."""
        from localcloud import client, environ

        client.install(self.endpoint)
        os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(environ.write_sdk_config(self.home))


def start_side(label: str, guard: bool, scratch: Path) -> Side:
    """A server in its own state folder, in a child process."""
    home = scratch / label
    home.mkdir()
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=serve, args=(str(home), guard, child), daemon=True
    )
    process.start()
    if not parent.poll(120):
        raise SystemExit(f"the {label} server did not start")
    return Side(label, home, parent.recv(), process, parent)


def connect(side: Side) -> None:
    """An SDK session signed with the side's own credentials, and the course's training data."""
    import boto3
    import sagemaker

    from localcloud import config, credentials

    side.use()
    secret = credentials.load(side.home)
    boto_session = boto3.session.Session(
        aws_access_key_id=secret.access_key_id,
        aws_secret_access_key=secret.secret_access_key,
        aws_session_token=secret.session_token,
        region_name=config.DEFAULT_REGION,
    )
    side.session = sagemaker.Session(boto_session=boto_session)
    bucket = side.session.default_bucket()
    side.train_uri = side.session.upload_data(
        str(REPO / "data" / "titanic_train.csv"), bucket, "bench/titanic/train"
    )


def fit_once(side: Side) -> float:
    """Seconds for one managed fit(logs=True) of the course's XGBoost script."""
    from sagemaker.xgboost import XGBoost

    from localcloud import config

    side.use()
    estimator = XGBoost(
        entry_point="train_xgboost.py",
        source_dir=str(REPO / "scripts"),
        framework_version="1.7-1",
        role=config.role_arn(),
        instance_count=1,
        instance_type="ml.m5.large",
        hyperparameters=dict(HYPERPARAMETERS),  # the SDK adds its keys to the dict it gets
        sagemaker_session=side.session,
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        estimator.fit({"train": side.train_uri}, logs=True)
    elapsed = time.perf_counter() - start
    side.job_name = estimator.latest_training_job.name
    return elapsed


def describer(side: Side) -> Callable[[], float]:
    """A timed DescribeTrainingJob of the side's Completed job, on a client made once."""
    side.use()
    sm = side.session.boto_session.client("sagemaker")
    status = sm.describe_training_job(TrainingJobName=side.job_name)["TrainingJobStatus"]
    if status != "Completed":
        raise SystemExit(f"{side.label}: job {side.job_name} is {status}")

    def once() -> float:
        start = time.perf_counter()
        sm.describe_training_job(TrainingJobName=side.job_name)
        return time.perf_counter() - start

    return once


def unsigned_status(side: Side) -> int:
    """The status of an unsigned ListBuckets: shows which server checks and which doesn't."""
    try:
        with urllib.request.urlopen(side.endpoint + "/", timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as err:
        return err.code


def alternate(runs: int, on: Callable[[], float], off: Callable[[], float]) -> tuple[list, list]:
    """Run both `runs` times, interleaved, the first of each pair swapping every round."""
    timings: tuple[list[float], list[float]] = ([], [])
    for i in range(runs):
        order = ((0, on), (1, off)) if i % 2 == 0 else ((1, off), (0, on))
        for index, measure in order:
            timings[index].append(measure())
    return timings


def report(what: str, unit: str, scale: float, on: list[float], off: list[float]) -> None:
    """One line: medians with the checks on and off, and their ratio."""
    m_on, m_off = statistics.median(on), statistics.median(off)
    print(
        f"{what:<44} on {m_on * scale:8.2f} {unit}  off {m_off * scale:8.2f} {unit}"
        f"  on/off {m_on / m_off:5.2f}x  (median of {len(on)})"
    )


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="DescribeTrainingJob requests")
    parser.add_argument("--fits", type=int, default=3, help="managed fit() calls")
    args = parser.parse_args()
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    for name in ("sagemaker", "sagemaker.config"):  # keep the figures readable
        logging.getLogger(name).setLevel(logging.WARNING)

    from localcloud import client, credentials, environ

    with tempfile.TemporaryDirectory(prefix="lc-bench-auth-") as scratch:
        sides = [
            start_side("on", True, Path(scratch)),
            start_side("off", False, Path(scratch)),
        ]
        try:
            # the process signs with the guarded server's credentials unless a session says else
            env = environ.scrubbed(os.environ)
            os.environ.clear()
            os.environ.update({**env, **credentials.load(sides[0].home).as_env()})
            for side in sides:
                connect(side)
            on, off = sides
            print(f"servers: on {on.endpoint}, off {off.endpoint}")
            print(f"unsigned ListBuckets: on {unsigned_status(on)}, off {unsigned_status(off)}")
            fits = alternate(args.fits, lambda: fit_once(on), lambda: fit_once(off))
            for i, (f_on, f_off) in enumerate(zip(*fits, strict=True)):
                print(f"fit {i + 1}: on {f_on:.2f} s, off {f_off:.2f} s")
            requests = [describer(side) for side in sides]
            alternate(10, *requests)  # warm-up: connections open, models loaded
            calls = alternate(args.runs, *requests)
            report("DescribeTrainingJob (a Completed job)", "ms", 1000, *calls)
            report("managed XGBoost fit(logs=True)", "s ", 1, *fits)
        finally:
            client.uninstall()
            for side in sides:
                with contextlib.suppress(OSError):
                    side.pipe.send("stop")
                side.process.join(60)
                if side.process.is_alive():
                    side.process.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
