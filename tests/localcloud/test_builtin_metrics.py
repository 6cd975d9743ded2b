"""The built-in XGBoost algorithm's own metric definitions, as SageMaker fills them in."""

from __future__ import annotations

import re

import pytest
from _lc_jobs import describe, unique

from localcloud.algorithms.xgboost.metrics import metric_definitions
from localcloud.jobs.manager import with_algorithm_metrics
from localcloud.jobs.model import TrainingJob

XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
LINES = [  # one round per line, as CloudWatch stores them (a tab reads #011)
    "[0]#011train-logloss:0.61234#011validation-logloss:0.65678",
    "[12]#011train-logloss:0.41234#011validation-logloss:0.45678",
]


def _rules() -> dict[str, re.Pattern[str]]:
    return {d["Name"]: re.compile(d["Regex"]) for d in metric_definitions()}


def _request(**overrides: object) -> dict:
    request = {
        "TrainingJobName": unique("metrics"),
        "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerCourseExecutionRole",
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {"num_round": "5"},
    }
    request.update(overrides)
    return request


def test_every_definition_has_a_train_and_a_validation_entry() -> None:
    names = [d["Name"] for d in metric_definitions()]
    assert len(names) == len(set(names))
    for metric in ("logloss", "rmse", "error", "auc", "mae", "mlogloss", "merror", "aucpr"):
        assert {f"train:{metric}", f"validation:{metric}"} <= set(names)
    assert r".*\[[0-9]+\].*#011validation-logloss:" in _rules()["validation:logloss"].pattern


@pytest.mark.parametrize(
    ("name", "value"), [("train:logloss", "0.41234"), ("validation:logloss", "0.45678")]
)
def test_regexes_read_the_container_metric_line(name: str, value: str) -> None:
    match = _rules()[name].search(LINES[1])
    assert match is not None and match.group(1) == value


def test_similar_metric_names_do_not_match_each_other() -> None:
    rules = _rules()
    line = (
        "[3]#011train-merror:0.25#011train-mlogloss:0.5#011train-error@0.7:0.125#011train-aucpr:1"
    )
    assert rules["train:error"].search(line) is None
    assert rules["train:logloss"].search(line) is None
    assert rules["train:auc"].search(line) is None
    assert rules["train:merror"].search(line).group(1) == "0.25"
    assert rules["train:aucpr"].search(line).group(1) == "1"
    assert rules["train:rmse"].search("[9]#011train-rmse:1.5e-05").group(1) == "1.5e-05"
    assert rules["train:rmse"].search("[0]\ttrain-rmse:0.5") is None  # a raw tab: not as stored


def test_the_last_value_wins() -> None:
    job = TrainingJob(request=with_algorithm_metrics(_request()), region="us-east-1", account="1")
    for second, line in enumerate(LINES):
        job.record_metrics(line, float(second))
    final = {m["MetricName"]: m["Value"] for m in job.describe()["FinalMetricDataList"]}
    assert final == {"train:logloss": 0.41234, "validation:logloss": 0.45678}


def test_only_builtin_algorithm_jobs_without_definitions_get_them() -> None:
    builtin = with_algorithm_metrics(_request())
    assert builtin["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    spec = {"TrainingImage": XGB_IMAGE, "MetricDefinitions": [{"Name": "m", "Regex": "m:(.+)"}]}
    own = _request(AlgorithmSpecification=spec)
    assert with_algorithm_metrics(own) is own
    script = _request(HyperParameters={"sagemaker_program": '"train.py"'})
    assert "MetricDefinitions" not in with_algorithm_metrics(script)["AlgorithmSpecification"]
    other = _request(AlgorithmSpecification={"TrainingImage": "1.dkr.ecr/pytorch-training:2.1"})
    assert "MetricDefinitions" not in with_algorithm_metrics(other)["AlgorithmSpecification"]


@pytest.mark.localcloud
def test_builtin_job_reports_its_metrics_through_the_sdk(sm_session) -> None:
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput

    bucket, prefix = sm_session.default_bucket(), unique("builtin-metrics")
    rows = "\n".join(f"{i % 2},{i},{(i * 7) % 5},{i % 3}" for i in range(40)) + "\n"
    channels = {}
    for channel in ("train", "validation"):
        sm_session.upload_string_as_file_body(rows, bucket, f"{prefix}/{channel}/data.csv")
        channels[channel] = TrainingInput(
            f"s3://{bucket}/{prefix}/{channel}/", content_type="text/csv"
        )
    estimator = Estimator(
        image_uri=sagemaker.image_uris.retrieve("xgboost", sm_session.boto_region_name, "1.7-1"),
        role=sm_session.get_caller_identity_arn(),
        instance_count=1,
        instance_type="ml.m5.large",
        output_path=f"s3://{bucket}/{prefix}/output",
        disable_profiler=True,
        sagemaker_session=sm_session,
    )
    estimator.set_hyperparameters(objective="binary:logistic", num_round=5)
    estimator.fit(channels, logs=False)
    job = describe(sm_session, estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed"
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert set(final) == {"train:logloss", "validation:logloss"}
    assert all(0 < value < 1 for value in final.values())
