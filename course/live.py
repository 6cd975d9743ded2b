"""`make live-check`: the setup, managed-training and clean-up lessons against real AWS."""

from __future__ import annotations

import os
from pathlib import Path

from course.run import Options

LIVE_NOTEBOOKS = ("00_setup", "02_managed_xgboost", "08_monitor_and_clean_up")
# The cost cap written in the README: no estimator may run longer than this.
LIVE_MAX_RUN_S = 600


def live_options(out_dir: Path) -> Options | None:
    """Options for a real-AWS run, or None (with the reason printed) when it can't run here."""
    import boto3

    if os.environ.get("LOCALCLOUD_ENDPOINT"):
        print("live-check talks to real AWS: run it outside `python -m localcloud run`")
        return None
    session = boto3.Session()
    if session.get_credentials() is None:
        print("live-check needs AWS credentials (aws configure, AWS_PROFILE or a notebook role)")
        return None
    if not session.region_name:
        print("live-check needs a region: set AWS_DEFAULT_REGION or configure one")
        return None
    print(f"live-check in {session.region_name}: {', '.join(LIVE_NOTEBOOKS)}")
    print(f"every estimator is capped at max_run={LIVE_MAX_RUN_S} s")
    return Options(
        out_dir=out_dir,
        kernel="python3",
        use_localcloud=False,
        render_site=False,
        only=LIVE_NOTEBOOKS,
        extra_params={"max_run": LIVE_MAX_RUN_S},
    )
