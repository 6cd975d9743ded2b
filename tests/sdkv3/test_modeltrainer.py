"""SDK v3 ModelTrainer on localcloud: script mode, the built-in image, Torchrun, the role check.

Every job runs the SDK's own drivers (sm_train.sh from the sm_drivers channel) with /opt/ml,
algo-1 and 7777 mapped (localcloud/hosts/drivers.py).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from localcloud import config

ROOT = Path(__file__).resolve().parents[2]
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
PT_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-cpu-py312"


@pytest.fixture(scope="module")
def train_uri(v3_session: Any) -> str:
    bucket = v3_session.default_bucket()
    return v3_session.upload_data(str(ROOT / "data" / "titanic_train.csv"), bucket, "v3/train")


def _trainer(v3_session: Any, localcloud_server: Any, **kwargs: Any) -> Any:
    from sagemaker.core.training.configs import Compute, StoppingCondition
    from sagemaker.train import ModelTrainer

    kwargs.setdefault("compute", Compute(instance_type="ml.m5.large", instance_count=1))
    kwargs.setdefault("role", localcloud_server.role_arn)
    return ModelTrainer(
        sagemaker_session=v3_session,
        stopping_condition=StoppingCondition(max_runtime_in_seconds=600),
        **kwargs,
    )


def _job(trainer: Any) -> Any:
    job = trainer._latest_training_job
    job.refresh()
    return job


def _model_members(localcloud_server: Any, uri: str) -> list[str]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = localcloud_server.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return tar.getnames()


def _log_text(localcloud_server: Any, job_name: str) -> str:
    logs = localcloud_server.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=job_name + "/")
    lines = []
    for stream in streams["logStreams"]:
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
        lines += [e["message"] for e in events]
    return "\n".join(lines)


def _xgb_source(tmp_path: Path, requirements: str | None = None) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(ROOT / "scripts" / "train_xgboost.py", source)
    if requirements is not None:
        (source / "requirements.txt").write_text(requirements)
    return source


def test_script_mode_runs_the_sdks_drivers(
    v3_session: Any, localcloud_server: Any, train_uri: str, tmp_path: Path
) -> None:
    from sagemaker.core.training.configs import InputData, SourceCode

    trainer = _trainer(
        v3_session,
        localcloud_server,
        training_image=XGB_IMAGE,
        source_code=SourceCode(
            source_dir=str(_xgb_source(tmp_path)), entry_script="train_xgboost.py"
        ),
        hyperparameters={"max_depth": 3, "num_round": 10, "train": "titanic_train.csv"},
        input_data_config=[InputData(channel_name="train", data_source=train_uri)],
        base_job_name="v3-script",
    )
    trainer.train(wait=True, logs=False)
    job = _job(trainer)
    assert job.training_job_status == "Completed"
    spec = job.algorithm_specification
    assert spec.container_entrypoint == ["/bin/bash"]
    members = _model_members(localcloud_server, job.model_artifacts.s3_model_artifacts)
    assert any(m.endswith(".json") or m.endswith(".ubj") for m in members), members
    log = _log_text(localcloud_server, job.training_job_name)
    assert "Running Basic Script driver" in log
    assert "Training Container Execution Completed" in log
    # the drivers' paths read as the container's, not as the host folder's
    assert "/opt/ml/input/data/sm_drivers/scripts/environment.py" in log
    assert f"/{job.training_job_name}/algo-1" not in log and "/.bin/" not in log
    assert "Executing command: /usr/local/bin/python3 train_xgboost.py" in log


def test_a_failing_script_gives_the_failure_file_as_reason(
    v3_session: Any, localcloud_server: Any, train_uri: str, tmp_path: Path
) -> None:
    from sagemaker.core.training.configs import InputData, SourceCode
    from sagemaker.core.utils.exceptions import FailedStatusError

    source = _xgb_source(tmp_path)
    trainer = _trainer(
        v3_session,
        localcloud_server,
        training_image=XGB_IMAGE,
        source_code=SourceCode(source_dir=str(source), entry_script="train_xgboost.py"),
        hyperparameters={"train": "no_such_file.csv"},
        input_data_config=[InputData(channel_name="train", data_source=train_uri)],
        base_job_name="v3-fails",
    )
    with pytest.raises(FailedStatusError):
        trainer.train(wait=True, logs=False)
    job = _job(trainer)
    assert job.training_job_status == "Failed"
    assert job.failure_reason.startswith("AlgorithmError: ")
    assert "no_such_file.csv" in job.failure_reason
    assert str(localcloud_server.home) not in job.failure_reason


def test_requirements_satisfied_run_and_missing_ones_fail(
    v3_session: Any, localcloud_server: Any, train_uri: str, tmp_path: Path
) -> None:
    from sagemaker.core.training.configs import InputData, SourceCode
    from sagemaker.core.utils.exceptions import FailedStatusError

    def run(folder: str, requirements: str) -> Any:
        source = _xgb_source(tmp_path / folder, requirements)
        trainer = _trainer(
            v3_session,
            localcloud_server,
            training_image=XGB_IMAGE,
            source_code=SourceCode(
                source_dir=str(source),
                entry_script="train_xgboost.py",
                requirements="requirements.txt",
            ),
            hyperparameters={"num_round": 5, "train": "titanic_train.csv"},
            input_data_config=[InputData(channel_name="train", data_source=train_uri)],
            base_job_name="v3-reqs",
        )
        with contextlib.suppress(FailedStatusError):
            trainer.train(wait=True, logs=False)
        return _job(trainer)

    (tmp_path / "ok").mkdir()
    (tmp_path / "missing").mkdir()
    ok = run("ok", "pandas\nnumpy>=1\n")
    assert ok.training_job_status == "Completed"
    missing = run("missing", "surely-not-a-package-xyz==1.0\n")
    assert missing.training_job_status == "Failed"
    assert "InstallRequirementsError" in missing.failure_reason
    assert "surely-not-a-package-xyz==1.0" in missing.failure_reason


def test_a_packed_source_dir_is_unpacked_by_the_drivers(
    v3_session: Any, localcloud_server: Any, train_uri: str, tmp_path: Path
) -> None:
    from sagemaker.core.training.configs import InputData, SourceCode

    source = _xgb_source(tmp_path, "pandas\n")
    packed = tmp_path / "code.tar.gz"
    with tarfile.open(packed, "w:gz") as tar:
        for path in source.iterdir():
            tar.add(path, arcname=path.name)
    trainer = _trainer(
        v3_session,
        localcloud_server,
        training_image=XGB_IMAGE,
        source_code=SourceCode(
            source_dir=str(packed), entry_script="train_xgboost.py", requirements="requirements.txt"
        ),
        hyperparameters={"num_round": 5, "train": "titanic_train.csv"},
        input_data_config=[InputData(channel_name="train", data_source=train_uri)],
        base_job_name="v3-packed",
    )
    trainer.train(wait=True, logs=False)
    assert _job(trainer).training_job_status == "Completed"


def test_builtin_image_through_modeltrainer(
    v3_session: Any, localcloud_server: Any, tmp_path: Path
) -> None:
    import pandas as pd
    from sagemaker.core.training.configs import InputData

    frame = pd.read_csv(ROOT / "data" / "titanic_train.csv")
    numeric = frame.select_dtypes("number").dropna()
    label = "Survived"
    ordered = numeric[[label, *[c for c in numeric.columns if c != label]]]
    path = tmp_path / "train.csv"
    ordered.to_csv(path, header=False, index=False)
    bucket = v3_session.default_bucket()
    uri = v3_session.upload_data(str(path), bucket, "v3/builtin")
    trainer = _trainer(
        v3_session,
        localcloud_server,
        training_image=XGB_IMAGE,
        hyperparameters={"objective": "binary:logistic", "num_round": "10"},
        input_data_config=[
            InputData(channel_name="train", data_source=uri, content_type="text/csv")
        ],
        base_job_name="v3-builtin",
    )
    trainer.train(wait=True, logs=False)
    job = _job(trainer)
    assert job.training_job_status == "Completed"
    assert "xgboost-model" in _model_members(
        localcloud_server, job.model_artifacts.s3_model_artifacts
    )


def test_torchrun_on_two_hosts_trains_one_model(
    v3_session: Any, localcloud_server: Any, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from sagemaker.core.training.configs import Compute, InputData, SourceCode
    from sagemaker.train.distributed import Torchrun

    make = (
        "import sys; sys.path.insert(0, 'scripts'); import train_nn; "
        f"train_nn.prepare_npz('data/titanic_train.csv', {str(tmp_path / 'npz')!r})"
    )
    subprocess.run([sys.executable, "-c", make], cwd=ROOT, check=True)
    paths = {s: tmp_path / "npz" / f"{s}_data.npz" for s in ("train", "val")}
    bucket = v3_session.default_bucket()
    train = v3_session.upload_data(str(paths["train"]), bucket, "v3/nn/train")
    val = v3_session.upload_data(str(paths["val"]), bucket, "v3/nn/val")
    source = tmp_path / "nn"
    source.mkdir()
    shutil.copy(ROOT / "scripts" / "train_nn.py", source)
    trainer = _trainer(
        v3_session,
        localcloud_server,
        training_image=PT_IMAGE,
        compute=Compute(instance_type="ml.m5.large", instance_count=2),
        source_code=SourceCode(source_dir=str(source), entry_script="train_nn.py"),
        distributed=Torchrun(),
        hyperparameters={"epochs": 5, "train": "train_data.npz", "val": "val_data.npz"},
        input_data_config=[
            InputData(channel_name="train", data_source=train),
            InputData(channel_name="val", data_source=val),
        ],
        base_job_name="v3-torchrun",
    )
    trainer.train(wait=True, logs=False)
    job = _job(trainer)
    assert job.training_job_status == "Completed", job.failure_reason
    log = _log_text(localcloud_server, job.training_job_name)
    assert "--nnodes=2" in log and "--master_addr=127.0.0.1" in log
    digests = set(re.findall(r"weights_sha256[=: ]+([0-9a-f]{16})", log))
    ranks = re.findall(r"weights_sha256", log)
    assert len(ranks) >= 2 and len(digests) == 1, (ranks, digests)


def test_a_role_without_sagemaker_permissions_is_refused(
    v3_session: Any, localcloud_server: Any
) -> None:
    import json

    from sagemaker.core.helper.iam_role_resolver import RoleValidationError

    iam = localcloud_server.client("iam")
    arn = iam.create_role(
        RoleName="NoPermissions", AssumeRolePolicyDocument=json.dumps(config.SAGEMAKER_TRUST)
    )["Role"]["Arn"]
    with pytest.raises(RoleValidationError, match="Missing permissions"):
        _trainer(v3_session, localcloud_server, training_image=XGB_IMAGE, role=arn)
    # positive control: the course role passes the same check
    _trainer(v3_session, localcloud_server, training_image=XGB_IMAGE)
