"""Cluster driven directly with a fake S3 over a folder: data, code, processes, failures."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest

from localcloud.hosts.cluster import Cluster, _free_ports
from localcloud.hosts.data import assign_objects, parse_s3_uri, relative_key
from localcloud.hosts.errors import ClientError
from localcloud.hosts.process import HOSTS_RECORD, kill_recorded_hosts
from localcloud.testing import PT_IMAGE, XGB_IMAGE, FolderS3, channel, source_tar, wait_for


def script_request(
    s3: FolderS3,
    files: dict[str, str],
    *,
    count: int = 1,
    image: str = PT_IMAGE,
    hps: dict[str, str] | None = None,
    channels: list[dict] | None = None,
    instance: str = "ml.m5.large",
) -> dict:
    s3.put("bkt", "job/source/sourcedir.tar.gz", source_tar(files))
    return {
        "TrainingJobName": "job",
        "Region": "us-east-1",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/job",
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_container_log_level": "20",
            "sagemaker_submit_directory": '"s3://bkt/job/source/sourcedir.tar.gz"',
            "sagemaker_job_name": '"job"',
            "sagemaker_region": '"us-east-1"',
            **(hps or {}),
        },
        "InputDataConfig": channels or [],
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/out"},
        "ResourceConfig": {"InstanceType": instance, "InstanceCount": count},
    }


class Logs:
    """A log_sink that keeps every line per host."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}

    def __call__(self, host: str, line: str) -> None:
        self.lines.setdefault(host, []).append(line)

    def text(self, host: str) -> str:
        return "\n".join(self.lines.get(host, []))


def run_job(tmp_path: Path, s3: FolderS3, request: dict, timeout: float = 120) -> tuple:
    logs = Logs()
    cluster = Cluster(request, tmp_path / "jobs" / request["TrainingJobName"], s3, logs)
    cluster.prepare()
    cluster.start()
    assert cluster.wait(timeout), "hosts did not finish"
    return cluster, cluster.outcome(), logs


@pytest.fixture
def s3(tmp_path: Path) -> FolderS3:
    return FolderS3(tmp_path / "s3")


def test_object_assignment_and_relative_paths() -> None:
    keys = ["d/a", "d/b", "d/c"]
    assert assign_objects(keys, ["algo-1", "algo-2"], "FullyReplicated")["algo-2"] == keys
    sharded = assign_objects(keys, ["algo-1", "algo-2"], "ShardedByS3Key")
    assert sharded == {"algo-1": ["d/a", "d/c"], "algo-2": ["d/b"]}
    assert assign_objects(["d/a"], ["algo-1", "algo-2"], "ShardedByS3Key")["algo-2"] == []
    assert relative_key("data/train", "data/train/sub/x.csv") == "sub/x.csv"
    assert relative_key("data/titanic_train.csv", "data/titanic_train.csv") == "titanic_train.csv"
    assert relative_key("data/tr", "data/train.csv") == "train.csv"
    with pytest.raises(ClientError, match="Data download failed"):
        relative_key("data/", "data/a//b.csv")


def test_one_s3_uri_parser_for_requests_and_jobs() -> None:
    assert parse_s3_uri("s3://bkt/some/prefix") == ("bkt", "some/prefix")
    assert parse_s3_uri("s3://bkt") == ("bkt", "")
    # a request check catches ValueError; a job fails with the ClientError text as is
    with pytest.raises(ValueError) as caught:
        parse_s3_uri("https://bkt/some/prefix")
    assert isinstance(caught.value, ClientError)
    assert str(caught.value) == "ClientError: Not an S3 URI: 'https://bkt/some/prefix'"


def test_channels_are_replicated_or_sharded(tmp_path: Path, s3: FolderS3) -> None:
    for i in range(3):
        s3.put("bkt", f"shards/part-{i}.csv", f"{i}\n")
    s3.put("bkt", "full/sub/all.csv", "x\n")
    request = script_request(
        s3,
        {"train.py": "pass\n"},
        count=2,
        channels=[
            channel("full", "s3://bkt/full"),
            channel("parts", "s3://bkt/shards/", "ShardedByS3Key"),
        ],
    )
    cluster = Cluster(request, tmp_path / "job", s3, Logs())
    cluster.prepare()
    for host in ("algo-1", "algo-2"):
        assert (tmp_path / f"job/{host}/input/data/full/sub/all.csv").read_text() == "x\n"
        assert (tmp_path / f"job/{host}/code/train.py").exists()
    parts = {
        h: sorted(p.name for p in (tmp_path / f"job/{h}/input/data/parts").iterdir())
        for h in ("algo-1", "algo-2")
    }
    assert parts == {"algo-1": ["part-0.csv", "part-2.csv"], "algo-2": ["part-1.csv"]}


def test_raising_script_gives_toolkit_failure_text(tmp_path: Path, s3: FolderS3) -> None:
    request = script_request(
        s3,
        {
            "train.py": """
        import sys
        print("epoch 1")
        raise ValueError("boom from user script")
    """
        },
        hps={"epochs": "3", "name": '"a b"'},
    )
    cluster, outcome, logs = run_job(tmp_path, s3, request)
    assert outcome.exit_codes == [1] and outcome.failed_host == "algo-1"
    reason = outcome.failure_reason
    assert reason.startswith(
        "AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage "
        '"raise ValueError("boom from user script")\n ValueError: boom from '
        'user script"\nCommand "'
    )
    assert reason.endswith('-- train.py --epochs 3 --name a b"')
    failure = (tmp_path / "jobs/job/algo-1/output/failure").read_text()
    assert reason == "AlgorithmError: " + failure
    assert "epoch 1" in logs.text("algo-1") and "Reporting training FAILURE" in logs.text("algo-1")


def test_signal_killed_script_reports_the_signal(tmp_path: Path, s3: FolderS3) -> None:
    request = script_request(
        s3,
        {
            "train.py": """
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    """
        },
    )
    _, outcome, _ = run_job(tmp_path, s3, request)
    assert outcome.exit_codes == [-9]
    assert outcome.failure_reason.startswith(
        'AlgorithmError: ExecuteUserScriptError:\nExitCode -9\nErrorMessage ""\nCommand "'
    )


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stop_leaves_no_process(tmp_path: Path, s3: FolderS3) -> None:
    request = script_request(
        s3,
        {
            "train.py": """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        print("child", child.pid, flush=True)
        time.sleep(120)
    """
        },
        count=2,
    )
    logs = Logs()
    cluster = Cluster(request, tmp_path / "job", s3, logs)
    cluster.prepare()
    cluster.start()
    wait_for(lambda: all("child" in logs.text(h) for h in ("algo-1", "algo-2")), timeout=60)
    pids = [
        int(line.split()[1])
        for h in ("algo-1", "algo-2")
        for line in logs.lines[h]
        if line.startswith("child ")
    ]
    pids += [w.proc.pid for w in cluster._workers]
    assert len(pids) == 4
    cluster.stop(grace_s=2)
    assert cluster.wait(5)
    assert not [pid for pid in pids if _alive(pid)]
    assert cluster.outcome().failure_reason is None


def test_failing_host_stops_the_others(tmp_path: Path, s3: FolderS3) -> None:
    request = script_request(
        s3,
        {
            "train.py": """
        import os, time
        if os.environ["SM_CURRENT_HOST"] == "algo-2":
            raise RuntimeError("algo-2 broke")
        time.sleep(120)
        print("algo-1 slept it out", flush=True)
    """
        },
        count=2,
    )
    # run_job's bounded wait (60 s, under algo-1's 120 s sleep) ends only if algo-1 is stopped
    _, outcome, logs = run_job(tmp_path, s3, request, timeout=60)
    assert (
        outcome.failed_host == "algo-2" and "RuntimeError: algo-2 broke" in outcome.failure_reason
    )
    # algo-1 was ended by the others' SIGTERM (SIGKILL after the grace), not by its own end
    assert outcome.exit_codes == [-signal.SIGTERM, 1] or outcome.exit_codes == [-signal.SIGKILL, 1]
    assert "slept it out" not in logs.text("algo-1")


ALLREDUCE = """
import json, os
import torch
import torch.distributed as dist
hosts = json.loads(os.environ["SM_HOSTS"])
rank = hosts.index(os.environ["SM_CURRENT_HOST"])
url = f"tcp://{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
dist.init_process_group("gloo", init_method=url, rank=rank, world_size=len(hosts))
t = torch.tensor([rank + 1.0])
dist.all_reduce(t)
print("allreduce", t.item(), os.environ["NCCL_SOCKET_IFNAME"], os.environ["NCCL_IB_DISABLE"])
dist.destroy_process_group()
"""


def test_two_host_pytorch_job_all_reduces_over_loopback(tmp_path: Path, s3: FolderS3) -> None:
    request = script_request(s3, {"train.py": ALLREDUCE}, count=2)
    cluster, outcome, logs = run_job(tmp_path, s3, request)
    assert outcome.failure_reason is None, logs.lines
    for host in ("algo-1", "algo-2"):
        assert "allreduce 3.0 lo 1" in logs.lines[host]
        assert (tmp_path / f"jobs/job/{host}/output/success").exists()
    uri = cluster.collect(s3, "s3://bkt/out")
    assert uri == "s3://bkt/out/job/output/model.tar.gz"
    assert (s3.root / "bkt/out/job/output/output.tar.gz").exists()


TORCHRUN_ENV = """
import os
import torch
import torch.distributed as dist
keys = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "SM_NUM_GPUS"]
print(" ".join(f"{k}={os.environ[k]}" for k in keys))
dist.init_process_group("gloo")  # env:// from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
t = torch.ones(1)
dist.all_reduce(t)
print("sum", t.item())
dist.destroy_process_group()
"""


def test_torch_distributed_mode_sets_torchrun_env(tmp_path: Path, s3: FolderS3) -> None:
    request = script_request(
        s3,
        {"train.py": TORCHRUN_ENV},
        count=2,
        instance="ml.g4dn.xlarge",
        hps={
            "sagemaker_torch_distributed_enabled": "true",
            "sagemaker_instance_type": '"ml.g4dn.xlarge"',
        },
    )
    _, outcome, logs = run_job(tmp_path, s3, request)
    assert outcome.failure_reason is None, logs.lines
    text1, text2 = logs.text("algo-1"), logs.text("algo-2")
    assert "RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 SM_NUM_GPUS=1" in text1
    assert "RANK=1 LOCAL_RANK=0 WORLD_SIZE=2 LOCAL_WORLD_SIZE=1 GROUP_RANK=1" in text2
    assert "sum 2.0" in text1 and "sum 2.0" in text2
    assert "the job runs on the CPU" in text1


def test_image_without_entry_point_is_refused(tmp_path: Path, s3: FolderS3) -> None:
    request = script_request(s3, {"train.py": ""}, image="1.dkr.ecr.us-east-1.amazonaws.com/x:1")
    del request["HyperParameters"]["sagemaker_program"]
    with pytest.raises(ClientError, match="^ClientError: localcloud cannot run the image"):
        Cluster(request, tmp_path / "job", s3, Logs()).prepare()
    # control: the same request naming a built-in algorithm's image is prepared to run it
    request["AlgorithmSpecification"]["TrainingImage"] = XGB_IMAGE
    cluster = Cluster(request, tmp_path / "builtin", s3, Logs())
    cluster.prepare()
    assert cluster.algorithm is not None and cluster.algorithm.module.endswith("xgboost_builtin")
    assert len(cluster._algorithm_ports) == cluster.algorithm.ports == 2


ENV_SEEN = """
import json, os
keys = ["HOST_ENV_MARK", "NOTEBOOK_INSTANCE_NAME", "TRAINING_JOB_NAME", "SM_CURRENT_HOST"]
print(json.dumps({k: os.environ.get(k) for k in keys}))
"""


def test_host_env_completes_the_base_env(tmp_path: Path, s3: FolderS3) -> None:
    seen: list[dict[str, str]] = []

    def host_env(base):
        seen.append(dict(base))
        return {**base, "HOST_ENV_MARK": "from host_env", "NOTEBOOK_INSTANCE_NAME": "nb"}

    request = script_request(s3, {"train.py": ENV_SEEN})
    logs = Logs()
    cluster = Cluster(request, tmp_path / "with", s3, logs, host_env=host_env)
    cluster.prepare()
    cluster.start()
    assert cluster.wait(60) and cluster.outcome().exit_codes == [0]
    printed = json.loads(next(line for line in logs.lines["algo-1"] if line.startswith("{")))
    assert printed == {
        "HOST_ENV_MARK": "from host_env",
        "NOTEBOOK_INSTANCE_NAME": None,  # a training host is no notebook instance
        "TRAINING_JOB_NAME": "job",
        "SM_CURRENT_HOST": "algo-1",
    }
    [base] = seen  # called once per job, with the scrubbed platform env
    assert base["TRAINING_JOB_NAME"] == "job" and not any(k.startswith("SM_") for k in base)
    # control: without host_env the base env is used as is
    _, outcome, logs = run_job(tmp_path, s3, script_request(s3, {"train.py": ENV_SEEN}))
    printed = json.loads(next(line for line in logs.lines["algo-1"] if line.startswith("{")))
    assert outcome.exit_codes == [0] and printed["HOST_ENV_MARK"] is None
    assert printed["TRAINING_JOB_NAME"] == "job" and printed["SM_CURRENT_HOST"] == "algo-1"


def test_output_path_that_is_no_s3_uri_is_a_client_error(tmp_path: Path, s3: FolderS3) -> None:
    cluster, outcome, _ = run_job(tmp_path, s3, script_request(s3, {"train.py": "pass\n"}))
    assert outcome.exit_codes == [0]
    with pytest.raises(ClientError, match=r"^ClientError: Not an S3 URI: 'bkt/out'$"):
        cluster.collect(s3, "bkt/out")
    assert not (s3.root / "bkt/out").exists()
    # control: the same artifacts go up under an s3:// URI
    assert cluster.collect(s3, "s3://bkt/out") == "s3://bkt/out/job/output/model.tar.gz"


def test_requirements_offline(tmp_path: Path, s3: FolderS3) -> None:
    ok = script_request(s3, {"train.py": "print('ran')\n", "requirements.txt": "numpy\nxgboost\n"})
    _, outcome, logs = run_job(tmp_path, s3, ok)
    assert outcome.failure_reason is None and "ran" in logs.lines["algo-1"]
    bad = script_request(s3, {"train.py": "", "requirements.txt": "no-such-pkg-xyz==1.0\n"})
    with pytest.raises(ClientError, match="not installed: no-such-pkg-xyz==1.0"):
        Cluster(bad, tmp_path / "job2", s3, Logs()).prepare()


def test_unsafe_source_archive_fails_the_job(tmp_path: Path, s3: FolderS3) -> None:
    request = script_request(s3, {"train.py": "", "../escape.py": "x = 1\n"})
    with pytest.raises(ClientError, match="^ClientError: The archive s3://bkt/job/source/"):
        Cluster(request, tmp_path / "job", s3, Logs()).prepare()
    assert not (tmp_path / "escape.py").exists()
    assert not list((tmp_path / "job").glob("algo-*/code/*"))


def test_config_and_paths_seen_by_the_script(tmp_path: Path, s3: FolderS3) -> None:
    s3.put("bkt", "d/train_data.npz", "npz")
    request = script_request(
        s3,
        {
            "train.py": """
        import json, os, sys
        print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                          "train": os.environ["SM_CHANNEL_TRAIN"],
                          "exists": os.path.exists(sys.argv[2])}))
    """
        },
        hps={"train": '"/opt/ml/input/data/train/train_data.npz"'},
        channels=[channel("train", "s3://bkt/d")],
    )
    _, outcome, logs = run_job(tmp_path, s3, request)
    assert outcome.failure_reason is None
    seen = json.loads(next(line for line in logs.lines["algo-1"] if line.startswith("{")))
    root = tmp_path / "jobs/job/algo-1"
    assert seen == {
        "argv": ["--train", f"{root}/input/data/train/train_data.npz"],
        "cwd": f"{root}/code",
        "train": f"{root}/input/data/train",
        "exists": True,
    }


def test_logged_command_line_is_shell_quoted(tmp_path, s3):
    request = script_request(s3, {"train.py": "print('ok')\n"}, hps={"name": '"hello world"'})
    _, outcome, logs = run_job(tmp_path, s3, request)
    assert outcome.exit_codes == [0]
    assert "train.py --name 'hello world'" in logs.text("algo-1")


def test_free_ports_are_distinct():
    ports = _free_ports(20)
    assert len(set(ports)) == 20


def test_recorded_host_groups_are_killed_and_records_removed(tmp_path, s3):
    body = "import time\nprint('up', flush=True)\ntime.sleep(60)\n"
    request = script_request(s3, {"train.py": body})
    job_dir = tmp_path / "jobs" / "job"
    cluster = Cluster(request, job_dir, s3, Logs())
    cluster.prepare()
    cluster.start()
    records = job_dir / HOSTS_RECORD
    [pgid] = [int(p.name) for p in records.iterdir()]
    # a record whose id was reused by another process (here: this one) is left alone
    (tmp_path / "jobs" / "other" / HOSTS_RECORD).mkdir(parents=True)
    (tmp_path / "jobs" / "other" / HOSTS_RECORD / str(os.getpid())).write_text("1")
    assert kill_recorded_hosts(tmp_path / "jobs") == [pgid]  # as a server starting after a crash
    assert cluster.wait(30)
    assert cluster.outcome().exit_codes == [-9]
    assert list(records.iterdir()) == []
    assert not (tmp_path / "jobs" / "other" / HOSTS_RECORD / str(os.getpid())).exists()
