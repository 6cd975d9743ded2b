"""Unit tests of helpers/AWS_helpers.py against moto in-process (mock_aws).

Where moto lacks an API (StopTrainingJob, Service Quotas for SageMaker) or a field
(BillableTimeInSeconds), a botocore event hook on the test's session answers or adds it.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from helpers import AWS_helpers as h

REGION = "us-east-1"
ME = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:user/moto"
OTHER = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/learner/someone-else"
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/ml-sagemaker-use"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[boto3.Session]:
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
    monkeypatch.setattr(h, "RESOURCE_METADATA", tmp_path / "no-metadata.json")
    monkeypatch.setitem(h._DEFAULTS, "session", None)
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


# ---------------------------------------------------------------- notebook instance and role


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


def test_notebook_info_with_the_lessons_positional_call(aws: boto3.Session) -> None:
    make_notebook(aws, "team-doe-titanic")
    info = h.get_notebook_instance_info("team-doe-titanic", REGION)
    assert (info.name, info.instance_type, info.region) == (
        "team-doe-titanic",
        "ml.t3.medium",
        REGION,
    )
    assert info.status == "InService"


def test_notebook_info_finds_this_instance(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    make_notebook(aws, "from-env")
    make_notebook(aws, "from-metadata")
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "from-env")
    assert h.get_notebook_instance_info(session=aws).name == "from-env"
    meta = tmp_path / "resource-metadata.json"
    meta.write_text(json.dumps({"ResourceName": "from-metadata"}))
    monkeypatch.setattr(h, "RESOURCE_METADATA", meta)
    assert h.get_notebook_instance_info().name == "from-metadata"
    meta.write_text("not json")
    assert h.get_notebook_instance_info().name == "from-env"


def test_notebook_info_bad_input(aws: boto3.Session) -> None:
    with pytest.raises(h.HelperError, match="pass name="):
        h.get_notebook_instance_info()
    with pytest.raises(h.HelperError, match="check the name in SageMaker → Notebooks"):
        h.get_notebook_instance_info("nobody", session=aws)


def test_no_region_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(h.HelperError, match="region='us-east-1'"):
        h.list_objects("bucket")


def test_resolve_role_explicit_env_and_name(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert h.resolve_role(ROLE) == ROLE
    monkeypatch.setenv("SAGEMAKER_ROLE", ROLE)
    assert h.resolve_role() == ROLE
    trust = {"Version": "2012-10-17", "Statement": []}
    aws.client("iam").create_role(
        RoleName="course-role", AssumeRolePolicyDocument=json.dumps(trust)
    )
    assert h.resolve_role("course-role", session=aws).endswith(":role/course-role")
    with pytest.raises(h.HelperError, match="exact role name"):
        h.resolve_role("no-such-role", session=aws)
    with pytest.raises(h.HelperError, match="not an IAM role ARN"):
        h.resolve_role(ME)


def test_resolve_role_off_sagemaker_never_uses_your_own_identity(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sagemaker

    # What the SDK does off SageMaker for an assumed (e.g. SSO) identity: a role ARN that
    # SageMaker cannot assume. The helper must not ask it.
    sso_role = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/AWSReservedSSO_Admin_0123"
    monkeypatch.setattr(sagemaker, "get_execution_role", lambda *_a, **_k: sso_role)
    with pytest.raises(h.HelperError, match="no execution role.*set SAGEMAKER_ROLE") as caught:
        h.resolve_role(session=aws)
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("SAGEMAKER_ROLE", ROLE)
    assert h.resolve_role(session=aws) == ROLE


def test_resolve_role_uses_the_sdk_on_sagemaker(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import sagemaker

    meta = tmp_path / "resource-metadata.json"
    meta.write_text(json.dumps({"ResourceName": "team-doe-titanic"}))
    monkeypatch.setattr(h, "RESOURCE_METADATA", meta)
    monkeypatch.setattr(sagemaker, "get_execution_role", lambda _session: ROLE)
    assert h.resolve_role(session=aws) == ROLE
    assert h.resolve_role("arn:aws:iam::111111111111:role/explicit").endswith("/explicit")

    def broken(_session: Any) -> str:
        raise h.ClientError(error("AccessDenied"), "GetRole")

    monkeypatch.setattr(sagemaker, "get_execution_role", broken)
    with pytest.raises(h.HelperError, match="set SAGEMAKER_ROLE"):
        h.resolve_role(session=aws)
    monkeypatch.setenv("SAGEMAKER_ROLE", ROLE)
    assert h.resolve_role(session=aws) == ROLE


def test_owner_learner_and_prefix(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    assert h.owner_id(aws) == ME
    assert (h.learner_id(aws), h.course_prefix(aws)) == ("moto", "titanic-course/moto")
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "Team-Doe_Titanic")
    assert h.owner_id(aws) == f"{ME}/notebook-instance/Team-Doe_Titanic"
    assert h.course_prefix() == "titanic-course/team-doe-titanic"
    meta = tmp_path / "resource-metadata.json"
    meta.write_text(json.dumps({"ResourceName": "from-metadata"}))
    monkeypatch.setattr(h, "RESOURCE_METADATA", meta)
    assert h.owner_id() == f"{ME}/notebook-instance/from-metadata"
    assert h.course_tags(session=aws)[1] == {"Key": "owner", "Value": h.owner_id(aws)}
    monkeypatch.setattr(h, "RESOURCE_METADATA", tmp_path / "none.json")
    monkeypatch.delenv("NOTEBOOK_INSTANCE_NAME")
    sso = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/AWSReservedSSO_Admin/Jane.Doe@ex.com"
    identity = {"Arn": sso, "UserId": "AROA:jane", "Account": DEFAULT_ACCOUNT_ID}
    answer(aws, "sts", "GetCallerIdentity", lambda _: identity)
    assert h.learner_id(aws) == "jane-doe-ex-com"
    assert h.owner_id(aws) == sso


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
    assert h._DEFAULTS["session"] is None
    with pytest.raises(h.HelperError, match="boto3.Session or a sagemaker.Session"):
        h.configure("eu-central-1")


# ---------------------------------------------------------------- S3


def test_s3_listing_size_and_cost(aws: boto3.Session) -> None:
    s3 = make_bucket(aws)
    s3.put_object(Bucket="me-titanic", Key="titanic-course/train.csv", Body=b"x" * 300)
    s3.put_object(Bucket="me-titanic", Key="titanic-course/test.csv", Body=b"x" * 100)
    s3.put_object(Bucket="me-titanic", Key="other/notes.txt", Body=b"x" * 50)
    assert h.list_objects("me-titanic", "titanic-course/") == [
        "titanic-course/test.csv",
        "titanic-course/train.csv",
    ]
    assert h.bucket_size("me-titanic") == 450
    assert h.bucket_size("me-titanic", "titanic-course/", session=aws) == 400
    assert h.storage_cost("me-titanic", "other/") == pytest.approx(50 / 1024**3 * 0.023)


def test_s3_bad_input(aws: boto3.Session) -> None:
    with pytest.raises(h.HelperError, match="check the bucket name"):
        h.list_objects("no-such-bucket")
    with pytest.raises(h.HelperError, match="bare bucket name"):
        h.bucket_size("s3://me-titanic/data")


def test_bucket_region(aws: boto3.Session) -> None:
    make_bucket(aws)
    make_bucket(aws, "me-frankfurt", "eu-central-1")
    assert h.check_bucket_region("me-titanic", session=aws) == REGION
    assert h.check_bucket_region("me-frankfurt", region="eu-central-1") == "eu-central-1"
    with pytest.raises(h.HelperError, match="is in eu-central-1 but your session uses us-east-1"):
        h.check_bucket_region("me-frankfurt", session=aws)
    with pytest.raises(h.HelperError, match="no such bucket"):
        h.check_bucket_region("no-such-bucket", session=aws)


def test_bucket_region_falls_back_to_get_bucket_location(aws: boto3.Session) -> None:
    make_bucket(aws)
    answer(aws, "s3", "HeadBucket", lambda _: {"ResponseMetadata": {"HTTPHeaders": {}}})
    assert h.check_bucket_region("me-titanic", session=aws) == REGION


# ---------------------------------------------------------------- prices and cost


def test_price_table_is_dated_and_sourced() -> None:
    table = h.load_prices()
    assert table["retrieved"] == "2026-11-26" and table["region"] == "us-east-1"
    assert "not verified" in table["source"]
    for instance_type in ("ml.m5.large", "ml.m5.xlarge", "ml.g4dn.xlarge"):
        assert h.hourly_price(instance_type) > 0
    assert h.hourly_price("ml.t3.medium", "notebook") == 0.05
    with pytest.warns(UserWarning, match="no training price for ml.x9.huge"):
        assert h.hourly_price("ml.x9.huge") is None
    with pytest.raises(h.HelperError, match="'training' or 'notebook'"):
        h.hourly_price("ml.m5.large", "inference")


def test_price_table_errors(tmp_path: Any) -> None:
    with pytest.raises(h.HelperError, match="restore helpers/prices.json"):
        h.load_prices(tmp_path / "missing.json")
    partial = tmp_path / "partial.json"
    partial.write_text('{"retrieved": "2026-11-26"}')
    with pytest.raises(h.HelperError, match="has no 'region'"):
        h.load_prices(partial)


def test_estimate_job_cost(aws: boto3.Session) -> None:
    make_job(aws, "two-hosts", count=2)
    make_job(aws, "running", status="InProgress")
    make_job(aws, "exotic", instance_type="ml.trn1.2xlarge")
    make_job(aws, "mixed")
    groups = [
        {"InstanceType": "ml.m5.large", "InstanceCount": 1, "InstanceGroupName": "a"},
        {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "InstanceGroupName": "b"},
    ]
    patch_describe(
        aws,
        **{
            "two-hosts": {"BillableTimeInSeconds": 130},
            "exotic": {"BillableTimeInSeconds": 100},
            "mixed": {"BillableTimeInSeconds": 3600, "ResourceConfig": {"InstanceGroups": groups}},
        },
    )
    assert h.estimate_job_cost("two-hosts", session=aws) == pytest.approx(130 * 2 * 0.115 / 3600)
    assert h.estimate_job_cost("mixed", session=aws) == pytest.approx(0.115 + 0.736)
    with pytest.warns(UserWarning, match="InProgress and has no billable time"):
        assert h.estimate_job_cost("running", session=aws) is None
    with pytest.warns(UserWarning, match="ml.trn1.2xlarge"):
        assert h.estimate_job_cost("exotic", session=aws) is None
    with pytest.raises(h.HelperError, match="check the name with job_summary"):
        h.estimate_job_cost("no-such-job", session=aws)
    with pytest.raises(h.HelperError, match="job_name must be"):
        h.estimate_job_cost("", session=aws)


# ---------------------------------------------------------------- tags and summary


def test_course_tags(aws: boto3.Session) -> None:
    tags = h.course_tags("02-training", session=aws)
    assert tags == [
        {"Key": "course", "Value": "sagemaker-titanic"},
        {"Key": "owner", "Value": ME},
        {"Key": "notebook", "Value": "02-training"},
    ]
    assert [t["Key"] for t in h.course_tags()] == ["course", "owner"]


def test_record_test_accuracy(aws: boto3.Session) -> None:
    make_job(aws, "job-a")
    assert h.record_test_accuracy("job-a", 0.82123, session=aws) == "0.8212"
    tags = aws.client("sagemaker").list_tags(ResourceArn=backend().training_jobs["job-a"].arn)
    assert {"Key": "test_accuracy", "Value": "0.8212"} in tags["Tags"]
    for bad in (98.0894, -0.1, float("nan"), "0.8", True):
        with pytest.raises(h.HelperError, match="between 0 and 1"):
            h.record_test_accuracy("job-a", bad, session=aws)
    with pytest.raises(h.HelperError, match="check the name"):
        h.record_test_accuracy("no-such-job", 0.5, session=aws)


def test_job_summary(aws: boto3.Session) -> None:
    make_job(aws, "titanic-xgb-1")
    make_job(aws, "titanic-xgb-2", instance_type="ml.m5.xlarge", count=2, notebook=None)
    make_job(aws, "titanic-running", status="InProgress")
    make_job(aws, "titanic-foreign", owner=None, notebook=None)  # no course tag
    make_job(aws, "other-xgb", notebook="99-other")
    make_job(aws, "titanic-theirs", owner=OTHER)
    h.record_test_accuracy("titanic-xgb-1", 0.8156, session=aws)
    h.record_test_accuracy("titanic-xgb-1", 0.8212, session=aws)  # the last value wins
    created = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    patch_describe(
        aws,
        **{
            "titanic-xgb-1": {
                "BillableTimeInSeconds": 130,
                "TrainingTimeInSeconds": 130,
                "CreationTime": created,
                "TrainingEndTime": created + timedelta(seconds=215.5),
            },
            "titanic-xgb-2": {"BillableTimeInSeconds": 114, "TrainingTimeInSeconds": 114},
        },
    )
    df = h.job_summary(session=aws)
    assert set(df.job_name) == {"titanic-xgb-1", "titanic-xgb-2", "titanic-running", "other-xgb"}
    assert list(df.columns[: len(h.SUMMARY_COLUMNS)]) == h.SUMMARY_COLUMNS
    columns = list(df.columns)
    assert columns.index("wall_seconds") + 1 == columns.index("training_seconds")
    assert list(df.columns[-2:]) == ["test_accuracy", "created"]
    two = df.set_index("job_name").loc["titanic-xgb-2"]
    assert two.config == "ml.m5.xlarge × 2" and two.instance_count == 2
    assert (two.billable_seconds, two.billed_instance_seconds) == (114, 228)
    assert two.cost_usd == pytest.approx(228 * 0.23 / 3600)
    one = df.set_index("job_name").loc["titanic-xgb-1"]
    assert (one.notebook, one.test_accuracy, one["train:progress"]) == ("02-training", 0.8212, 100)
    assert (one.wall_seconds, one.training_seconds) == (215.5, 130)
    assert pd.isna(df.set_index("job_name").loc["titanic-running"].cost_usd)

    by_prefix = h.job_summary("titanic-", tag=None, session=aws)
    assert set(by_prefix.job_name) == {
        "titanic-xgb-1",
        "titanic-xgb-2",
        "titanic-running",
    }
    everyone = h.job_summary("titanic-", tag=None, mine=False, session=aws)
    assert set(everyone.job_name) == set(by_prefix.job_name) | {"titanic-foreign", "titanic-theirs"}
    assert len(h.job_summary(limit=2, session=aws)) == 2
    empty = h.job_summary("nothing-", session=aws)
    assert empty.empty and "cost_usd" in empty.columns


def test_job_summary_limits_after_filtering(aws: boto3.Session) -> None:
    make_job(aws, "course-old")
    make_job(aws, "course-new")
    busy = []
    for n in range(3):  # a busy account: newer jobs that are not the course's, or not yours
        busy += [
            make_job(aws, f"foreign-{n}", owner=None),
            make_job(aws, f"theirs-{n}", owner=OTHER),
        ]
    newest_first = [*busy[::-1], "course-new", "course-old"]
    summaries = [
        {"TrainingJobName": n, "TrainingJobArn": backend().training_jobs[n].arn}
        for n in newest_first
    ]

    def pages_of_three(params: dict) -> dict:
        start = int(params.get("NextToken", 0))
        page: dict[str, Any] = {"TrainingJobSummaries": summaries[start : start + 3]}
        if start + 3 < len(summaries):
            page["NextToken"] = str(start + 3)
        return page

    answer(aws, "sagemaker", "ListTrainingJobs", pages_of_three)
    assert list(h.job_summary(limit=2, session=aws).job_name) == ["course-new", "course-old"]
    assert list(h.job_summary(limit=1, session=aws).job_name) == ["course-new"]


def test_job_summary_bad_input(aws: boto3.Session) -> None:
    with pytest.raises(h.HelperError, match="give prefix="):
        h.job_summary(tag=None)
    with pytest.raises(h.HelperError, match="tag must be a"):
        h.job_summary(tag=("course",))


def test_plot_jobs_is_headless() -> None:
    df = pd.DataFrame(
        {
            "config": ["ml.m5.large × 1", "ml.m5.large × 1", "ml.m5.xlarge × 2"],
            "wall_seconds": [200, 180, 150],
            "training_seconds": [130, 120, 114],
            "cost_usd": [0.004, 0.0038, None],
            "job_name": ["a", "b", "c"],
        }
    )
    fig = h.plot_jobs(df)
    left, right = fig.axes
    assert [round(p.get_width()) for p in left.patches] == [190, 150, 125, 114]  # wall, training
    assert right.get_title() == "Estimated cost per job"
    fig.savefig(io.BytesIO(), format="png")
    assert fig._repr_png_().startswith(b"\x89PNG")
    with pytest.raises(h.HelperError, match="no jobs to plot"):
        h.plot_jobs(df.iloc[0:0])
    with pytest.raises(h.HelperError, match="returned by job_summary"):
        h.plot_jobs([1, 2])
    with pytest.raises(h.HelperError, match="returned by job_summary"):
        h.plot_jobs(df.drop(columns="wall_seconds"))


def test_plot_jobs_shows_as_png_in_jupyter_without_pyplot(tmp_path: Any) -> None:
    """The lesson cell `helpers.plot_jobs(df)` must display an image in a plain python3 kernel."""
    import nbclient
    import nbformat

    source = (
        "import sys\n"
        "import pandas as pd\n"
        "from helpers import AWS_helpers as h\n"
        "df = pd.DataFrame({'config': ['ml.m5.large × 1'], 'wall_seconds': [200.0],"
        " 'training_seconds': [130.0], 'cost_usd': [0.004]})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "h.plot_jobs(df)"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    root = Path(h.__file__).resolve().parents[1]
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(root)}}
    )
    client.execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs if o.output_type == "error"] == []
    assert any("image/png" in o.get("data", {}) for o in outputs), outputs


# ---------------------------------------------------------------- preflight


QUOTAS = [
    {"QuotaName": "ml.m5.large for training job usage", "QuotaCode": "L-M5L", "Value": 20.0},
    {"QuotaName": "ml.g4dn.xlarge for training job usage", "QuotaCode": "L-G4", "Value": 0.0},
    {"QuotaName": "Number of instances across all training jobs", "QuotaCode": "L-N", "Value": 8.0},
]


def serve_quotas(session: boto3.Session, quotas: list[dict] = QUOTAS) -> list[dict]:
    """Answer ListServiceQuotas in pages of two, as a paginating client must handle."""

    def reply(params: dict) -> dict:
        start = int(params.get("NextToken", 0))
        page = {"Quotas": quotas[start : start + 2]}
        if start + 2 < len(quotas):
            page["NextToken"] = str(start + 2)
        return page

    return answer(session, "service-quotas", "ListServiceQuotas", reply)


def test_preflight_finds_a_zero_quota(aws: boto3.Session, capsys: pytest.CaptureFixture) -> None:
    make_bucket(aws)
    seen = serve_quotas(aws)
    report = h.preflight(["ml.m5.large", "ml.g4dn.xlarge"], bucket="me-titanic", session=aws)
    assert len(seen) == 2 and seen[0]["ServiceCode"] == "sagemaker"
    rows = report.set_index("check")
    assert rows.loc["region", "value"] == REGION and rows.loc["credentials", "value"] == ME
    assert rows.loc["bucket me-titanic", "ok"]
    assert rows.loc["quota: ml.m5.large for training job usage", "value"] == 20
    zero = rows.loc["quota: ml.g4dn.xlarge for training job usage"]
    assert not zero.ok and zero.value == 0
    assert "Amazon SageMaker → 'ml.g4dn.xlarge for training job usage' → Request increase" in (
        zero.fix
    )
    assert "servicequotas/home/services/sagemaker/quotas/L-G4" in zero.fix
    assert rows.loc["quota: Number of instances across all training jobs", "ok"]
    assert "Request increase" in capsys.readouterr().out


def test_preflight_bad_inputs(aws: boto3.Session, capsys: pytest.CaptureFixture) -> None:
    serve_quotas(aws)
    report = h.preflight("ml.m5.large", bucket="no-such-bucket", session=aws, show=False)
    assert not report.set_index("check").loc["bucket no-such-bucket", "ok"]
    assert capsys.readouterr().out == ""
    typo = h.preflight(["ml.m5.larg"], session=aws, show=False).set_index("check")
    assert (
        "check the instance type's spelling"
        in typo.loc["quota: ml.m5.larg for training job usage", "fix"]
    )
    with pytest.raises(h.HelperError, match="look like 'ml.m5.large'"):
        h.preflight(["m5.large"], session=aws)


def test_preflight_uses_default_quotas_when_not_applied(aws: boto3.Session) -> None:
    serve_quotas(aws, QUOTAS[:1])
    listed = {"QuotaName": h.INSTANCE_COUNT_QUOTA, "QuotaCode": "L-N", "Value": 4.0}
    answer(aws, "service-quotas", "ListAWSDefaultServiceQuotas", lambda _: {"Quotas": [listed]})
    asked = answer(aws, "service-quotas", "GetServiceQuota", lambda _: {"Quota": listed})
    rows = h.preflight(["ml.m5.large"], session=aws, show=False).set_index("check")
    assert rows.loc[f"quota: {h.INSTANCE_COUNT_QUOTA}", "value"] == 4
    assert asked == [{"ServiceCode": "sagemaker", "QuotaCode": "L-N"}]


def test_preflight_default_quota_without_applied_value(aws: boto3.Session) -> None:
    serve_quotas(aws, QUOTAS[:1])
    listed = {"QuotaName": h.INSTANCE_COUNT_QUOTA, "QuotaCode": "L-N", "Value": 4.0}
    answer(aws, "service-quotas", "ListAWSDefaultServiceQuotas", lambda _: {"Quotas": [listed]})
    answer(aws, "service-quotas", "GetServiceQuota", lambda _: error("NoSuchResourceException"))
    rows = h.preflight(["ml.m5.large"], session=aws, show=False).set_index("check")
    assert rows.loc[f"quota: {h.INSTANCE_COUNT_QUOTA}", "value"] == 4


def test_preflight_reports_failures_as_rows(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer(aws, "service-quotas", "ListServiceQuotas", lambda _: error("AccessDeniedException"))
    rows = h.preflight(session=aws, show=False).set_index("check")
    assert "Service Quotas console" in rows.loc["quotas", "fix"]

    answer(aws, "sts", "GetCallerIdentity", lambda _: error("ExpiredToken", "token expired"))
    rows = h.preflight(session=aws, show=False).set_index("check")
    assert not rows.loc["credentials", "ok"] and "ExpiredToken" in rows.loc["credentials", "fix"]

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    rows = h.preflight(show=False).set_index("check")
    assert not rows.loc["region", "ok"]


# ---------------------------------------------------------------- built-in CSV check


def test_builtin_csv_rejects_the_raw_titanic_file() -> None:
    result = h.check_builtin_csv("data/titanic_train.csv")
    assert not result.ok and not result
    text = repr(result)
    assert text.startswith("CsvCheck(ok=False) titanic_train.csv: 712 rows × 12 columns")
    assert "header=False" in text and "encode them as numbers" in text
    assert "put the label (e.g. Survived) first" in text


def test_builtin_csv_accepts_a_prepared_file(tmp_path: Any) -> None:
    path = tmp_path / "train.csv"
    frame = pd.DataFrame({"Survived": [0, 1, 1], "Pclass": [3, 1, 2], "Age": [22.0, None, 30.0]})
    frame.to_csv(path, header=False, index=False)
    result = h.check_builtin_csv(path)
    assert result.ok and result.problems == [] and "fit for built-in XGBoost" in repr(result)


def test_builtin_csv_names_each_fix(tmp_path: Any) -> None:
    frame = pd.DataFrame({"Survived": [0, 1, None, 1], "Fare": [7.25, 71.3, 8.05, 53.1]})
    indexed = tmp_path / "indexed.csv"
    frame.dropna().to_csv(indexed, header=False)
    assert "index=False" in repr(h.check_builtin_csv(indexed))
    unlabelled = tmp_path / "unlabelled.csv"
    frame.to_csv(unlabelled, header=False, index=False)
    assert "missing in 1 rows: drop those rows" in repr(h.check_builtin_csv(unlabelled))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "the file is empty" in repr(h.check_builtin_csv(empty))
    texty = tmp_path / "texty.csv"
    texty.write_text("1,male,22\n0,female,38\n")
    assert h.check_builtin_csv(texty).problems == [
        "columns [1] hold text (e.g. 1: 'male'): encode them as numbers or drop them"
    ]
    only_header = tmp_path / "header.csv"
    only_header.write_text("Survived,Fare\n")
    assert h.check_builtin_csv(only_header).problems
    regression = tmp_path / "regression.csv"
    pd.DataFrame({"y": [3.5, 1.25, 2.0], "x": [1, 2, 3]}).to_csv(
        regression, header=False, index=False
    )
    assert h.check_builtin_csv(regression, binary=False).ok
    with pytest.raises(h.HelperError, match="check the path"):
        h.check_builtin_csv(tmp_path / "missing.csv")


# ---------------------------------------------------------------- ownership-safe clean-up


def serve_stop(session: boto3.Session) -> list[dict]:
    """StopTrainingJob as SageMaker does it: InProgress → Stopping (moto lacks the call)."""

    def reply(params: dict) -> dict:
        backend().training_jobs[params["TrainingJobName"]].training_job_status = "Stopping"
        return {}

    return answer(session, "sagemaker", "StopTrainingJob", reply)


def test_stop_my_training_job(aws: boto3.Session) -> None:
    stops = serve_stop(aws)
    make_job(aws, "mine", status="InProgress")
    make_job(aws, "theirs", owner=OTHER, status="InProgress")
    make_job(aws, "untagged", owner=None, status="InProgress")
    make_job(aws, "finished")
    assert h.stop_my_training_job("mine", session=aws) == "Stopping"
    assert h.stop_my_training_job("finished", session=aws) == "Completed"
    with pytest.raises(h.HelperError, match="belongs to .*someone-else, not you"):
        h.stop_my_training_job("theirs", session=aws)
    with pytest.raises(h.HelperError, match="has no owner tag"):
        h.stop_my_training_job("untagged", session=aws)
    with pytest.raises(h.HelperError, match="check the name"):
        h.stop_my_training_job("no-such-job", session=aws)
    assert stops == [{"TrainingJobName": "mine"}]
    assert backend().training_jobs["theirs"].training_job_status == "InProgress"


def make_endpoint(session: boto3.Session, name: str, owner: str) -> None:
    sm = session.client("sagemaker")
    tags = [{"Key": "course", "Value": h.COURSE_TAG}, {"Key": "owner", "Value": owner}]
    sm.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "xgboost:1.7-1", "ModelDataUrl": "s3://me-titanic/m.tar.gz"},
    )
    variant = {
        "VariantName": "all",
        "ModelName": f"{name}-model",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config", Tags=tags)


def state(session: boto3.Session) -> dict[str, Any]:
    """Everything clean_up could touch, to compare before and after."""
    sm = session.client("sagemaker")
    s3 = session.client("s3")
    return {
        "jobs": {n: j.training_job_status for n, j in backend().training_jobs.items()},
        "notebooks": {n: i.status for n, i in backend().notebook_instances.items()},
        "endpoints": sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]),
        "keys": sorted(o["Key"] for o in s3.list_objects_v2(Bucket="me-titanic")["Contents"]),
    }


def test_clean_up_dry_run_changes_nothing_then_removes_exactly_the_list(
    aws: boto3.Session, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_stop(aws)
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "this-notebook")
    me = h.owner_id(aws)
    make_job(aws, "mine-running", owner=me, status="InProgress")
    make_job(aws, "mine-done", owner=me)
    make_job(aws, "theirs-running", owner=OTHER, status="InProgress")
    make_notebook(aws, "my-notebook", owner=me)
    make_notebook(aws, "their-notebook", owner=OTHER)
    make_notebook(aws, "this-notebook")  # created in the console: untagged, but it is "here"
    make_endpoint(aws, "my-endpoint", me)
    make_endpoint(aws, "their-endpoint", OTHER)
    s3 = make_bucket(aws)
    kept = ["titanic-course/someone-else/d.csv", "titanic-course/this-notebookish/c", "x"]
    for key in ("titanic-course/this-notebook/a.csv", "titanic-course/this-notebook/sub/b.csv"):
        s3.put_object(Bucket="me-titanic", Key=key, Body=b"1")
    for key in kept:
        s3.put_object(Bucket="me-titanic", Key=key, Body=b"1")

    listed = h.list_my_resources("me-titanic", session=aws)
    assert sorted(zip(listed.kind, listed.name, strict=True)) == [
        ("endpoint", "my-endpoint"),
        ("notebook instance", "my-notebook"),
        ("notebook instance", "this-notebook"),
        ("s3 object", "s3://me-titanic/titanic-course/this-notebook/a.csv"),
        ("s3 object", "s3://me-titanic/titanic-course/this-notebook/sub/b.csv"),
        ("training job", "mine-running"),
    ]
    before = state(aws)
    plan = h.clean_up("me-titanic", session=aws)
    assert "dry run, nothing changed" in capsys.readouterr().out
    assert state(aws) == before and not plan.done.any()
    assert sorted(plan.name) == sorted(listed.name)

    calls: list[str] = []
    aws.events.register("after-call", lambda model, **_: calls.append(model.name))
    done = h.clean_up("me-titanic", dry_run=False, session=aws).set_index("name")
    assert done.done.all() and sorted(done.index) == sorted(listed.name)
    acting = [c for c in calls if c.startswith(("Stop", "Delete"))]
    # a running job uploads model.tar.gz when it ends: stop it before deleting the objects
    assert acting == ["StopTrainingJob", "DeleteEndpoint", "DeleteObjects", "StopNotebookInstance"]
    assert list(done.kind)[-1] == "notebook instance"
    assert done.loc["this-notebook", "outcome"] == "kept"
    assert state(aws)["notebooks"]["this-notebook"] == before["notebooks"]["this-notebook"]
    done = h.clean_up("me-titanic", dry_run=False, stop_this_notebook=True, session=aws)
    assert list(done.name) == ["this-notebook"] and done.done.all()
    after = state(aws)
    assert after["jobs"] == {**before["jobs"], "mine-running": "Stopping"}
    stopped = {"my-notebook": "Stopped", "this-notebook": "Stopped"}
    assert after["notebooks"] == {**before["notebooks"], **stopped}
    assert after["endpoints"] == ["their-endpoint"]
    assert after["keys"] == kept
    assert h.list_my_resources("me-titanic", session=aws).empty


def test_clean_up_refuses_a_whole_bucket_and_reports_failures(aws: boto3.Session) -> None:
    make_bucket(aws)
    with pytest.raises(h.HelperError, match="refusing a whole bucket"):
        h.clean_up("me-titanic", prefix="/", session=aws)
    make_job(aws, "mine-running", status="InProgress")
    answer(aws, "sagemaker", "StopTrainingJob", lambda _: error("ValidationException"))
    key = f"{h.course_prefix(aws)}/a.csv"
    aws.client("s3").put_object(Bucket="me-titanic", Key=key, Body=b"1")
    answer(aws, "s3", "DeleteObjects", lambda _: error("AccessDenied"))
    done = h.clean_up("me-titanic", dry_run=False, session=aws).set_index("name")
    assert done.loc["mine-running", "outcome"] == "failed: ValidationException"
    assert done.loc[f"s3://me-titanic/{key}", "outcome"] == "failed: AccessDenied"
    assert not done.done.any()


def test_learners_sharing_a_role_and_a_bucket_stay_apart(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notebook instances share one execution role: same caller ARN, different notebooks."""
    stops = serve_stop(aws)
    s3 = make_bucket(aws)
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "alice-nb")
    alice_tags = h.course_tags("02-training", session=aws)
    alice_key = f"{h.course_prefix(aws)}/train.csv"
    make_job(aws, "alice-job", owner=alice_tags[1]["Value"], status="InProgress")
    monkeypatch.setenv("NOTEBOOK_INSTANCE_NAME", "bob-nb")
    make_job(aws, "bob-job", owner=h.owner_id(aws), status="InProgress")
    bob_key = f"{h.course_prefix(aws)}/train.csv"
    assert (alice_key, bob_key) == (
        "titanic-course/alice-nb/train.csv",
        "titanic-course/bob-nb/train.csv",
    )
    for key in (alice_key, bob_key):
        s3.put_object(Bucket="me-titanic", Key=key, Body=b"1")

    with pytest.raises(h.HelperError, match="belongs to .*alice-nb, not you"):
        h.stop_my_training_job("alice-job", session=aws)
    assert list(h.job_summary(session=aws).job_name) == ["bob-job"]
    listed = h.list_my_resources("me-titanic", session=aws)
    assert set(listed.name) == {"bob-job", f"s3://me-titanic/{bob_key}"}
    h.clean_up("me-titanic", dry_run=False, session=aws)
    assert stops == [{"TrainingJobName": "bob-job"}]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="me-titanic")["Contents"]] == [alice_key]


def test_helpers_never_shell_out() -> None:
    source = Path(h.__file__).read_text()
    for banned in ("subprocess", "os.system", "os.popen", "git push", "token"):
        assert banned not in source


@pytest.mark.parametrize(
    ("failure", "fix"),
    [
        (h.NoCredentialsError(), "no AWS credentials; run on a SageMaker notebook"),
        (
            h.EndpointConnectionError(endpoint_url="http://127.0.0.1:41000"),
            "cannot reach http://127.0.0.1:41000; check the region, or start localcloud",
        ),
        (h.NoRegionError(), "no region; pass region='us-east-1'"),
        (h.BotoCoreError(), "An unspecified error occurred"),
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

    assert h.course_tags(session=SdkSession())[1]["Value"] == ME
    answer(aws, "sagemaker", "DescribeTrainingJob", lambda _: error("ResourceNotFound"))
    with pytest.raises(h.HelperError, match=r"\(ResourceNotFound: stubbed\): check the name"):
        h.estimate_job_cost("gone", session=aws)
