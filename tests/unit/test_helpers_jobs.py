"""helpers/jobs.py and helpers/charts.py: the job table, recorded accuracy, the chart."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from test_aws_helpers import (
    OTHER,
    answer,
    backend,
    make_job,
    patch_describe,
)

from helpers import AWS_helpers as h


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
    created = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
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
