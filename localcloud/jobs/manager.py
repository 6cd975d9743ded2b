"""Job manager: the queue (at most N jobs at once), the lifecycle driver, stop and max runtime."""

from __future__ import annotations

import functools
import json
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from localcloud.algorithms import builtin, image_kind
from localcloud.errors import not_found
from localcloud.errors import validation as validation_error
from localcloud.hosts import safepaths
from localcloud.hosts.data import S3Access
from localcloud.jobs import quotas, records, validation
from localcloud.jobs.logsink import LogSink, LogWriter
from localcloud.jobs.model import MESSAGES, TrainingJob, pending_message

POLL_S = 0.1


class Cluster(Protocol):
    """The host side of a job (localcloud/hosts/cluster.py)."""

    def prepare(self) -> None: ...
    def start(self) -> None: ...
    def wait(self, timeout: float) -> bool: ...
    def stop(self, grace_s: float) -> None: ...
    def outcome(self) -> Any: ...
    def collect(self, s3: S3Access, output_s3_uri: str) -> str | None: ...


ClusterFactory = Callable[[dict[str, Any], Path, S3Access, Callable[[str, str], None]], Cluster]
HostEnv = Callable[[Mapping[str, str]], dict[str, str]]


def _default_cluster_factory(host_env: HostEnv | None) -> ClusterFactory:
    from localcloud.hosts.cluster import Cluster as HostCluster

    return functools.partial(HostCluster, host_env=host_env)


@dataclass
class _Control:
    """Per-job signals from API calls to the job's thread."""

    stop: threading.Event
    thread: threading.Thread | None = None
    why: str = "Stopped"  # or "MaxRuntimeExceeded"


def with_algorithm_metrics(request: dict[str, Any]) -> dict[str, Any]:
    """The request with the built-in algorithm's MetricDefinitions when it brings none.

    As on SageMaker, a job of a built-in algorithm (its image, no entry point) gets the
    algorithm's own definitions; DescribeTrainingJob shows them and FinalMetricDataList uses them.
    """
    spec = request.get("AlgorithmSpecification") or {}
    if spec.get("MetricDefinitions"):
        return request
    if "sagemaker_program" in (request.get("HyperParameters") or {}):
        return request  # script mode: only the user's definitions
    algorithm = builtin(image_kind(spec.get("TrainingImage", "")))
    if algorithm is None:
        return request
    spec = {**spec, "MetricDefinitions": algorithm.metric_definitions()}
    return {**request, "AlgorithmSpecification": spec}


class JobManager:
    """Owns every job record and drives each job through its lifecycle on its own thread."""

    def __init__(
        self,
        jobs_dir: Path,
        s3: S3Access,
        log_writer: LogWriter,
        *,
        max_running: int = 4,
        stop_grace_s: float = 5.0,
        cluster_factory: ClusterFactory | None = None,
        host_env: HostEnv | None = None,
        records_dir: Path | None = None,
    ) -> None:
        self.jobs_dir = jobs_dir
        self.records_dir = records_dir  # where every job's record outlives the server
        self.host_env = host_env  # the server's: sends the hosts' AWS calls to it
        self.s3 = s3
        self.log_writer = log_writer
        self.max_running = max_running
        self.stop_grace_s = stop_grace_s
        self._factory = cluster_factory
        self._lock = threading.Condition()
        self._jobs: dict[str, TrainingJob] = {}
        self._controls: dict[str, _Control] = {}
        self._queue: deque[str] = deque()
        self._running: set[str] = set()
        self._closing = False
        if records_dir is not None:
            self._restore(records_dir)

    # ---- API side -------------------------------------------------------------------------

    def create(self, request: dict[str, Any], region: str, account: str) -> TrainingJob:
        """Validate, register and start (or queue) a job; raises AwsError like the service."""
        validation.check_shape(request)
        validation.check_supported(request)
        name = request["TrainingJobName"]
        with self._lock:
            self._raise_if_duplicate(name)
        validation.check_inputs(request, self.s3, region)
        with self._lock:
            self._raise_if_duplicate(name)
            if self._closing:
                raise validation_error("localcloud is shutting down")
            kind = request["ResourceConfig"]["InstanceType"]
            count = int(request["ResourceConfig"]["InstanceCount"])
            quotas.check(kind, count, self._usage())
            request = with_algorithm_metrics(request)
            job = TrainingJob(request=request, region=region, account=account)
            self._jobs[name] = job
            control = _Control(stop=threading.Event())
            self._controls[name] = control
            self._queue.append(name)
            control.thread = threading.Thread(
                target=self._run, args=(job, control), name=f"job-{name}", daemon=True
            )
            control.thread.start()
        self._save(job)
        return job

    def describe(self, name: str) -> dict[str, Any]:
        """DescribeTrainingJob for one job."""
        with self._lock:
            return self._get(name).describe()

    def jobs(self) -> list[TrainingJob]:
        """Every job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def find_by_arn(self, arn: str) -> TrainingJob | None:
        """The job with this ARN (ARNs compare case-insensitively, as the name is lowercased)."""
        with self._lock:
            for job in self._jobs.values():
                if job.arn == arn.lower():
                    return job
        return None

    def stop(self, name: str) -> None:
        """StopTrainingJob: Stopping now, Stopped once the hosts are gone and artifacts are up."""
        with self._lock:
            job = self._get(name)
            if job.terminal or job.status == "Stopping":
                raise validation_error(
                    f"The request was rejected because the training job is in status {job.status}."
                )
            job.status = "Stopping"
            job.transition("Stopping", MESSAGES["Stopping"])
            self._controls[name].stop.set()
            self._lock.notify_all()

    def delete(self, name: str) -> None:
        """DeleteTrainingJob: an ended job is forgotten (record, folder); S3 and logs stay."""
        with self._lock:
            job = self._get(name)
            if not job.terminal:
                raise validation_error(
                    f"The request was rejected because the training job is in status {job.status}."
                )
            del self._jobs[name]
            control = self._controls.pop(name, None)
        if control is not None and control.thread is not None:
            control.thread.join(5)  # its last save is done before the record goes
        if self.records_dir is not None:
            records.remove(self.records_dir, name)
        shutil.rmtree(self.jobs_dir / name, ignore_errors=True)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every job that hasn't ended (hosts killed) and wait for their threads."""
        with self._lock:
            self._closing = True
            for name, control in self._controls.items():
                job = self._jobs[name]
                if not job.terminal:
                    if job.status != "Stopping":
                        job.status = "Stopping"
                        job.transition("Stopping", MESSAGES["Stopping"])
                    control.stop.set()
            self._lock.notify_all()
            threads = [c.thread for c in self._controls.values() if c.thread]
        deadline = time.monotonic() + (timeout or self.stop_grace_s + 10)
        for thread in threads:
            thread.join(max(0.1, deadline - time.monotonic()))

    # ---- internals ------------------------------------------------------------------------

    def _get(self, name: str) -> TrainingJob:
        job = self._jobs.get(name)
        if job is None:
            raise not_found(f"Requested resource not found: training job {name} does not exist")
        return job

    def _raise_if_duplicate(self, name: str) -> None:
        existing = self._jobs.get(name)
        if existing is not None:
            raise validation.duplicate_name(existing.arn)

    def _usage(self) -> dict[str, int]:
        used: dict[str, int] = {}
        for job in self._jobs.values():
            if not job.terminal:
                used[job.instance_type] = used.get(job.instance_type, 0) + job.instance_count
        return used

    def _wait_for_slot(self, job: TrainingJob, control: _Control) -> bool:
        """Block until this job may run (FIFO); False if it was stopped while queued."""
        with self._lock:
            pending = False
            while True:
                if control.stop.is_set():
                    self._queue.remove(job.name)
                    self._lock.notify_all()
                    return False
                if self._queue[0] == job.name and len(self._running) < self.max_running:
                    self._queue.popleft()
                    self._running.add(job.name)
                    job.transition("Starting", MESSAGES["Preparing"])
                    self._lock.notify_all()
                    return True
                if not pending:
                    job.transition("Pending", pending_message(len(self._running), self.max_running))
                    pending = True
                self._lock.wait(1.0)

    def _release(self, name: str) -> None:
        with self._lock:
            self._running.discard(name)
            self._lock.notify_all()

    def _run(self, job: TrainingJob, control: _Control) -> None:
        if not self._wait_for_slot(job, control):
            with self._lock:
                job.finish("Stopped", "Stopped")
            self._save(job)
            return
        try:
            self._drive(job, control)
        except Exception as exc:  # a bug on our side must still end the job
            with self._lock:
                if not job.terminal:
                    job.failure_reason = f"InternalServerError: {type(exc).__name__}: {exc}"[:1024]
                    job.training_end = job.training_end or time.time()
                    job.finish("Failed", "Failed")
        finally:
            self._release(job.name)
            self._save(job)

    def _drive(self, job: TrainingJob, control: _Control) -> None:
        job_dir = self.jobs_dir / job.name
        if job_dir.exists():
            shutil.rmtree(job_dir, ignore_errors=True)
        job_dir.mkdir(parents=True)
        with self._lock:
            job.training_start = time.time()
            if control.stop.is_set():
                return self._end_stopped(job, control, None)
            job.transition("Downloading", MESSAGES["Downloading"])
        self._save(job)
        factory = self._factory or _default_cluster_factory(self.host_env)
        sink = LogSink(job, job_dir, self.log_writer, self._lock)
        cluster = factory(job.request, job_dir, self.s3, sink)
        try:
            cluster.prepare()
        except Exception as exc:
            reason = str(exc) or f"ClientError: {type(exc).__name__}"
            return self._end_failed(job, reason[:1024])
        with self._lock:
            if control.stop.is_set():
                return self._end_stopped(job, control, cluster)
            job.transition("Training", MESSAGES["Training"])
        self._save(job)
        try:
            cluster.start()
            supervised = self._supervise(job, control, cluster)
        except BaseException:
            cluster.stop(0)  # a bug of ours after the start must not leave hosts running
            raise
        if not supervised:
            return self._end_stopped(job, control, cluster)
        outcome = cluster.outcome()
        reason = getattr(outcome, "failure_reason", None)
        codes = list(getattr(outcome, "exit_codes", None) or [])
        if reason is None and any(codes):
            reason = f"AlgorithmError: , exit code: {next(c for c in codes if c)}"
        with self._lock:
            job.transition("Uploading", MESSAGES["Uploading"])
        model_uri, upload_error = self._collect(job, cluster)
        with self._lock:
            job.training_end = time.time()
            if reason:
                job.failure_reason = reason[:1024]
                job.finish("Failed", "Failed")
            elif upload_error:
                job.failure_reason = f"ClientError: Artifact upload failed:{upload_error}"[:1024]
                job.finish("Failed", "Failed")
            else:
                job.model_uri = model_uri
                job.finish("Completed", "Completed")

    def _supervise(self, job: TrainingJob, control: _Control, cluster: Cluster) -> bool:
        """Wait for the hosts; False when they were stopped (StopTrainingJob or max runtime)."""
        limit = validation.max_runtime_s(job.request)
        while not cluster.wait(POLL_S):
            if control.stop.is_set():
                break
            if limit and job.training_start and time.time() - job.training_start > limit:
                with self._lock:
                    control.why = "MaxRuntimeExceeded"
                    control.stop.set()
                break
        else:
            return True
        cluster.stop(self.stop_grace_s)
        cluster.wait(self.stop_grace_s + 5)
        return False

    def _collect(self, job: TrainingJob, cluster: Cluster) -> tuple[str | None, str | None]:
        output = job.request["OutputDataConfig"]["S3OutputPath"]
        try:
            return cluster.collect(self.s3, output), None
        except Exception as exc:
            return None, str(exc) or type(exc).__name__

    def _end_stopped(self, job: TrainingJob, control: _Control, cluster: Cluster | None) -> None:
        model_uri = self._collect(job, cluster)[0] if cluster is not None else None
        with self._lock:
            job.training_end = time.time()
            job.model_uri = model_uri
            job.finish("Stopped", control.why)

    def _end_failed(self, job: TrainingJob, reason: str) -> None:
        with self._lock:
            job.training_end = time.time()
            job.failure_reason = reason
            job.finish("Failed", "Failed")

    def _save(self, job: TrainingJob) -> None:
        """The job's record (records_dir) and its describe() in the job folder (for `clean`)."""
        with self._lock:
            record = records.dumps(job)
            text = json.dumps(job.describe(), indent=1, default=str)
        if self.records_dir is not None:
            records.write(self.records_dir, job.name, record)
        folder = self.jobs_dir / job.name
        if folder.is_dir():
            safepaths.write_file(folder, "job.json", text.encode())

    def _restore(self, folder: Path) -> None:
        """Answer for the jobs of earlier servers; one that was running is Failed, saying why."""
        found, unreadable = records.load_all(folder)
        for job in found:
            self._jobs[job.name] = job
            if records.mark_lost(job):
                self._save(job)
        for name in unreadable:
            print(f"localcloud: could not read the job record {name}; it is left as it is")

    def update_tags(self, job: TrainingJob, add: dict[str, str], drop: set[str]) -> None:
        """AddTags / DeleteTags on a job, kept in its record."""
        with self._lock:
            job.tags = [t for t in job.tags if t["Key"] not in add and t["Key"] not in drop]
            job.tags += [{"Key": k, "Value": v} for k, v in add.items()]
        self._save(job)
