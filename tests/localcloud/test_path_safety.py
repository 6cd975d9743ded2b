"""Paths a request or a training script decides never lead the job runner out of the job folder.

Each attack runs through a real CreateTrainingJob next to a control job that does the same thing
properly and succeeds; where the attack needs no server (a channel name the API would refuse)
the Cluster is driven directly.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from _lc_jobs import describe, unique, wait_for, write_script, xgboost_estimator

from localcloud.hosts.cluster import Cluster
from localcloud.hosts.errors import ClientError

TERMINAL = ("Completed", "Failed", "Stopped")


def start(session: Any, source: Path, inputs: dict[str, str] | None = None, **hps: str) -> str:
    """Start a script-mode job without waiting; returns its name."""
    estimator = xgboost_estimator(session, source, hyperparameters=hps or None)
    name = unique("paths")
    estimator.fit(inputs, wait=False, job_name=name)
    return name


def finished(session: Any, name: str) -> dict[str, Any]:
    """DescribeTrainingJob once the job has ended."""
    return wait_for(
        lambda: (d := describe(session, name))["TrainingJobStatus"] in TERMINAL and d,
        timeout=180,
        every=0.25,
    )


def tar_names(session: Any, uri: str) -> dict[str, bytes]:
    """The members of an archive in S3, by name."""
    bucket, key = uri[5:].split("/", 1)
    body = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def output_keys(session: Any, name: str) -> list[str]:
    """Objects the job uploaded under its output prefix."""
    client = session.boto_session.client("s3")
    prefix = f"{name}/output/"
    listing = client.list_objects_v2(Bucket=session.default_bucket(), Prefix=prefix)
    return sorted(o["Key"][len(prefix) :] for o in listing.get("Contents", []))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every job, holding a secret and a file a job must not overwrite."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("the secret")
    (folder / "victim.txt").write_text("original")
    return folder


def untouched(folder: Path) -> bool:
    """The outside folder still holds exactly what the fixture put there."""
    return sorted(p.name for p in folder.iterdir()) == ["secret.txt", "victim.txt"] and (
        (folder / "victim.txt").read_text() == "original"
    )


LISTS_CHANNEL = """
import os
print("seen:", sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])))
"""


@pytest.mark.localcloud
def test_s3_keys_with_dot_dot_or_a_leading_slash_fail_the_job(
    sm_session, localcloud_server, tmp_path
):
    s3 = sm_session.boto_session.client("s3")
    bucket = sm_session.default_bucket()
    tag = uuid.uuid4().hex[:10]
    escape = f"escape-{tag}"
    # Old cache path: <job>/.s3cache/<bucket>/<key>: five '..' from there reach the server home.
    dots = f"ps-{tag}/../../../../../{escape}"
    slash = f"/{escape}"  # joined to a folder, an absolute name replaces it: the filesystem root
    plain = f"ps-{tag}/data.csv"
    for key in (dots, slash, plain):
        s3.put_object(Bucket=bucket, Key=key, Body=b"a,b\n1,2\n")
    assert {dots, slash} <= {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    source = write_script(tmp_path / "src", LISTS_CHANNEL)
    names = {
        key: start(sm_session, source, {"train": f"s3://{bucket}/{key}"})
        for key in (dots, slash, plain)
    }
    jobs = {key: finished(sm_session, name) for key, name in names.items()}

    assert jobs[plain]["TrainingJobStatus"] == "Completed"
    log = (localcloud_server.home / "jobs" / names[plain] / "algo-1.log").read_text()
    assert "seen: ['data.csv']" in log
    failed = "ClientError: Data download failed:Failed to download data. S3 key: "
    assert jobs[dots]["FailureReason"] == (
        f"{failed}{dots} has an illegal path segment ('..') in it: it would be written outside "
        "/opt/ml/input/data/train, so nothing was downloaded"
    )
    assert jobs[slash]["FailureReason"] == (
        f"{failed}{slash} has an illegal path segment (a leading '/') in it: it would be "
        "written outside /opt/ml/input/data/train, so nothing was downloaded"
    )
    home = localcloud_server.home
    for place in (home, home.parent, Path("/")):
        assert not (place / escape).exists()
    assert not list(home.rglob(f"{escape}*"))
    for key in (dots, slash):
        job_dir = home / "jobs" / names[key]
        assert list((job_dir / "algo-1" / "input" / "data").iterdir()) == []  # nothing fetched


ESCAPES_MODEL = """
import os, shutil, sys
model, outside = os.environ["SM_MODEL_DIR"], sys.argv[sys.argv.index("--outside") + 1]
if "--replace" in sys.argv:
    shutil.rmtree(model)
    os.symlink(outside, model)
if "--links" in sys.argv:
    open(os.path.join(model, "model.txt"), "w").write("weights")
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(model, "leak.txt"))
    os.symlink(outside, os.path.join(model, "leakdir"))
"""


@pytest.mark.localcloud
def test_model_folder_replaced_by_a_link_fails_the_upload(sm_session, tmp_path, outside):
    source = write_script(tmp_path / "src", ESCAPES_MODEL)
    links = start(sm_session, source, outside=str(outside), links="1")
    replaced = start(sm_session, source, outside=str(outside), replace="1")

    control = finished(sm_session, links)  # links inside the folder: left out, job completes
    assert control["TrainingJobStatus"] == "Completed", control.get("FailureReason")
    model = tar_names(sm_session, control["ModelArtifacts"]["S3ModelArtifacts"])
    assert model == {"model.txt": b"weights"}

    job = finished(sm_session, replaced)
    assert job["FailureReason"] == (
        "ClientError: Artifact upload failed:/opt/ml/model on algo-1 could not be packed: "
        "/opt/ml/model is a symbolic link; localcloud packs only a real folder and follows no "
        "link out of it, so nothing was uploaded"
    )
    assert "model.tar.gz" not in output_keys(sm_session, replaced)
    assert untouched(outside)


FAILS_THROUGH_LINKS = """
import os, shutil, sys
outside = sys.argv[sys.argv.index("--outside") + 1]
output = os.environ["SM_OUTPUT_DIR"]
if "--failure-link" in sys.argv:
    os.symlink(os.path.join(outside, "victim.txt"), os.path.join(output, "failure"))
if "--output-link" in sys.argv:
    shutil.rmtree(output)
    os.symlink(outside, output)
if "--data" in sys.argv:
    open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.txt"), "w").write("m")
if "--fail" in sys.argv:
    raise ValueError("boom")
"""


@pytest.mark.localcloud
def test_failure_and_success_files_are_never_written_through_links(
    sm_session, localcloud_server, tmp_path, outside
):
    source = write_script(tmp_path / "src", FAILS_THROUGH_LINKS)
    common = {"outside": str(outside)}
    names = {
        "control_fail": start(sm_session, source, **common, fail="1"),
        "failure_link": start(sm_session, source, **common, fail="1", **{"failure-link": "1"}),
        "output_link_fail": start(sm_session, source, **common, fail="1", **{"output-link": "1"}),
        "control_ok": start(sm_session, source, **common, data="1"),
    }
    jobs = {k: finished(sm_session, n) for k, n in names.items()}
    jobs_dir = localcloud_server.home / "jobs"

    def error(key: str) -> str:  # the reason without its Command line (the arguments differ)
        return jobs[key]["FailureReason"].split('\nCommand "')[0]

    assert error("control_fail").startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1")
    assert error("control_fail").endswith('ValueError: boom"')
    assert error("failure_link") == error("output_link_fail") == error("control_fail")
    failure = jobs_dir / names["failure_link"] / "algo-1" / "output" / "failure"
    assert not failure.is_symlink()  # the script's link was replaced by the platform's file
    assert "AlgorithmError: " + failure.read_text() == jobs["failure_link"]["FailureReason"]

    assert jobs["control_ok"]["TrainingJobStatus"] == "Completed"
    assert (jobs_dir / names["control_ok"] / "algo-1" / "output" / "success").is_file()
    bucket = sm_session.default_bucket()
    packed = tar_names(sm_session, f"s3://{bucket}/{names['control_ok']}/output/output.tar.gz")
    assert packed == {"metrics.txt": b"m"}
    assert untouched(outside)  # no failure, success or output.tar.gz content went there


@pytest.mark.localcloud
def test_output_folder_replaced_by_a_link_fails_the_upload(sm_session, tmp_path, outside):
    source = write_script(tmp_path / "src", FAILS_THROUGH_LINKS)
    name = start(sm_session, source, outside=str(outside), **{"output-link": "1"})
    job = finished(sm_session, name)
    assert job["FailureReason"] == (
        "ClientError: Artifact upload failed:/opt/ml/output/data on algo-1 could not be "
        "packed: /opt/ml/output is a symbolic link; localcloud packs only a real folder and "
        "follows no link out of it, so nothing was uploaded"
    )
    assert untouched(outside)  # in particular no "success" file written through the link


# ---------------------------------------------------------------- channel names (no server)


class FolderS3:
    """S3Access over a dict of keys; downloads write the key's own text."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return sorted(k for k in self.keys if k.startswith(prefix))

    def download(self, bucket: str, key: str, dest: Path) -> None:
        dest.write_text(key)

    def upload(self, src: Path, bucket: str, key: str) -> None:
        raise AssertionError("nothing is uploaded here")


def xgboost_request(channel: str) -> dict[str, Any]:
    """A built-in XGBoost request (no code to fetch) with one channel."""
    return {
        "TrainingJobName": "job",
        "AlgorithmSpecification": {
            "TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            "TrainingInputMode": "File",
        },
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/d"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }


@pytest.mark.parametrize("bad", ["../../x", "/abs", "..", ".", "a/b", ""])
def test_channel_names_that_leave_input_data_are_refused(tmp_path: Path, bad: str) -> None:
    s3 = FolderS3(["d/part.csv"])
    (tmp_path / "ok" / "job").mkdir(parents=True)
    good = Cluster(xgboost_request("train"), tmp_path / "ok" / "job", s3, lambda h, line: None)
    good.prepare()
    assert (tmp_path / "ok/job/algo-1/input/data/train/part.csv").read_text() == "d/part.csv"

    job_dir = tmp_path / "jobs" / "job"
    job_dir.mkdir(parents=True)
    with pytest.raises(ClientError, match="^ClientError: Channel name .* cannot be used"):
        Cluster(xgboost_request(bad), job_dir, s3, lambda h, line: None).prepare()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs", "ok"]
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == ["job"]
    assert not (job_dir / "algo-1").exists()  # refused before any host folder was made
