"""One host's folder, config files, SM_* env and argv, checked against toolkit 5.1.4 itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.algorithms import image_kind
from localcloud.hosts.entry_point import entry_command, script_env, validate_entry_point
from localcloud.hosts.environment import (
    HostLayout,
    base_env,
    host_names,
    rewrite_hyperparameters,
    script_job,
    write_config_files,
)
from localcloud.hosts.errors import ClientError, ErrorCapture, failure_text
from localcloud.hosts.mapping import (
    decode_hyperparameters,
    env_value,
    split_hyperparameters,
    to_cmd_args,
)
from localcloud.hosts.modules import missing_requirements

PT_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310"
SDK_HPS = {  # what SDK 2.257.7 sends for a PyTorch estimator (contract §1.2, §2.4)
    "epochs": "3",
    "lr": "0.01",
    "name": '"adam"',
    "flag": "true",
    "layers": "[1, 2]",
    "cfg": '{"a": 1}',
    "b": "2",
    "none": "null",
    "plain": "hello world",
    "train_file": '"/opt/ml/input/data/train/train_data.npz"',
    "sagemaker_foo": '"dropped"',
    "sagemaker_torch_distributed_enabled": "false",
    "sagemaker_submit_directory": '"s3://bkt/pt-job-1/source/sourcedir.tar.gz"',
    "sagemaker_program": '"train.py"',
    "sagemaker_container_log_level": "20",
    "sagemaker_job_name": '"pt-job-1"',
    "sagemaker_region": '"us-east-1"',
}


def make_request(hps: dict[str, str] | None = None, count: int = 2, image: str = PT_IMAGE) -> dict:
    return {
        "TrainingJobName": "pt-job-1",
        "Region": "us-east-1",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/pt-job-1",
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": dict(SDK_HPS if hps is None else hps),
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://bkt/d",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            },
            {
                "ChannelName": "my-val",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://bkt/v",
                        "S3DataDistributionType": "ShardedByS3Key",
                    }
                },
            },
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": count},
        "Environment": {"MY_VAR": "1"},
    }


def host_folder(tmp_path: Path, request: dict, host: str = "algo-2") -> HostLayout:
    layout = HostLayout(tmp_path / host)
    layout.create()
    write_config_files(layout, request, host, host_names(2))
    return layout


def test_config_files_have_the_service_shapes(tmp_path: Path) -> None:
    layout = host_folder(tmp_path, make_request())
    rc = json.loads((layout.config / "resourceconfig.json").read_text())
    assert rc == {
        "current_host": "algo-2",
        "current_instance_type": "ml.m5.large",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1", "algo-2"],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": "ml.m5.large",
                "hosts": ["algo-1", "algo-2"],
            }
        ],
        "network_interface_name": "lo0" if sys.platform == "darwin" else "lo",  # loopback
    }
    idc = json.loads((layout.config / "inputdataconfig.json").read_text())
    assert idc == {
        "train": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
        "my-val": {
            "TrainingInputMode": "File",
            "S3DistributionType": "ShardedByS3Key",
            "RecordWrapperType": "None",
        },
    }
    hps = json.loads((layout.config / "hyperparameters.json").read_text())
    assert hps["name"] == '"adam"' and hps["sagemaker_program"] == '"train.py"'
    assert all(isinstance(v, str) for v in hps.values())


def test_hosts_sort_like_sagemaker() -> None:
    assert host_names(3) == ["algo-1", "algo-2", "algo-3"]
    assert host_names(10)[:3] == ["algo-1", "algo-10", "algo-2"]


def test_opt_ml_values_point_into_the_host_folder(tmp_path: Path) -> None:
    layout = HostLayout(tmp_path / "algo-1")
    raw = {
        "a": '"/opt/ml/input/data/train/x.npz"',
        "b": "/opt/ml/model",
        "c": '"/opt/mlx"',
        "d": "3",
    }
    out = rewrite_hyperparameters(raw, layout)
    assert json.loads(out["a"]) == f"{tmp_path}/algo-1/input/data/train/x.npz"
    assert out["b"] == f"{tmp_path}/algo-1/model"
    assert out["c"] == '"/opt/mlx"' and out["d"] == "3"


def test_hyperparameters_to_argv_edge_cases() -> None:
    decoded = decode_hyperparameters(SDK_HPS)
    user, sagemaker = split_hyperparameters(decoded)
    assert "sagemaker_foo" in sagemaker and "sagemaker_foo" not in user
    args = to_cmd_args(user)
    assert args == [
        "-b",
        "2",
        "--cfg",
        "a=1",
        "--epochs",
        "3",
        "--flag",
        "True",
        "--layers",
        "[1, 2]",
        "--lr",
        "0.01",
        "--name",
        "adam",
        "--none",
        "",
        "--plain",
        "hello world",
        "--train_file",
        "/opt/ml/input/data/train/train_data.npz",
    ]
    assert to_cmd_args({"x": 1e-05, "d": {"b": 2, "a": "s"}}) == ["-d", "a=s,b=2", "-x", "1e-05"]
    assert env_value({"b": [1, True], "a": None}) == '{"a":null,"b":[1,true]}'
    assert env_value(None) == "" and env_value("plain text") == "plain text"


def test_entry_point_names_are_checked() -> None:
    for bad in ("../x.py", "-c.py", "/abs.py", "a b.py", "./x.py", ""):
        with pytest.raises(ClientError):
            validate_entry_point(bad)
    assert validate_entry_point("src/train-2.py") == "src/train-2.py"


def test_error_capture_and_failure_text() -> None:
    capture = ErrorCapture()
    for line in (
        "epoch 1 loss=0.5",
        "Traceback (most recent call last):",
        '  File "train.py", line 3, in <module>',
        '    raise ValueError("boom from user script")',
        "ValueError: boom from user script",
    ):
        capture.feed(line, is_stderr=True)
    message = capture.error_message()
    assert message == (
        'raise ValueError("boom from user script")\n ValueError: boom from user script'
    )
    text = failure_text(1, message, "/py -- train.py --epochs 3")
    assert text.startswith('ExecuteUserScriptError:\nExitCode 1\nErrorMessage "raise ValueError(')
    assert text.endswith('Command "/py -- train.py --epochs 3"')
    oom = failure_text(137, "", "cmd")
    assert 'ExtraInfo "OutOfMemory: Process killed by SIGKILL (signal 9)"' in oom


def test_missing_requirements_are_found_offline(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# comment\nnumpy\npandas>=1.0\nxgboost==0.1\nsurely-not-a-package-xyz\n"
        "foo; python_version < '3'\n"
    )
    missing = missing_requirements(req)
    assert missing[0].startswith("xgboost==0.1 (installed:")
    assert missing[1] == "surely-not-a-package-xyz" and len(missing) == 2


def test_pip_options_that_only_say_where_to_look_need_nothing_offline(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(
        "-f https://download.pytorch.org/whl/torch_stable.html\n--index-url=https://example.org\n"
        "--no-index\nnumpy --hash=sha256:0123\npandas \\\n  >=1.0\n"
    )
    assert missing_requirements(req) == []
    req.write_text("-f https://download.pytorch.org/whl/torch_stable.html\nxgboost==0.1\n")
    assert missing_requirements(req)[0].startswith("xgboost==0.1 (installed:")


def test_nested_requirement_files_are_read_only_from_inside_the_folder(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "reqs").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("numpy\n")
    (code / "reqs" / "more.txt").write_text("numpy\nsurely-not-a-package-xyz\n")
    (code / "reqs" / "cons.txt").write_text("numpy<1\nsurely-not-a-package-xyz<1\n")
    (code / "link.txt").symlink_to(tmp_path / "outside.txt")
    req = code / "requirements.txt"
    req.write_text("-r reqs/more.txt\n")
    assert missing_requirements(req) == ["surely-not-a-package-xyz"]
    req.write_text("numpy\npandas\n-c reqs/cons.txt\n")  # a constraint binds what is required
    assert [m.split(" (")[0] for m in missing_requirements(req)] == ["numpy"]
    for line in ["-r ../outside.txt", "-r link.txt", "--requirement=/etc/passwd", "-e ."]:
        req.write_text(f"{line}\n")
        assert missing_requirements(req) == [line], line
    req.write_text("-r reqs/absent.txt\n")
    assert missing_requirements(req) == ["-r reqs/absent.txt (no such file)"]


TOOLKIT_DUMP = """
import json, sys
from sagemaker_training import environment
env = environment.Environment()
json.dump({"env": env.to_env_vars(), "args": env.to_cmd_args()}, sys.stdout)
"""


def test_conformance_with_toolkit_5_1_4(tmp_path: Path) -> None:
    """Same host folder → same SM_* values and argv as sagemaker_training's Environment."""
    request = make_request()
    layout = host_folder(tmp_path, request)
    job = script_job(layout, request, "algo-2", host_names(2), num_gpus=0)
    base = base_env(request, {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    ours = script_env(job, base)
    toolkit_env = {
        **base,
        "SAGEMAKER_BASE_DIR": str(layout.root),
        "SAGEMAKER_TRAINING_MODULE": ours["SAGEMAKER_TRAINING_MODULE"],
    }
    out = subprocess.run(
        [sys.executable, "-c", TOOLKIT_DUMP],
        env=toolkit_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    theirs = json.loads(out.stdout)
    assert to_cmd_args(job.hyperparameters) == theirs["args"]
    mine = {k: v for k, v in ours.items() if k.startswith("SM_")}
    assert set(mine) == set(theirs["env"])
    for key, value in theirs["env"].items():
        if key in ("SM_TRAINING_ENV", "SM_RESOURCE_CONFIG", "SM_INPUT_DATA_CONFIG"):
            assert json.loads(mine[key]) == json.loads(value), key
        else:
            assert mine[key] == value, key
    assert ours["SM_MODULE_DIR"] == "s3://bkt/pt-job-1/source/sourcedir.tar.gz"
    assert ours["SM_CHANNEL_MY-VAL"] == f"{layout.root}/input/data/my-val"
    assert ours["SM_HP_TRAIN_FILE"] == f"{layout.root}/input/data/train/train_data.npz"
    assert ours["PYTHONPATH"].split(":")[0] == str(layout.code)
    assert ours["TRAINING_JOB_NAME"] == "pt-job-1" and ours["MY_VAR"] == "1"
    assert ours["SAGEMAKER_JOB_NAME"] == "pt-job-1" and ours["CURRENT_HOST"] == "algo-2"


def test_entry_command_per_image(tmp_path: Path) -> None:
    request = make_request()
    layout = host_folder(tmp_path, request)
    job = script_job(layout, request, "algo-2", host_names(2), num_gpus=0)
    cmd = entry_command(job, "pytorch")
    assert cmd[:3] == [sys.executable, "--", "train.py"] and cmd[3:5] == ["-b", "2"]
    assert entry_command(job, "xgboost")[:3] == [sys.executable, "-m", "train"]
    assert (
        image_kind("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
        == "xgboost"
    )
    assert image_kind("1.dkr.ecr.us-east-1.amazonaws.com/my-own:latest") == "other"
