"""Nothing leaves the machine: a real fit() and a ModelTrainer under localcloud stay on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import ModuleType, SimpleNamespace

import pytest
from _lc_jobs import unique, upload_train, write_script, xgboost_estimator

from localcloud import client, config, environ, offline

XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"

# Runs what interpreter start runs under `localcloud run` (the boot sitecustomize), but only after
# its own audit hook: that hook sees every address, including those the offline hook then refuses.
AUDIT_CHILD = textwrap.dedent("""
    import json, os, runpy, socket, sys

    boot, out = sys.argv[1], sys.argv[2]
    seen = []

    def text(value):
        return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else value

    def record(event, args):
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg") and args[1] is not None:
            family, address = args[0].family, args[1]
            if family == socket.AF_UNIX:
                seen.append([event, "unix", text(address), None])
            elif family in (socket.AF_INET, socket.AF_INET6):
                seen.append([event, "inet", text(address[0]), address[1]])
            else:
                seen.append([event, "other", repr(address), None])
        elif event == "socket.getaddrinfo":
            seen.append([event, "lookup", text(args[0]), args[1]])
        elif event in ("socket.gethostbyname", "socket.gethostbyaddr"):
            seen.append([event, "lookup", text(args[0]), None])

    sys.addaudithook(record)
    runpy.run_path(boot, run_name="sitecustomize")
    results = {"seen": seen, "telemetry": [], "errors": {}}

    import sagemaker
    import sagemaker.telemetry.telemetry_logging as telemetry
    from sagemaker.xgboost import XGBoost

    send = telemetry._send_telemetry_request

    def counted(status, feature_list, *rest, **kwargs):
        results["telemetry"].append(feature_list)
        return send(status, feature_list, *rest, **kwargs)

    telemetry._send_telemetry_request = counted
    role = os.environ["SAGEMAKER_ROLE"]
    session = sagemaker.Session()
    bucket = session.default_bucket()
    try:
        train = session.upload_data("data/titanic_train.csv", bucket, "offline-audit/titanic")
        estimator = XGBoost(
            entry_point="scripts/train_xgboost.py",
            framework_version="3.0-5",
            role=role,
            instance_type="ml.m5.large",
            instance_count=1,
            hyperparameters={"train": "titanic_train.csv", "num_round": 5},
            base_job_name="offline-audit-fit",
            disable_profiler=True,
            sagemaker_session=session,
        )
        estimator.fit({"train": train}, wait=True, logs=False)
        results["fit"] = estimator.latest_training_job.describe()["TrainingJobStatus"]
    except Exception as exc:
        results["errors"]["fit"] = repr(exc)

    try:
        from sagemaker.modules.configs import Channel, Compute, DataSource, S3DataSource
        from sagemaker.modules.train import ModelTrainer

        rows = "".join(f"{i % 2},{i % 7},{(i * 3) % 5}\\n" for i in range(60))
        numeric = session.upload_string_as_file_body(
            rows, bucket, "offline-audit/numeric/train.csv"
        )
        trainer = ModelTrainer(  # no session given: it builds its own (sagemaker_core's)
            training_image=sys.argv[3],
            role=role,
            compute=Compute(instance_type="ml.m5.large", instance_count=1),
            hyperparameters={"num_round": "3", "objective": "binary:logistic"},
            base_job_name="offline-audit-trainer",
        )
        results["trainer_session"] = type(trainer.sagemaker_session).__module__
        channel = Channel(
            channel_name="train",
            content_type="text/csv",
            data_source=DataSource(
                s3_data_source=S3DataSource(
                    s3_data_type="S3Prefix",
                    s3_uri=numeric.rsplit("/", 1)[0],
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
        )
        trainer.train(input_data_config=[channel], wait=True, logs=False)
        results["trainer"] = trainer._latest_training_job.training_job_status
    except Exception as exc:
        results["errors"]["trainer"] = repr(exc)
    with open(out, "w") as handle:
        json.dump(results, handle)
""")


def test_telemetry_opt_out_is_read_from_the_config_file_when_a_session_has_none(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker.config.config_schema import TELEMETRY_OPT_OUT_PATH
    from sagemaker.utils import resolve_value_from_config

    path = environ.write_sdk_config(tmp_path)
    role = "arn:aws:iam::111122223333:role/from-file"
    path.write_text(environ.SDK_CONFIG + f"  TrainingJob:\n    RoleArn: {role}\n")
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(path))
    module = ModuleType("fake_telemetry")
    module.resolve_value_from_config = resolve_value_from_config
    module.TELEMETRY_OPT_OUT_PATH = TELEMETRY_OPT_OUT_PATH
    core_session = SimpleNamespace(boto_session=None)  # like sagemaker_core's: no sagemaker_config
    ask = {"config_path": TELEMETRY_OPT_OUT_PATH, "default_value": False}
    assert module.resolve_value_from_config(sagemaker_session=core_session, **ask) is False
    client._patch_sagemaker_telemetry(module)
    assert module.resolve_value_from_config(sagemaker_session=core_session, **ask) is True
    # a session whose own config answers keeps its answer; other settings still come from the
    # session only (the file's RoleArn stays unread)
    said_no = {
        "SchemaVersion": "1.0",
        "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": False}}},
    }
    v2_session = SimpleNamespace(sagemaker_config=said_no)
    assert module.resolve_value_from_config(sagemaker_session=v2_session, **ask) is False
    other = {"config_path": "SageMaker.TrainingJob.RoleArn", "default_value": "mine"}
    assert module.resolve_value_from_config(sagemaker_session=core_session, **other) == "mine"


def _audited_env(connection) -> dict[str, str]:
    """client_env() for a child, minus the boot folder on PYTHONPATH (the child runs it itself)."""
    env = client.client_env(connection.endpoint, connection.home)
    parts = env["PYTHONPATH"].split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(p for p in parts if p != str(config.BOOT_DIR))
    return env


def _beyond_loopback(entry: list) -> bool:
    """A recorded connect, send or lookup that would have left the machine."""
    _, kind, host, _ = entry
    if kind == "unix":
        return False
    if kind == "lookup" and host in (None, ""):  # the wildcard address: nothing is looked up
        return False
    return kind == "other" or not offline.is_loopback_host(host)


@pytest.mark.localcloud
def test_a_real_fit_and_a_model_trainer_reach_nothing_beyond_loopback(localcloud_server, tmp_path):
    script, out = tmp_path / "audit.py", tmp_path / "audit.json"
    script.write_text(AUDIT_CHILD)
    boot = config.BOOT_DIR / "sitecustomize.py"
    done = subprocess.run(
        [sys.executable, str(script), str(boot), str(out), XGB_IMAGE],
        cwd=config.REPO_ROOT,
        env=_audited_env(localcloud_server),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["errors"] == {}, results["errors"]
    assert results["fit"] == "Completed"
    assert results["trainer"] == "Completed"
    assert results["trainer_session"].startswith("sagemaker_core")  # the session it built itself
    seen = results["seen"]
    port = int(localcloud_server.endpoint.rsplit(":", 1)[1])
    # the audit saw the traffic there was: the SDK's calls to the server
    assert ["socket.connect", "inet", "127.0.0.1", port] in seen
    assert [entry for entry in seen if _beyond_loopback(entry)] == []
    assert results["telemetry"] == []  # opted out, the ModelTrainer's own session included


REFUSAL_CHILD = textwrap.dedent("""
    import json, socket, boto3
    from localcloud import offline

    def attempt(action):
        try:
            return ["ok", action()]
        except OSError as exc:
            return [type(exc).__name__, str(exc.strerror)]

    print(json.dumps({
        "installed": offline.installed(),
        "far": attempt(lambda: socket.create_connection(("192.0.2.1", 9), timeout=1).close()),
        "dns": attempt(lambda: socket.getaddrinfo("sm-pysdk-t-us-east-1.s3.amazonaws.com", 443)),
        "near": attempt(lambda: boto3.client("sts").get_caller_identity()["Arn"]),
    }))
""")


@pytest.mark.localcloud
def test_localcloud_run_children_refuse_far_addresses_and_reach_the_server(localcloud_server):
    done = subprocess.run(
        [sys.executable, "-m", "localcloud", "run", "--home", str(localcloud_server.home), "--"]
        + [sys.executable, "-c", REFUSAL_CHILD],
        cwd=config.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["installed"] is True
    assert results["far"] == [
        "OfflineError",
        "localcloud is offline: refused a connection to 192.0.2.1:9; only loopback is allowed",
    ]
    assert results["dns"][0] == "OfflineError"
    assert "refused to look up sm-pysdk-t-us-east-1.s3.amazonaws.com:443" in results["dns"][1]
    # positive control, same process, same hook: the server on 127.0.0.1 answers
    assert results["near"][0] == "ok"
    assert ":assumed-role/SageMakerCourseExecutionRole/" in results["near"][1]


HOST_PROBE = """
import socket, boto3
try:
    socket.create_connection(("192.0.2.1", 9), timeout=1).close()
    print("far connected")
except OSError as exc:
    print("far", type(exc).__name__, exc.strerror)
print("near", boto3.client("sts").get_caller_identity()["Arn"])
"""


@pytest.mark.localcloud
def test_job_hosts_refuse_far_addresses_and_reach_the_server(
    localcloud_server, sm_session, tmp_path
):
    estimator = xgboost_estimator(sm_session, write_script(tmp_path / "src", HOST_PROBE))
    name = unique("offline-host")
    estimator.fit({"train": upload_train(sm_session, name)}, job_name=name, logs=False)
    log = (localcloud_server.home / "jobs" / name / "algo-1.log").read_text()
    assert (
        "far OfflineError localcloud is offline: refused a connection to 192.0.2.1:9; "
        "only loopback is allowed\n"
    ) in log
    assert "near arn:aws:sts::" in log and ":assumed-role/SageMakerCourseExecutionRole/" in log
