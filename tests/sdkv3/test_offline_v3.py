"""SDK v3 offline: a ModelTrainer script-mode job, started as a learner's kernel starts it,
reaches nothing beyond loopback and sends no telemetry (tests/localcloud/test_offline.py's socket
audit, for the course's own SDK)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localcloud import client, config, offline

XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
# The child records every connect, send and lookup before the boot sitecustomize (which installs
# the offline hook) runs, so it sees what was attempted, not only what got through.
AUDIT_CHILD = textwrap.dedent("""
    import json, os, runpy, socket, sys

    boot, out, image = sys.argv[1], sys.argv[2], sys.argv[3]
    seen = []

    def record(event, args):
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg") and args[1] is not None:
            family, address = args[0].family, args[1]
            if family in (socket.AF_INET, socket.AF_INET6):
                seen.append([event, "inet", str(address[0]), address[1]])
            elif family != socket.AF_UNIX:
                seen.append([event, "other", repr(address), None])
        elif event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else args[0]
            seen.append([event, "lookup", host, args[1]])

    sys.addaudithook(record)
    runpy.run_path(boot, run_name="sitecustomize")
    results = {"seen": seen, "telemetry": []}

    import sagemaker.core.telemetry.telemetry_logging as telemetry
    from sagemaker.core.training.configs import Compute, InputData, SourceCode
    from sagemaker.train import ModelTrainer

    send = telemetry._send_telemetry_request

    def counted(*args, **kwargs):
        results["telemetry"].append(repr(args)[:200])
        return send(*args, **kwargs)

    telemetry._send_telemetry_request = counted
    trainer = ModelTrainer(  # no session given: the SDK builds its own, as in a learner's kernel
        training_image=image,
        role=os.environ["SAGEMAKER_ROLE"],
        source_code=SourceCode(source_dir="scripts", entry_script="train_xgboost.py"),
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        hyperparameters={"train": "titanic_train.csv", "num_round": 5},
        base_job_name="offline-audit-v3",
    )
    session = trainer.sagemaker_session
    train = session.upload_data("data/titanic_train.csv", session.default_bucket(), "audit-v3")
    trainer.train(
        input_data_config=[InputData(channel_name="train", data_source=train)],
        wait=True,
        logs=False,
    )
    results["status"] = trainer._latest_training_job.training_job_status
    with open(out, "w") as handle:
        json.dump(results, handle)
""")


@pytest.mark.localcloud
def test_a_v3_script_mode_job_reaches_nothing_beyond_loopback(
    localcloud_server: object, tmp_path: Path
) -> None:
    script, out = tmp_path / "audit.py", tmp_path / "audit.json"
    script.write_text(AUDIT_CHILD)
    env = client.client_env(localcloud_server.endpoint, localcloud_server.home)  # type: ignore[attr-defined]
    parts = env["PYTHONPATH"].split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(p for p in parts if p != str(config.BOOT_DIR))
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            str(config.BOOT_DIR / "sitecustomize.py"),
            str(out),
            XGB_IMAGE,
        ],
        cwd=config.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["status"] == "Completed"
    port = int(localcloud_server.endpoint.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    seen = results["seen"]
    assert ["socket.connect", "inet", "127.0.0.1", port] in seen  # the audit saw the SDK's calls
    far = [
        entry
        for entry in seen
        if entry[1] == "other"
        or (entry[2] not in (None, "") and not offline.is_loopback_host(entry[2]))
    ]
    assert far == []
    assert results["telemetry"] == []  # opted out, in the session the SDK built itself
