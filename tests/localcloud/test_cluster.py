"""Cluster driven directly with a fake S3 over a folder: data, code, processes, failures."""

from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from localcloud.jobs.cluster import Cluster, assign_objects, relative_key
from localcloud.jobs.container import ClientError

PT_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310"
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


class FakeS3:
    """S3Access over a local folder: <root>/<bucket>/<key>."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, bucket: str, key: str, body: bytes | str) -> None:
        path = self.root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body.encode() if isinstance(body, str) else body)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        base = self.root / bucket
        keys = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix))

    def download(self, bucket: str, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((self.root / bucket / key).read_bytes())

    def upload(self, src: Path, bucket: str, key: str) -> None:
        self.put(bucket, key, Path(src).read_bytes())


def source_tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def script_request(
    s3: FakeS3,
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


def channel(
    name: str, uri: str, distribution: str = "FullyReplicated", content_type: str | None = None
) -> dict:
    entry = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": distribution,
            }
        },
    }
    if content_type:
        entry["ContentType"] = content_type
    return entry


class Logs:
    """A log_sink that keeps every line per host."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}

    def __call__(self, host: str, line: str) -> None:
        self.lines.setdefault(host, []).append(line)

    def text(self, host: str) -> str:
        return "\n".join(self.lines.get(host, []))


def run_job(tmp_path: Path, s3: FakeS3, request: dict, timeout: float = 120) -> tuple:
    logs = Logs()
    cluster = Cluster(request, tmp_path / "jobs" / request["TrainingJobName"], s3, logs)
    cluster.prepare()
    cluster.start()
    assert cluster.wait(timeout), "hosts did not finish"
    return cluster, cluster.outcome(), logs


@pytest.fixture
def s3(tmp_path: Path) -> FakeS3:
    return FakeS3(tmp_path / "s3")


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


def test_channels_are_replicated_or_sharded(tmp_path: Path, s3: FakeS3) -> None:
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


def test_raising_script_gives_toolkit_failure_text(tmp_path: Path, s3: FakeS3) -> None:
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


def test_signal_killed_script_reports_the_signal(tmp_path: Path, s3: FakeS3) -> None:
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
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_stop_leaves_no_process(tmp_path: Path, s3: FakeS3) -> None:
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
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
        "child" in logs.text(h) for h in ("algo-1", "algo-2")
    ):
        time.sleep(0.1)
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


def test_failing_host_stops_the_others(tmp_path: Path, s3: FakeS3) -> None:
    request = script_request(
        s3,
        {
            "train.py": """
        import os, time
        if os.environ["SM_CURRENT_HOST"] == "algo-2":
            raise RuntimeError("algo-2 broke")
        time.sleep(120)
    """
        },
        count=2,
    )
    start = time.monotonic()
    _, outcome, _ = run_job(tmp_path, s3, request, timeout=60)
    assert time.monotonic() - start < 40
    assert (
        outcome.failed_host == "algo-2" and "RuntimeError: algo-2 broke" in outcome.failure_reason
    )
    assert outcome.exit_codes[0] != 0


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


def test_two_host_pytorch_job_all_reduces_over_loopback(tmp_path: Path, s3: FakeS3) -> None:
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


def test_torch_distributed_mode_sets_torchrun_env(tmp_path: Path, s3: FakeS3) -> None:
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


def test_image_without_entry_point_is_refused(tmp_path: Path, s3: FakeS3) -> None:
    request = script_request(s3, {"train.py": ""}, image="1.dkr.ecr.us-east-1.amazonaws.com/x:1")
    del request["HyperParameters"]["sagemaker_program"]
    with pytest.raises(ClientError, match="^ClientError: localcloud cannot run the image"):
        Cluster(request, tmp_path / "job", s3, Logs()).prepare()


def test_requirements_offline(tmp_path: Path, s3: FakeS3) -> None:
    ok = script_request(s3, {"train.py": "print('ran')\n", "requirements.txt": "numpy\nxgboost\n"})
    _, outcome, logs = run_job(tmp_path, s3, ok)
    assert outcome.failure_reason is None and "ran" in logs.lines["algo-1"]
    bad = script_request(s3, {"train.py": "", "requirements.txt": "no-such-pkg-xyz==1.0\n"})
    with pytest.raises(ClientError, match="not installed: no-such-pkg-xyz==1.0"):
        Cluster(bad, tmp_path / "job2", s3, Logs()).prepare()


def test_unsafe_source_archive_fails_the_job(tmp_path: Path, s3: FakeS3) -> None:
    request = script_request(s3, {"train.py": "", "../escape.py": "x = 1\n"})
    with pytest.raises(ClientError, match="^ClientError: The archive s3://bkt/job/source/"):
        Cluster(request, tmp_path / "job", s3, Logs()).prepare()
    assert not (tmp_path / "escape.py").exists()
    assert not list((tmp_path / "job").glob("algo-*/code/*"))


def test_config_and_paths_seen_by_the_script(tmp_path: Path, s3: FakeS3) -> None:
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
    from localcloud.jobs.cluster import _free_ports

    ports = _free_ports(20)
    assert len(set(ports)) == 20


def test_recorded_host_groups_are_killed_and_records_removed(tmp_path, s3):
    from localcloud.jobs.cluster import HOSTS_RECORD, kill_recorded_hosts

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
