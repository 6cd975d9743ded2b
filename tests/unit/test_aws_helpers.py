"""The learners' module helpers/AWS_helpers.py: its re-exports, its one signature rule, and the
moto account (mock_aws) that every tests/unit/test_helpers_*.py file builds on.

Where moto lacks an API (StopTrainingJob, Service Quotas for SageMaker) or a field
(BillableTimeInSeconds), a botocore event hook on the test's session answers or adds it.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    BotoCoreError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from helpers import AWS_helpers as h
from helpers import identity, session

REGION = "us-east-1"
ME = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:user/moto"
OTHER = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/learner/someone-else"
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/ml-sagemaker-use"
HELPERS = Path(h.__file__).resolve().parent
# Public helpers that never call AWS, so the session/region rule does not apply to them.
NOT_AWS = {"configure", "load_prices", "hourly_price", "check_builtin_csv", "plot_jobs"}
NOT_AWS |= {"aws_figure", "side_by_side", "image_support", "in_support", "load_reference", "as_of"}


@contextmanager
def moto_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[boto3.Session]:
    """A moto account and a session in us-east-1, with no ambient course settings."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("SAGEMAKER_ROLE", "NOTEBOOK_INSTANCE_NAME", "AWS_PROFILE", "LOCALCLOUD_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(identity, "RESOURCE_METADATA", tmp_path / "no-metadata.json")
    monkeypatch.setitem(session._DEFAULTS, "session", None)
    wired = sys.modules.get("localcloud.client")  # a localcloud test session may have wired us
    if wired is not None and getattr(wired, "_state", {}).get("endpoint"):
        monkeypatch.delitem(wired._state, "endpoint")
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def answer(
    session: boto3.Session, service: str, operation: str, reply: Callable[[dict], dict]
) -> list[dict]:
    """Answer `operation` with reply(params) instead of moto; return the list of params seen."""
    seen: list[dict] = []

    def handler(params: dict, **_: Any) -> tuple[AWSResponse, dict]:
        body = params.get("body") or {}
        if isinstance(body, bytes):
            body = body.decode()
        if isinstance(body, str):
            body = json.loads(body) if body.startswith("{") else {"raw": body}
        seen.append(body)
        parsed = reply(body)
        status = 400 if "Error" in parsed else 200
        return AWSResponse("https://stub", status, {}, None), parsed

    session.events.register(f"before-call.{service}.{operation}", handler)
    return seen


def error(code: str, message: str = "stubbed") -> dict:
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}


def patch_describe(session: boto3.Session, **fields_by_job: dict[str, Any]) -> None:
    """Add fields moto leaves out (BillableTimeInSeconds, ...) to DescribeTrainingJob answers."""

    def handler(parsed: dict, **_: Any) -> None:
        parsed.update(fields_by_job.get(parsed.get("TrainingJobName", ""), {}))

    session.events.register("after-call.sagemaker.DescribeTrainingJob", handler)


def backend() -> Any:
    return sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]


def make_job(
    session: boto3.Session,
    name: str,
    owner: str | None = ME,
    instance_type: str = "ml.m5.large",
    count: int = 1,
    status: str = "Completed",
    notebook: str | None = "02-training",
) -> str:
    """Create a moto training job with the course tags and the given status."""
    tags = [{"Key": "course", "Value": h.COURSE_TAG}]
    if owner:
        tags.append({"Key": "owner", "Value": owner})
    if notebook:
        tags.append({"Key": "notebook", "Value": notebook})
    session.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "xgboost:1.7-1", "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": "s3://bucket/out"},
        ResourceConfig={"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        Tags=tags if owner is not None or notebook else [],
    )
    backend().training_jobs[name].training_job_status = status
    return name


def make_bucket(session: boto3.Session, name: str = "me-titanic", region: str = REGION) -> Any:
    s3 = session.client("s3", region_name=region)
    config = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": config} if config else {}))
    return s3


def make_notebook(session: boto3.Session, name: str, owner: str | None = None) -> None:
    sm = session.client("sagemaker")
    tags = [{"Key": "course", "Value": h.COURSE_TAG}, {"Key": "owner", "Value": owner}]
    sm.create_notebook_instance(
        NotebookInstanceName=name,
        InstanceType="ml.t3.medium",
        RoleArn=ROLE,
        Tags=tags if owner else [],
    )
    sm.start_notebook_instance(NotebookInstanceName=name)


# ---------------------------------------------------------------- the module learners read


def _table() -> dict[str, str]:
    """Each name in AWS_helpers' docstring table, mapped to the module the table says it is in."""
    doc = (h.__doc__ or "").split("Where each helper lives", 1)[1]
    rows = doc.split("\n\n", 2)[1].splitlines()  # the block after the heading line
    where: dict[str, str] = {}
    module = ""
    for row in rows:
        cells = re.split(r"\s{2,}", row.strip())
        if cells[0].startswith("helpers/"):
            module, cells = cells[0].removeprefix("helpers/").removesuffix(".py"), cells[1:]
        where.update((name, module) for name in re.findall(r"\w+", cells[0]))
    return where


def test_every_learner_name_is_re_exported_and_the_table_says_where() -> None:
    assert len((HELPERS / "AWS_helpers.py").read_text().splitlines()) < 250
    table = _table()
    assert sorted(table) == sorted(h.__all__)
    for name in h.__all__:
        home = sys.modules[f"helpers.{table[name]}"]
        assert getattr(home, name) is getattr(h, name), f"{name} is not in helpers/{table[name]}"
        defined_in = getattr(getattr(h, name), "__module__", home.__name__)
        assert defined_in in (home.__name__, "builtins"), name


def test_every_aws_helper_takes_session_and_region_by_keyword() -> None:
    functions = {n: getattr(h, n) for n in h.__all__ if inspect.isfunction(getattr(h, n))}
    for name, function in functions.items():
        params = inspect.signature(function).parameters
        if name in NOT_AWS:
            assert "region" not in params, name
            continue
        for keyword in ("session", "region"):
            param = params[keyword]
            assert param.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}({keyword}=...)"
            assert param.default is None, f"{name}({keyword}=...)"
        assert list(params)[-2:] == ["session", "region"], name
    with pytest.raises(TypeError):
        h.owner_id(boto3.Session(region_name=REGION))  # type: ignore[misc]


def test_imports_point_one_way_without_cycles() -> None:
    """AWS_helpers → the other modules → session: a learner can read them in that order."""
    graph: dict[str, set[str]] = {}
    for path in HELPERS.glob("*.py"):
        tree = ast.parse(path.read_text())
        graph[path.stem] = {
            node.module.removeprefix("helpers.")
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers.")
        }
    order = list(TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert graph["session"] == set() and order[-1] == "AWS_helpers"
    assert not any("AWS_helpers" in deps for deps in graph.values())
    # kernel_setup runs before the course's packages are installed: standard library only
    assert graph["kernel_setup"] == set()
    assert graph["AWS_helpers"] == set(graph) - {"AWS_helpers", "__init__", "kernel_setup"}


def test_helpers_never_shell_out() -> None:
    sources = {p.stem: p.read_text() for p in HELPERS.glob("*.py")}
    assert len(sources) > 5
    for banned in ("subprocess", "os.system", "os.popen", "shell=True", "git push", "token"):
        for name, source in sources.items():
            if name == "kernel_setup" and banned == "subprocess":
                continue  # its one child process: this kernel's own pip (checked below)
            assert banned not in source, f"{name}: {banned}"
    assert sources["kernel_setup"].count("subprocess.run(") == 1
    assert 'command = [sys.executable, "-m", "pip", "install"' in sources["kernel_setup"]


# ---------------------------------------------------------------- session and errors


def test_configure_sets_the_default_session(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_bucket(aws, "me-frankfurt", "eu-central-1")
    with pytest.raises(h.HelperError, match="your session uses us-east-1"):
        h.check_bucket_region("me-frankfurt")

    class SdkSession:  # what sagemaker.Session exposes
        boto_session = boto3.Session(region_name="eu-central-1")

    h.configure(SdkSession())
    assert h.check_bucket_region("me-frankfurt") == "eu-central-1"
    with pytest.raises(h.HelperError, match="your session uses us-east-1"):
        h.check_bucket_region("me-frankfurt", session=aws)  # an explicit session still wins
    h.configure(boto3.Session(region_name=REGION))
    with pytest.raises(h.HelperError, match="your session uses us-east-1"):
        h.check_bucket_region("me-frankfurt")
    h.configure()
    assert session._DEFAULTS["session"] is None
    with pytest.raises(h.HelperError, match="boto3.Session or a sagemaker.Session"):
        h.configure("eu-central-1")


def test_no_region_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setitem(session._DEFAULTS, "session", None)
    with pytest.raises(h.HelperError, match="region='us-east-1'"):
        h.list_objects("bucket")


@pytest.mark.parametrize(
    ("failure", "fix"),
    [
        (NoCredentialsError(), "no AWS credentials; run on a SageMaker notebook"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:41000"),
            "cannot reach http://127.0.0.1:41000; check the region, or start localcloud",
        ),
        (NoRegionError(), "no region; pass region='us-east-1'"),
        (BotoCoreError(), "An unspecified error occurred"),
    ],
)
def test_transport_failures_are_one_line(aws: boto3.Session, failure: Exception, fix: str) -> None:
    def fail(**_: Any) -> None:
        raise failure

    aws.events.register("before-call.sts.GetCallerIdentity", fail)
    with pytest.raises(h.HelperError, match=re.escape(fix)) as caught:
        h.course_tags(session=aws)
    assert "\n" not in str(caught.value)


def test_accepts_a_sagemaker_session_and_maps_not_found(aws: boto3.Session) -> None:
    class SdkSession:  # what sagemaker.Session exposes
        boto_session = aws

    assert h.course_tags(session=SdkSession())[1]["value"] == ME
    answer(aws, "sagemaker", "DescribeTrainingJob", lambda _: error("ResourceNotFound"))
    with pytest.raises(h.HelperError, match=r"\(ResourceNotFound: stubbed\): check the name"):
        h.estimate_job_cost("gone", session=aws)
