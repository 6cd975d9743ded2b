"""SDK v3's modules carry localcloud's patches: a fast polling clock, cached config checks and
the telemetry opt-out. An SDK release that moves one fails here, by name."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from localcloud import client, config, sdk_patches
from localcloud.testing import XGB_IMAGE, channel, source_tar, unique

KINDS = {"clock", "config", "telemetry", "read"}
PATCHED = {
    "resources.time": "ScaledClock",
    "session_helper.time": "ScaledClock",
    "validations of one config": 1,
    "telemetry opted out": True,
}
REAL = {
    "resources.time": "module",
    "session_helper.time": "module",
    "validations of one config": 4,
    "telemetry opted out": False,
}


def test_every_v3_target_is_where_the_table_says():
    assert sdk_patches.generation() == "v3"
    targets = sdk_patches.check_targets()
    assert {t.kind for t in targets} == KINDS
    assert "sagemaker.core.resources.time" in map(str, targets)
    # the checker itself: a release that moved an attribute or a module is named
    moved = sdk_patches.Target("sagemaker.core.resources", "clock", "clock")
    gone = sdk_patches.Target("sagemaker.core.waiting", "time", "clock")
    table = {"v3": (*sdk_patches.TARGETS["v3"], moved, gone)}
    with pytest.raises(sdk_patches.TargetMissing) as raised:
        sdk_patches.check_targets(table=table)
    assert "sagemaker.core.resources.clock (sagemaker.core.resources has no attribute" in str(
        raised.value
    )
    assert "sagemaker.core.waiting.time (module sagemaker.core.waiting not importable" in str(
        raised.value
    )


def _state() -> dict[str, object]:
    """What each v3 patch looks like in this process right now."""
    import jsonschema
    from sagemaker.core import resources
    from sagemaker.core.config import config as sdk_config
    from sagemaker.core.config.config_manager import SageMakerConfig
    from sagemaker.core.config.config_schema import TELEMETRY_OPT_OUT_PATH
    from sagemaker.core.helper import session_helper
    from sagemaker.core.telemetry import telemetry_logging

    seen: list[object] = []
    real = jsonschema.validate
    # a config no other test validated: two calls each, of the function and the static method
    fresh = {"SchemaVersion": "1.0", "CustomParameters": {"probe": uuid.uuid4().hex}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonschema, "validate", lambda c, s: (seen.append(c), real(c, s))[1])
        for validate in (
            sdk_config.validate_sagemaker_config,
            SageMakerConfig.validate_sagemaker_config,
        ):
            validate(fresh)
            validate(fresh)
        for _ in range(2):  # an invalid config still raises every time
            with pytest.raises(jsonschema.ValidationError):
                SageMakerConfig().validate_sagemaker_config({"SchemaVersion": "0.9"})
    no_config = SimpleNamespace(boto_session=None)  # a session without sagemaker_config
    opted_out = telemetry_logging.resolve_value_from_config(
        config_path=TELEMETRY_OPT_OUT_PATH, default_value=False, sagemaker_session=no_config
    )
    return {
        "resources.time": type(resources.time).__name__,
        "session_helper.time": type(session_helper.time).__name__,
        "validations of one config": seen.count(fresh),
        "telemetry opted out": opted_out,
    }


@pytest.mark.localcloud
def test_install_patches_v3_and_uninstall_restores_it(localcloud_server):
    assert _state() == PATCHED  # connect() ran client.install()
    sdk_patches.uninstall()
    try:
        assert _state() == REAL
    finally:
        client.install(localcloud_server.endpoint)
    assert _state() == PATCHED


LEARNER_CHILD = """
import json
import test_sdk_patches
from localcloud import client

booted = test_sdk_patches._state()  # localcloud's sitecustomize ran client.install()
client.uninstall()
print(json.dumps({"booted": booted, "uninstalled": test_sdk_patches._state()}))
"""


@pytest.mark.localcloud
def test_a_learners_process_is_patched_from_its_start_and_client_uninstall_undoes_it(
    localcloud_server,
):
    env = client.client_env(localcloud_server.endpoint, localcloud_server.home)
    done = subprocess.run(
        [sys.executable, "-c", LEARNER_CHILD],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "SdkPatchWarning" not in done.stderr  # every v3 target was found at import
    assert json.loads(done.stdout.splitlines()[-1]) == {"booted": PATCHED, "uninstalled": REAL}


def _sleeping_job(connection, seconds: float) -> str:
    """A script-mode job (the framework toolkit runs train.py) that takes `seconds` or more."""
    s3, sm = connection.client("s3"), connection.client("sagemaker")
    bucket, name = unique("sdk-patches"), unique("v3-wait")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/x.csv", Body=b"1,2\n")
    code = source_tar({"train.py": f"import time\ntime.sleep({seconds})\n"})
    s3.put_object(Bucket=bucket, Key="src/sourcedir.tar.gz", Body=code)
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        RoleArn=connection.role_arn,
        HyperParameters={
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": f'"s3://{bucket}/src/sourcedir.tar.gz"',
        },
        InputDataConfig=[channel("train", f"s3://{bucket}/data")],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 300},
    )
    return name


@pytest.mark.localcloud
def test_a_training_job_wait_polls_on_the_scaled_clock(localcloud_server, monkeypatch):
    import boto3
    from sagemaker.core import resources

    clock = resources.time
    assert isinstance(clock, sdk_patches.ScaledClock)
    assert clock.scale == config.clock_scale() > 1
    session = boto3.Session(region_name=localcloud_server.region)  # its own, fresh client
    describes: list[str] = []
    session.events.register(
        "before-parameter-build.sagemaker.DescribeTrainingJob",
        lambda params, **_: describes.append(params["TrainingJobName"]),
    )
    real_sleeps: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if threading.current_thread() is threading.main_thread():  # the thread that waits
            real_sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    name = _sleeping_job(localcloud_server, seconds=3)
    job = resources.TrainingJob.get(name, session=session, region=localcloud_server.region)
    job.wait(poll=5, logs=False)
    monkeypatch.undo()
    assert job.training_job_status == "Completed", job.failure_reason
    polls = len(describes) - 2  # get() and the last look describe, and one describe per poll
    assert describes == [name] * (polls + 2) and polls >= 2  # it was still running at first
    # every 5 s poll slept 5/scale real seconds; an unpatched wait would have slept 5 s each time
    assert real_sleeps == [pytest.approx(5 / clock.scale)] * polls
