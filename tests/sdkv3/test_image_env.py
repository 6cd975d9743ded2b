"""The XGBoost 3.2-0 image's environment: built (or found), it runs the course script cleanly,
and a ModelTrainer job with that image runs in it and trains the model a local run trains.

Needs PyPI the first time (the env is cached outside the repository: localcloud/images/envs.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_modeltrainer import _job, _log_text, _trainer, _xgb_source, train_uri  # noqa: F401

from localcloud.images import catalog, envs, pythons

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
HYPERPARAMETERS = {"max_depth": 4, "eta": 0.2, "num_round": 30, "seed": 7}
# Run by the env's python (scripts/ on PYTHONPATH): each model folder's test predictions.
PREDICT = """
import json, sys
import pandas as pd
import train_xgboost as t
test = pd.read_csv("data/titanic_test.csv")
print(json.dumps([t.predict_proba(*t.load_model(d), test).tolist() for d in sys.argv[1:]]))
"""


@pytest.fixture(scope="module")
def env() -> envs.Env:
    entry = catalog.lookup(IMAGE)
    found = envs.find(entry)
    if found is not None:
        return found
    try:
        pythons.find_python(entry.python)
    except catalog.ImageError as exc:
        pytest.skip(f"no Python {entry.python} to build the image's environment with: {exc}")
    return envs.pull(entry)


def _script(python: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-W", "error", str(ROOT / "scripts" / "train_xgboost.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_env_has_the_images_versions(env: envs.Env) -> None:
    assert env.manifest["python"].startswith("3.12.")
    assert env.packages["xgboost-cpu"] == "3.2.0" and env.packages["pandas"] == "2.2.3"
    assert env.packages["numpy"] == "2.1.0" and env.packages["scikit-learn"] == "1.8.0"
    done = subprocess.run(
        [env.python, "-c", "import sys, pandas; print(sys.version_info[:2], pandas.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "(3, 12) 2.2.3", done.stderr


def test_the_course_script_runs_without_warnings_in_the_env(env: envs.Env, tmp_path: Path) -> None:
    done = _script(
        env.python,
        "--train",
        str(ROOT / "data" / "titanic_train.csv"),
        "--model_dir",
        str(tmp_path / "model"),
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "train:accuracy=" in done.stdout
    assert (tmp_path / "model" / "xgboost-model.json").is_file()


def test_a_job_with_the_image_runs_in_its_env_and_trains_the_local_model(
    env: envs.Env,
    v3_session: Any,
    localcloud_server: Any,
    train_uri: str,  # noqa: F811 - the fixture of test_modeltrainer.py
    tmp_path: Path,
) -> None:
    from sagemaker.core.training.configs import InputData, SourceCode

    trainer = _trainer(
        v3_session,
        localcloud_server,
        training_image=IMAGE,
        source_code=SourceCode(
            source_dir=str(_xgb_source(tmp_path)), entry_script="train_xgboost.py"
        ),
        hyperparameters={**HYPERPARAMETERS, "train": "titanic_train.csv"},
        input_data_config=[InputData(channel_name="train", data_source=train_uri)],
        base_job_name="v3-image-env",
    )
    trainer.train(wait=True, logs=False)
    job = _job(trainer)
    assert job.training_job_status == "Completed", job.failure_reason
    log = _log_text(localcloud_server, job.training_job_name)
    assert (
        f"localcloud: this job runs in the {catalog.lookup(IMAGE).name} image's environment" in log
    )
    # the drivers' python (the env's) shows as the container's
    assert "Executing command: /usr/local/bin/python3 train_xgboost.py" in log
    assert not [line for line in log.splitlines() if f"{env.root}/bin/python" in line]

    job_model = tmp_path / "job-model"
    job_model.mkdir()
    bucket, key = job.model_artifacts.s3_model_artifacts.removeprefix("s3://").split("/", 1)
    archive = tmp_path / "model.tar.gz"
    localcloud_server.client("s3").download_file(bucket, key, str(archive))
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(job_model)], check=True)

    local_model = tmp_path / "local-model"
    args = [f"--{k}={v}" for k, v in HYPERPARAMETERS.items()]
    local = _script(
        env.python,
        *args,
        "--train",
        str(ROOT / "data" / "titanic_train.csv"),
        "--model_dir",
        str(local_model),
    )
    assert local.returncode == 0, local.stderr
    done = subprocess.run(
        [env.python, "-c", PREDICT, str(job_model), str(local_model)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    from_job, from_local = json.loads(done.stdout)
    assert len(from_job) == 179 and from_job == from_local
