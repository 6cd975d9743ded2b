"""Small, tested helpers for the SageMaker Titanic course: the one module the notebooks import.

They talk to whatever endpoint boto3 is pointed at (AWS or localcloud) and never know which.
Every failure caused by the caller's input becomes a one-line `HelperError` that names the fix.

One rule for every call that talks to AWS: its own arguments first, then keyword-only
`session=` (default: the session given to `configure(session)`, else a new boto3 session)
and `region=` (default: the session's region).

Where each helper lives (open the file to see what it really does):

    helpers/session.py   configure, HelperError        the session, clients and errors
    helpers/identity.py  owner_id, learner_id,         who you are to the course: your owner
                         course_prefix, course_tags,   tag, your S3 folder, your notebook
                         get_notebook_instance_info,   instance and the role jobs run as
                         resolve_role, NotebookInfo,
                         COURSE_TAG, COURSE_PREFIX
    helpers/storage.py   list_objects, bucket_size,    what you keep in S3 and what it costs
                         storage_cost,
                         check_bucket_region
    helpers/costs.py     load_prices, hourly_price,    prices from helpers/prices.json
                         estimate_job_cost
    helpers/reference.py  aws_figure, side_by_side,   the AWS figure beside each offline
                         image_support, in_support,    one, and image support dates, from
                         load_reference, as_of,        helpers/aws_reference.json
                         Figure
    helpers/jobs.py      job_summary,                  your jobs side by side: time, cost
                         SUMMARY_COLUMNS,              and the accuracy you recorded
                         record_test_accuracy
    helpers/quotas.py    preflight                     checks and quotas before a job
    helpers/cleanup.py   list_my_resources,            stop and delete only what is yours
                         stop_my_training_job,
                         clean_up
    helpers/csvcheck.py  check_builtin_csv, CsvCheck   is a CSV fit for built-in XGBoost?
    helpers/charts.py    plot_jobs                     time against money, per configuration

Example:
    >>> from helpers import AWS_helpers as helpers
    >>> helpers.configure(session)
    >>> helpers.list_objects(bucket, helpers.course_prefix())
"""

from __future__ import annotations

from helpers.charts import plot_jobs
from helpers.cleanup import clean_up, list_my_resources, stop_my_training_job
from helpers.costs import estimate_job_cost, hourly_price, load_prices
from helpers.csvcheck import CsvCheck, check_builtin_csv
from helpers.identity import (
    COURSE_PREFIX,
    COURSE_TAG,
    NotebookInfo,
    course_prefix,
    course_tags,
    get_notebook_instance_info,
    learner_id,
    owner_id,
    resolve_role,
)
from helpers.jobs import SUMMARY_COLUMNS, job_summary, record_test_accuracy
from helpers.quotas import preflight
from helpers.reference import (
    Figure,
    as_of,
    aws_figure,
    image_support,
    in_support,
    load_reference,
    side_by_side,
)
from helpers.session import HelperError, configure
from helpers.storage import bucket_size, check_bucket_region, list_objects, storage_cost

__all__ = [
    "COURSE_PREFIX",
    "COURSE_TAG",
    "SUMMARY_COLUMNS",
    "CsvCheck",
    "Figure",
    "HelperError",
    "NotebookInfo",
    "as_of",
    "aws_figure",
    "bucket_size",
    "check_bucket_region",
    "check_builtin_csv",
    "clean_up",
    "configure",
    "course_prefix",
    "course_tags",
    "estimate_job_cost",
    "get_notebook_instance_info",
    "hourly_price",
    "image_support",
    "in_support",
    "job_summary",
    "learner_id",
    "list_my_resources",
    "list_objects",
    "load_prices",
    "load_reference",
    "owner_id",
    "plot_jobs",
    "preflight",
    "record_test_accuracy",
    "resolve_role",
    "side_by_side",
    "stop_my_training_job",
    "storage_cost",
]
