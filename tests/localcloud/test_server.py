"""The server as the SageMaker SDK sees it: identity, bucket, notebook, jobs and their errors."""

from __future__ import annotations

import io
import socket
import tarfile
from pathlib import Path

import pytest
from _lc_jobs import describe, unique, upload_train, wait_for, write_script, xgboost_estimator
from botocore.exceptions import ClientError

pytestmark = pytest.mark.localcloud


def test_execution_role_is_a_role_arn(localcloud_server):
    import sagemaker

    role = sagemaker.get_execution_role()
    assert role == "arn:aws:iam::123456789012:role/SageMakerCourseExecutionRole"


def test_default_bucket_works(sm_session):
    bucket = sm_session.default_bucket()
    assert bucket == "sagemaker-us-east-1-123456789012"
    sm_session.boto_session.client("s3").head_bucket(Bucket=bucket)


def test_notebook_instance_is_registered(localcloud_server):
    import os

    sm = localcloud_server.client("sagemaker")
    name = os.environ["NOTEBOOK_INSTANCE_NAME"]
    answer = sm.describe_notebook_instance(NotebookInstanceName=name)
    assert answer["InstanceType"] == "ml.t3.medium"
    assert answer["NotebookInstanceStatus"] == "InService"


def test_explicit_sts_endpoint_is_redirected(localcloud_server):
    import boto3

    sts = boto3.client("sts", endpoint_url="https://sts.us-east-1.amazonaws.com")
    assert sts.meta.endpoint_url == localcloud_server.endpoint
    assert ":assumed-role/SageMakerCourseExecutionRole/" in sts.get_caller_identity()["Arn"]


def test_telemetry_is_opted_out_through_the_sdk_config(sm_session):
    from sagemaker.config.config_schema import TELEMETRY_OPT_OUT_PATH
    from sagemaker.utils import resolve_value_from_config

    assert (
        resolve_value_from_config(
            direct_input=None, config_path=TELEMETRY_OPT_OUT_PATH, sagemaker_session=sm_session
        )
        is True
    )


@pytest.fixture
def only_localhost(monkeypatch):
    """Fail any connection attempt that leaves 127.0.0.1 (telemetry, real AWS)."""
    original = socket.socket.connect
    attempts: list[object] = []

    def guarded(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost"):
            attempts.append(address)
            raise OSError(f"test blocked a connection to {address}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


def test_script_job_streams_logs_and_uploads_the_model(
    sm_session, tmp_path, capsys, only_localhost
):
    source = write_script(
        tmp_path / "src",
        """
        import os, sys
        print("hello from", os.environ["SM_CURRENT_HOST"], " ".join(sys.argv[1:]))
        print("[0]\\ttrain-rmse:0.25")
        print("[1]\\ttrain-rmse:0.125")
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
            f.write("weights")
        """,
    )
    estimator = xgboost_estimator(
        sm_session,
        source,
        hyperparameters={"epochs": 2},
        metric_definitions=[{"Name": "train:rmse", "Regex": r"train-rmse:([0-9.]+)"}],
    )
    estimator.fit({"train": upload_train(sm_session, unique("ok"))}, logs=True)
    printed = capsys.readouterr().out
    for line in (
        "Starting - Starting the training job",
        "Downloading - Downloading input data",
        "Training - Training image download completed. Training in progress.",
        "Uploading - Uploading generated training model",
        "Completed - Training job completed",
        "hello from algo-1 --epochs 2",
        "[0]#011train-rmse:0.25",
        "Training seconds:",
    ):
        assert line in printed
    name = estimator.latest_training_job.name
    job = describe(sm_session, name)
    assert job["TrainingJobStatus"] == "Completed"
    assert job["TrainingTimeInSeconds"] >= 1
    assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]
    assert job["TrainingJobArn"].endswith(f"training-job/{name.lower()}")
    assert job["TrainingEndTime"] >= job["TrainingStartTime"]
    assert [m["Value"] for m in job["FinalMetricDataList"]] == [0.125]
    assert estimator.model_data == (
        f"s3://{sm_session.default_bucket()}/{name}/output/model.tar.gz"
    )
    bucket, key = estimator.model_data[5:].split("/", 1)
    blob = sm_session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        assert "model.txt" in [Path(n).name for n in tar.getnames()]
    logs = sm_session.boto_session.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/"
    )["logStreams"]
    assert len(streams) == 1
    assert streams[0]["logStreamName"].startswith(f"{name}/algo-1-")
    assert only_localhost == []


def test_script_that_raises_fails_with_its_error(sm_session, tmp_path):
    from sagemaker.exceptions import UnexpectedStatusException

    source = write_script(
        tmp_path / "src",
        """
        raise ValueError("boom from the user script")
        """,
    )
    estimator = xgboost_estimator(sm_session, source)
    with pytest.raises(UnexpectedStatusException) as caught:
        estimator.fit({"train": upload_train(sm_session, unique("raise"))}, logs=True)
    message = str(caught.value)
    assert "Failed. Reason: AlgorithmError: ExecuteUserScriptError:" in message
    job = describe(sm_session, estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["SecondaryStatus"] == "Failed"
    assert len(job["FailureReason"]) <= 1024


def test_script_killed_by_a_signal_fails(sm_session, tmp_path):
    from sagemaker.exceptions import UnexpectedStatusException

    source = write_script(
        tmp_path / "src",
        """
        import os, signal
        print("about to die", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
    )
    estimator = xgboost_estimator(sm_session, source)
    with pytest.raises(UnexpectedStatusException) as caught:
        estimator.fit({"train": upload_train(sm_session, unique("kill"))}, logs=False)
    assert "AlgorithmError:" in str(caught.value)
    assert describe(sm_session, estimator.latest_training_job.name)["TrainingJobStatus"] == "Failed"


def test_invalid_instance_type_is_a_validation_error(sm_session, tmp_path):
    from botocore.exceptions import ClientError

    source = write_script(tmp_path / "src", "print('never runs')\n")
    estimator = xgboost_estimator(sm_session, source, instance_type="ml.t2.medium")
    with pytest.raises(ClientError) as caught:
        estimator.fit({"train": upload_train(sm_session, unique("type"))}, wait=False)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(
        "1 validation error detected: Value 'ml.t2.medium' at 'resourceConfig.instanceType' "
        "failed to satisfy constraint: Member must satisfy enum value set: [ml.m4.xlarge, "
    )
    assert "ml.t3.medium" in error["Message"]


def test_empty_input_prefix_is_a_validation_error(sm_session, tmp_path):
    from botocore.exceptions import ClientError

    source = write_script(tmp_path / "src", "print('never runs')\n")
    estimator = xgboost_estimator(sm_session, source)
    uri = f"s3://{sm_session.default_bucket()}/{unique('nothing-here')}/"
    with pytest.raises(ClientError) as caught:
        estimator.fit({"train": uri}, wait=False)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["Error"]["Message"].startswith(
        f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure '
        "that the bucket exists in the selected region (us-east-1)"
    )


def test_duplicate_job_name_is_resource_in_use(sm_session, tmp_path):
    from botocore.exceptions import ClientError

    source = write_script(tmp_path / "src", "print('ok')\n")
    train = upload_train(sm_session, unique("dup"))
    name = unique("dup")
    xgboost_estimator(sm_session, source).fit({"train": train}, job_name=name, wait=False)
    with pytest.raises(ClientError) as caught:
        xgboost_estimator(sm_session, source).fit({"train": train}, job_name=name, wait=False)
    assert caught.value.response["Error"]["Code"] == "ResourceInUse"
    assert "a training job with this name already exists" in str(caught.value)


def test_missing_required_fields_are_listed(localcloud_server):
    from botocore.config import Config
    from botocore.exceptions import ClientError

    sm = localcloud_server.boto_session.client(
        "sagemaker", config=Config(parameter_validation=False)
    )
    with pytest.raises(ClientError) as caught:
        sm.create_training_job(TrainingJobName=unique("partial"))
    message = caught.value.response["Error"]["Message"]
    assert message.startswith("5 validation errors detected: Value null at ")
    assert "'stoppingCondition' failed to satisfy constraint: Member must not be null" in message


def test_sourcedir_with_parent_members_is_rejected(sm_session, localcloud_server, tmp_path):
    from sagemaker.exceptions import UnexpectedStatusException

    tarball = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for member, text in (("train.py", "print('hi')\n"), ("../escape.py", "print('out')\n")):
            info = tarfile.TarInfo(member)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    bucket = sm_session.default_bucket()
    key = f"{unique('evil')}/source/sourcedir.tar.gz"
    sm_session.boto_session.client("s3").upload_file(str(tarball), bucket, key)
    estimator = xgboost_estimator(sm_session, f"s3://{bucket}/{key}")
    with pytest.raises(UnexpectedStatusException):
        estimator.fit({"train": upload_train(sm_session, unique("evil"))}, logs=True)
    job = describe(sm_session, estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError:")
    assert "TrainingTimeInSeconds" in job
    # "../escape.py" extracted into <job>/algo-1/code would land in algo-1/, so look there and up
    job_dir = localcloud_server.home / "jobs" / job["TrainingJobName"]
    assert (job_dir / "algo-1").is_dir()
    assert list(job_dir.rglob("escape.py")) == []
    assert not (job_dir.parent / "escape.py").exists()


def test_list_training_jobs_and_tags(sm_session, tmp_path):
    source = write_script(tmp_path / "src", "print('tagged')\n")
    name = unique("tagged")
    estimator = xgboost_estimator(sm_session, source, tags=[{"Key": "course", "Value": "ml"}])
    estimator.fit({"train": upload_train(sm_session, unique("tags"))}, job_name=name, logs=False)
    sm = sm_session.sagemaker_client
    listed = sm.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == [name]
    assert listed[0]["TrainingJobStatus"] == "Completed"
    arn = listed[0]["TrainingJobArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "test_accuracy", "Value": "0.8"}])
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}
    assert tags == {"course": "ml", "test_accuracy": "0.8"}
    sm.delete_tags(ResourceArn=arn, TagKeys=["course"])
    assert [t["Key"] for t in sm.list_tags(ResourceArn=arn)["Tags"]] == ["test_accuracy"]


def test_service_quotas_for_sagemaker(localcloud_server):
    quotas = localcloud_server.client("service-quotas")
    pages = quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker")
    by_name = {q["QuotaName"]: q for page in pages for q in page["Quotas"]}
    assert by_name["ml.p3.2xlarge for training job usage"]["Value"] == 0
    assert by_name["ml.m5.large for training job usage"]["Value"] == 20
    assert by_name["ml.g4dn.xlarge for training job usage"]["Value"] == 2
    assert by_name["Number of instances across all training jobs"]["Value"] == 8
    one = by_name["ml.m5.large for training job usage"]
    got = quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode=one["QuotaCode"])
    assert got["Quota"]["QuotaName"] == one["QuotaName"]


def test_zero_quota_is_resource_limit_exceeded(sm_session, tmp_path):
    from botocore.exceptions import ClientError

    source = write_script(tmp_path / "src", "print('never runs')\n")
    estimator = xgboost_estimator(sm_session, source, instance_type="ml.p3.2xlarge")
    with pytest.raises(ClientError) as caught:
        estimator.fit({"train": upload_train(sm_session, unique("quota"))}, wait=False)
    assert caught.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert str(caught.value) == (
        "An error occurred (ResourceLimitExceeded) when calling the CreateTrainingJob operation: "
        "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances, "
        "with current utilization of 0 Instances and a request delta of 1 Instances. Please use "
        "AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is not "
        "available, contact AWS support to request an increase for this quota."
    )


def test_delete_training_job_forgets_an_ended_job_only(sm_session, tmp_path):
    sm = sm_session.sagemaker_client
    source = write_script(tmp_path / "src", "import time\ntime.sleep(60)\n")
    running = unique("undeletable")
    estimator = xgboost_estimator(sm_session, source)
    estimator.fit({"train": upload_train(sm_session, unique("del"))}, job_name=running, wait=False)
    with pytest.raises(ClientError) as caught:
        sm.delete_training_job(TrainingJobName=running)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "in status InProgress" in caught.value.response["Error"]["Message"]
    sm.stop_training_job(TrainingJobName=running)
    wait_for(lambda: describe(sm_session, running)["TrainingJobStatus"] == "Stopped", 120)

    sm.delete_training_job(TrainingJobName=running)  # ended now: the same call succeeds
    with pytest.raises(ClientError) as caught:
        sm.describe_training_job(TrainingJobName=running)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"
    assert running not in [
        j["TrainingJobName"]
        for j in sm.list_training_jobs(NameContains=running)["TrainingJobSummaries"]
    ]
    # the name may be used again, as the service allows after a delete
    source = write_script(tmp_path / "again", "print('again')\n")
    xgboost_estimator(sm_session, source).fit(
        {"train": upload_train(sm_session, unique("del2"))}, job_name=running, logs=False
    )
    assert describe(sm_session, running)["TrainingJobStatus"] == "Completed"


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        (
            "create_model",
            {"ModelName": "m", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r"},
        ),
        ("create_endpoint", {"EndpointName": "e", "EndpointConfigName": "c"}),
    ],
)
def test_hosting_is_refused_plainly_not_faked(localcloud_server, call, kwargs):
    sm = localcloud_server.client("sagemaker")
    with pytest.raises(ClientError) as caught:
        getattr(sm, call)(**kwargs)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "localcloud does not host models" in caught.value.response["Error"]["Message"]
    assert sm.list_training_jobs()["ResponseMetadata"]["HTTPStatusCode"] == 200  # still serving


def test_update_training_job_is_refused_plainly(localcloud_server):
    sm = localcloud_server.client("sagemaker")
    with pytest.raises(ClientError) as caught:
        sm.update_training_job(
            TrainingJobName="any", ResourceConfig={"KeepAlivePeriodInSeconds": 60}
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "localcloud does not update training jobs" in caught.value.response["Error"]["Message"]
    assert sm.list_training_jobs()["ResponseMetadata"]["HTTPStatusCode"] == 200  # still serving


def test_invoke_endpoint_is_refused_plainly(localcloud_server):
    runtime = localcloud_server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="e", Body=b"1,2,3", ContentType="text/csv")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "localcloud does not host models" in caught.value.response["Error"]["Message"]


def test_attach_to_a_finished_job(sm_session, tmp_path):
    from sagemaker.xgboost import XGBoost

    source = write_script(tmp_path / "src", "print('attach me')\n")
    name = unique("attach")
    xgboost_estimator(sm_session, source).fit(
        {"train": upload_train(sm_session, unique("att"))}, job_name=name, logs=False
    )
    attached = XGBoost.attach(name, sagemaker_session=sm_session)
    assert attached.latest_training_job.name == name
    assert attached.model_data.endswith("/output/model.tar.gz")
    assert describe(sm_session, name)["OutputDataConfig"]["KmsKeyId"] == ""
