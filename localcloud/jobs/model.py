"""TrainingJob record: statuses, secondary transitions and times, as DescribeTrainingJob shows."""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field
from typing import Any

from localcloud.jobs.validation import DEFAULT_MAX_RUNTIME_S

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})

# SecondaryStatus -> StatusMessage, the texts SageMaker prints (contract §5.1).
MESSAGES = {
    "Starting": "Starting the training job",
    "Preparing": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    # UNCONFIRMED text (contract §5.1); chosen to say plainly what happened.
    "MaxRuntimeExceeded": "Training job runtime exceeded MaxRuntimeInSeconds provided",
}


def pending_message(running: int, limit: int) -> str:
    """Why a queued job waits (localcloud runs at most `limit` jobs at once)."""
    return (
        f"Waiting for capacity: {running} training jobs already running on this machine "
        f"(limit {limit})"
    )


def job_arn(region: str, account: str, name: str) -> str:
    """Training job ARN; the service lowercases the name in it (contract §5.5)."""
    return f"arn:aws:sagemaker:{region}:{account}:training-job/{name.lower()}"


@dataclass
class MetricRule:
    """One AlgorithmSpecification.MetricDefinitions entry."""

    name: str
    pattern: re.Pattern[str]


@dataclass
class TrainingJob:
    """Everything DescribeTrainingJob returns for one job; mutated only under the manager's lock."""

    request: dict[str, Any]
    region: str
    account: str
    creation_time: float = field(default_factory=time.time)
    status: str = "InProgress"
    secondary_status: str = "Starting"
    transitions: list[dict[str, Any]] = field(default_factory=list)
    last_modified: float = 0.0
    training_start: float | None = None
    training_end: float | None = None
    failure_reason: str | None = None
    model_uri: str | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)
    metric_rules: list[MetricRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tags = list(self.request.get("Tags") or [])
        for definition in self.request["AlgorithmSpecification"].get("MetricDefinitions") or []:
            try:
                rule = MetricRule(definition["Name"], re.compile(definition["Regex"]))
            except (KeyError, re.error):
                continue
            self.metric_rules.append(rule)
        self.transition("Starting", MESSAGES["Starting"], self.creation_time)

    @property
    def name(self) -> str:
        return self.request["TrainingJobName"]

    @property
    def arn(self) -> str:
        return job_arn(self.region, self.account, self.name)

    @property
    def instance_count(self) -> int:
        return int(self.request["ResourceConfig"].get("InstanceCount", 1))

    @property
    def instance_type(self) -> str:
        return self.request["ResourceConfig"]["InstanceType"]

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def transition(self, secondary: str, message: str, now: float | None = None) -> None:
        """Close the current SecondaryStatusTransition and open a new one."""
        now = time.time() if now is None else now
        if self.transitions and "EndTime" not in self.transitions[-1]:
            self.transitions[-1]["EndTime"] = now
        self.transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": message})
        self.secondary_status = secondary
        self.last_modified = now

    def finish(self, status: str, secondary: str, now: float | None = None) -> None:
        """Enter a terminal status; the final transition stays open (EndTime set too, as AWS)."""
        now = time.time() if now is None else now
        self.status = status
        self.transition(secondary, MESSAGES[secondary], now)
        self.transitions[-1]["EndTime"] = now

    def record_metrics(self, message: str, now: float) -> None:
        """Apply the MetricDefinitions regexes to one log message; the last value wins."""
        for rule in self.metric_rules:
            match = rule.pattern.search(message)
            if not match:
                continue
            try:
                value = float(match.group(1) if match.groups() else match.group(0))
            except (ValueError, IndexError):
                continue
            self.metrics[rule.name] = {"MetricName": rule.name, "Value": value, "Timestamp": now}

    def seconds(self) -> int | None:
        """TrainingTimeInSeconds per instance: end - start, at least 1 (contract §5.2)."""
        if self.training_start is None or self.training_end is None:
            return None
        return max(1, round(self.training_end - self.training_start))

    def describe(self) -> dict[str, Any]:
        """The DescribeTrainingJob answer (times as epoch floats, like the wire format)."""
        req = copy.deepcopy(self.request)  # an answer never aliases the record
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
            "RoleArn": req["RoleArn"],
            "ResourceConfig": req["ResourceConfig"],
            "SecondaryStatusTransitions": copy.deepcopy(self.transitions),
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
            **_echoed_with_defaults(req),
        }
        if self.model_uri:
            out["ModelArtifacts"] = {"S3ModelArtifacts": self.model_uri}
        for key in _ECHOED_WHEN_SENT:
            if req.get(key) is not None:
                out[key] = req[key]
        if self.training_start is not None:
            out["TrainingStartTime"] = self.training_start
        if self.training_end is not None:
            out["TrainingEndTime"] = self.training_end
        seconds = self.seconds()
        if seconds is not None and self.terminal:
            out["TrainingTimeInSeconds"] = seconds
            out["BillableTimeInSeconds"] = seconds
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.metrics:
            out["FinalMetricDataList"] = list(self.metrics.values())
        return out

    def summary(self) -> dict[str, Any]:
        """One ListTrainingJobs entry (no SecondaryStatus: recorded listings carry none)."""
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
            "TrainingJobStatus": self.status,
        }
        if self.training_end is not None:
            out["TrainingEndTime"] = self.training_end
        return out


# Request members DescribeTrainingJob shows only when the request had them (recorded answers of
# jobs created without RetryStrategy, Environment or CheckpointConfig carry none).
_ECHOED_WHEN_SENT = (
    "HyperParameters",
    "VpcConfig",
    "CheckpointConfig",
    "DebugHookConfig",
    "DebugRuleConfigurations",
    "TensorBoardOutputConfig",
    "Environment",
    "RetryStrategy",
    "ExperimentConfig",
)


def _echoed_with_defaults(req: dict[str, Any]) -> dict[str, Any]:
    """The members the service always answers with, filled in as it fills them.

    From recorded `describe-training-job` answers (CLI output of a 2023 job created without the
    SDK, and of a 2025 SDK job): KmsKeyId "" and CompressionType GZIP in OutputDataConfig,
    CompressionType and RecordWrapperType "None" in each channel, EnableSageMakerMetricsTimeSeries
    false, MaxRuntimeInSeconds 86400 when unset, the three Enable* flags false, ProfilingStatus
    (Disabled without a ProfilerConfig) and, with profiling on, a 500 ms interval. A job created
    without channels answers InputDataConfig [] (a third-party check of live answers says so).
    """
    spec = {"EnableSageMakerMetricsTimeSeries": False, **req["AlgorithmSpecification"]}
    channels = [
        {"CompressionType": "None", "RecordWrapperType": "None", **channel}
        for channel in req.get("InputDataConfig") or []
    ]
    output = {"KmsKeyId": "", "CompressionType": "GZIP", **req["OutputDataConfig"]}
    stopping = {"MaxRuntimeInSeconds": DEFAULT_MAX_RUNTIME_S, **req["StoppingCondition"]}
    profiler = req.get("ProfilerConfig")
    profiling = profiler is not None and not profiler.get("DisableProfiler", False)
    answer: dict[str, Any] = {}
    if profiler is not None:
        answer["ProfilerConfig"] = (
            {"ProfilingIntervalInMilliseconds": 500, **profiler} if profiling else profiler
        )
    return {
        **answer,
        "AlgorithmSpecification": spec,
        "InputDataConfig": channels,
        "OutputDataConfig": output,
        "StoppingCondition": stopping,
        "EnableNetworkIsolation": bool(req.get("EnableNetworkIsolation", False)),
        "EnableInterContainerTrafficEncryption": bool(
            req.get("EnableInterContainerTrafficEncryption", False)
        ),
        "EnableManagedSpotTraining": bool(req.get("EnableManagedSpotTraining", False)),
        "ProfilingStatus": "Enabled" if profiling else "Disabled",
    }
