"""The built-in XGBoost algorithm mode: error texts, CSV quirks, metrics, model, 2 hosts."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from test_host_cluster import run_job

from localcloud.algorithms.xgboost import UserError, data
from localcloud.algorithms.xgboost.hyperparameters import validate
from localcloud.testing import XGB_IMAGE, FolderS3, channel

DATA = Path(__file__).resolve().parents[2] / "data"


def numeric_titanic() -> pd.DataFrame:
    """The course's training CSV in label-first numeric form (no header)."""
    df = pd.read_csv(DATA / "titanic_train.csv")
    return pd.DataFrame(
        {
            "survived": df.Survived,
            "pclass": df.Pclass,
            "male": (df.Sex == "male").astype(int),
            "age": df.Age,
            "sibsp": df.SibSp,
            "parch": df.Parch,
            "fare": df.Fare,
        }
    )


def algo_request(name: str, channels: list[dict], hps: dict[str, str], count: int = 1) -> dict:
    return {
        "TrainingJobName": name,
        "Region": "us-east-1",
        "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": hps,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": count},
    }


@pytest.fixture
def s3(tmp_path: Path) -> FolderS3:
    s3 = FolderS3(tmp_path / "s3")
    num = numeric_titanic()
    s3.put("bkt", "num/train.csv", num.to_csv(header=False, index=False))
    half = len(num) // 2
    s3.put("bkt", "shards/part-0.csv", num.iloc[:half].to_csv(header=False, index=False))
    s3.put("bkt", "shards/part-1.csv", num.iloc[half:].to_csv(header=False, index=False))
    s3.put("bkt", "val/val.csv", num.iloc[:150].to_csv(header=False, index=False))
    s3.put("bkt", "raw/titanic_train.csv", (DATA / "titanic_train.csv").read_bytes())
    return s3


@pytest.mark.parametrize(
    ("hps", "message"),
    [
        ({}, "Missing required hyperparameter: num_round"),
        ({"num_round": "3", "silent": "1"}, "Extraneous hyperparameter found: silent"),
        (
            {"num_round": "3.0"},
            "Hyperparameter num_round: could not parse value (caused by ValueError)",
        ),
        ({"num_round": "3", "objective": "reg:foo"}, "Hyperparameter objective: reg:foo is not in"),
        ({"num_round": "3", "eta": "2"}, "Hyperparameter eta: 2.0 is not in [0, 1]"),
        (
            {"num_round": "3", "objective": "multi:softmax"},
            "Require input for parameter 'num_class' for multi-classification",
        ),
        (
            {"num_round": "3", "eval_metric": "auc"},
            "Metric 'auc' can only be applied for classification and ranking problems.",
        ),
    ],
)
def test_hyperparameter_errors(hps: dict[str, str], message: str) -> None:
    with pytest.raises(UserError) as err:
        validate(hps)
    assert str(err.value).startswith(message)


def test_hyperparameters_parse_raw_strings_and_aliases() -> None:
    cfg = validate(
        {
            "num_round": "10",
            "eta": "0.1",
            "lambda": "2",
            "eval_metric": "auc,logloss",
            "objective": "binary:logistic",
            "early_stopping_rounds": "3",
        }
    )
    assert cfg.num_round == 10 and cfg.early_stopping_rounds == 3
    assert cfg.params == {
        "learning_rate": 0.1,
        "reg_lambda": 2.0,
        "objective": "binary:logistic",
        "eval_metric": ["auc", "logloss"],
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"ContentType": "application/json"},
            "Channel configuration for 'train' channel is not "
            "supported: {'ContentType': 'application/json'}",
        ),
        (
            {"ContentType": "text/csv;label_size=2"},
            "text/csv;label_size=2 is not an accepted csv ContentType",
        ),
    ],
)
def test_content_type_errors(config: dict[str, str], message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("{", r"\{")):
        data.content_format("train", config)
    assert data.content_format("train", {}) == "libsvm"


def test_channel_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="Missing required channel: train"):
        data.check_channels({"validation": {}})
    with pytest.raises(UserError, match="Extraneous channel found: test"):
        data.check_channels({"train": {}, "test": {}})
    (tmp_path / ".hidden").write_text("x")
    with pytest.raises(UserError, match="Hidden file found in the data path!"):
        data.channel_files(tmp_path)
    (tmp_path / "a.csv").write_text("1,2\n")
    with pytest.raises(UserError, match="^First line '1,2...' of file 'a.csv' is not 'LIBSVM'"):
        data.read_libsvm([tmp_path / "a.csv"])


def test_csv_reader_matches_xgboost_text_loader(tmp_path: Path) -> None:
    sample = tmp_path / "t.csv"
    sample.write_text(
        '5,1abc,2\n6, 2,3\n9,nan,6\n1,1e3,7\n2,,8\n4,0x1A,1\n1,"3",1\n'
        "1,female,male\n1,-2.5e,E\n1,abc,\n"
    )
    for path in (sample, DATA / "titanic_train.csv"):
        ours = data.read_csv([path], ",", csv_weights=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = xgb.DMatrix(f"{path}?format=csv&label_column=0")
        assert ours["data"].shape == (ref.num_row(), ref.num_col())
        np.testing.assert_array_equal(ours["label"], ref.get_label())
        present = ~np.isnan(ours["data"])
        np.testing.assert_array_equal(present, _present(ref))
        np.testing.assert_array_equal(
            ours["data"][present].astype(np.float32), ref.get_data().toarray()[present]
        )


def _present(matrix: xgb.DMatrix) -> np.ndarray:
    coo = matrix.get_data().tocoo()
    mask = np.zeros((matrix.num_row(), matrix.num_col()), dtype=bool)
    mask[coo.row, coo.col] = True
    return mask


def _fails_with(tmp_path: Path, s3: FolderS3, channels: list[dict], hps: dict, text: str) -> None:
    _, outcome, _ = run_job(tmp_path, s3, algo_request("bad", channels, hps))
    assert outcome.failure_reason.startswith("AlgorithmError: framework error: \nTraceback")
    assert text in outcome.failure_reason and len(outcome.failure_reason) <= 1024


def test_job_failures_use_framework_error_form(tmp_path: Path, s3: FolderS3) -> None:
    train = [channel("train", "s3://bkt/num/", content_type="text/csv")]
    _fails_with(
        tmp_path, s3, train, {"num_round": "3", "foo": "1"}, "Extraneous hyperparameter found: foo"
    )
    _fails_with(
        tmp_path,
        s3,
        [channel("train", "s3://bkt/num/")],
        {"num_round": "3"},
        "is not 'LIBSVM' format",
    )
    s3.put("bkt", "empty/.keep", "")
    _fails_with(
        tmp_path,
        s3,
        [channel("train", "s3://bkt/empty/", content_type="csv")],
        {"num_round": "3"},
        "Hidden file found in the data path!",
    )


def test_header_csv_trains_on_garbage(tmp_path: Path, s3: FolderS3) -> None:
    request = algo_request(
        "raw",
        [channel("train", "s3://bkt/raw/", content_type="csv")],
        {
            "max_depth": "5",
            "eta": "0.1",
            "subsample": "0.8",
            "colsample_bytree": "0.8",
            "num_round": "5",
        },
    )
    _, outcome, logs = run_job(tmp_path, s3, request)
    assert outcome.failure_reason is None
    text = logs.text("algo-1")
    assert "Train matrix has 713 rows and" in text  # 712 passengers + the header row
    assert "Single node training." in text and "[4]\ttrain-rmse:" in text


def test_metrics_early_stopping_and_model(tmp_path: Path, s3: FolderS3) -> None:
    channels = [
        channel("train", "s3://bkt/num/", content_type="text/csv"),
        channel("validation", "s3://bkt/val/", content_type="text/csv"),
    ]
    hps = {
        "num_round": "500",
        "eta": "0.5",
        "max_depth": "6",
        "objective": "binary:logistic",
        "early_stopping_rounds": "3",
    }
    cluster, outcome, logs = run_job(tmp_path, s3, algo_request("es", channels, hps))
    assert outcome.failure_reason is None, logs.lines
    lines = logs.lines["algo-1"]
    metrics = [line for line in lines if line.startswith("[") and "\ttrain-logloss:" in line]
    assert metrics[0].startswith("[0]\ttrain-logloss:")
    assert "\tvalidation-logloss:" in metrics[0] and len(metrics) < 500
    assert all(line.startswith("[20") for line in lines if "INFO]" in line)
    booster = xgb.Booster()
    booster.load_model(bytearray((tmp_path / "jobs/es/algo-1/model/xgboost-model").read_bytes()))
    assert booster.num_boosted_rounds() == len(metrics)
    assert cluster.collect(s3, "s3://bkt/out") == "s3://bkt/out/es/output/model.tar.gz"


def test_two_hosts_sharded_match_one_host(tmp_path: Path, s3: FolderS3) -> None:
    hps = {"num_round": "30", "eta": "0.2", "max_depth": "5", "objective": "binary:logistic"}
    one = algo_request("one", [channel("train", "s3://bkt/num/", content_type="text/csv")], hps)
    two = algo_request(
        "two", [channel("train", "s3://bkt/shards/", "ShardedByS3Key", "text/csv")], hps, count=2
    )
    _, out1, _ = run_job(tmp_path, s3, one)
    _, out2, logs2 = run_job(tmp_path, s3, two)
    assert out1.failure_reason is None and out2.failure_reason is None, logs2.lines
    assert "Distributed node training with 2 hosts: ['algo-1', 'algo-2']" in logs2.text("algo-1")
    assert not list((tmp_path / "jobs/two/algo-2/model").iterdir())  # only the master saves
    features = xgb.DMatrix(numeric_titanic().iloc[:, 1:].to_numpy(dtype=float))
    preds = []
    for job in ("one", "two"):
        booster = xgb.Booster()
        booster.load_model(
            bytearray((tmp_path / f"jobs/{job}/algo-1/model/xgboost-model").read_bytes())
        )
        preds.append(booster.predict(features))
    # Measured: identical (max |diff| 0.0) — the data is small enough for exact quantiles.
    np.testing.assert_allclose(preds[0], preds[1], atol=1e-6)


def test_host_without_data_exits_cleanly(tmp_path: Path, s3: FolderS3) -> None:
    shutil.rmtree(s3.root / "bkt/shards")
    s3.put("bkt", "shards/only.csv", numeric_titanic().to_csv(header=False, index=False))
    request = algo_request(
        "lone",
        [channel("train", "s3://bkt/shards/", "ShardedByS3Key", "csv")],
        {"num_round": "5"},
        count=2,
    )
    _, outcome, logs = run_job(tmp_path, s3, request)
    assert outcome.failure_reason is None and outcome.exit_codes == [0, 0]
    assert "Host algo-2 does not have data." in logs.text("algo-2")
    assert (tmp_path / "jobs/lone/algo-1/model/xgboost-model").exists()
