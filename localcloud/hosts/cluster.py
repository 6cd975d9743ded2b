"""N hosts of one training job as local process groups: data, code, start, stop, artifacts.

The seam the job manager drives (localcloud/README.md): prepare → start → wait/stop → outcome →
collect. Each host is a folder laid out like /opt/ml and one process group (several with
torch_distributed), started the way the SageMaker containers start the entry point (contract §2).
This module only orchestrates; each step is done by the module named after its toolkit peer.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcloud.algorithms import builtin, image_kind
from localcloud.hosts import drivers, environment, files, instances, process, torch_distributed
from localcloud.hosts.data import S3Access, download_channels, parse_s3_uri
from localcloud.hosts.entry_point import (
    entry_command,
    python_path,
    script_env,
    validate_entry_point,
)
from localcloud.hosts.errors import ClientError, failure_text
from localcloud.hosts.mapping import decode_hyperparameters
from localcloud.hosts.modules import check_requirements, missing_requirements
from localcloud.hosts.params import OPT_ML
from localcloud.hosts.process import HostProcess, LogSink, toolkit_line
from localcloud.images.job_python import job_python

HostEnv = Callable[[Mapping[str, str]], dict[str, str]]
FAILURE_LIMIT = 1024
KILL_OTHERS_GRACE_S = 5.0


@dataclass
class Outcome:
    """How the hosts ended: exit codes, the job's FailureReason and per-host wall seconds."""

    hosts: list[str]
    exit_codes: list[int | None]  # in the order of `hosts`; None: never started
    failure_reason: str | None
    wall_seconds: dict[str, float]
    failed_host: str | None = None


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (each socket stays bound until all are chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


class Cluster:
    """The hosts of one training job; see localcloud/README.md for the calling order."""

    def __init__(
        self,
        request: dict[str, Any],
        job_dir: Path,
        s3: S3Access,
        log_sink: LogSink,
        *,
        host_env: HostEnv | None = None,
    ) -> None:
        self.request = request
        self.host_env = host_env  # e.g. sends the hosts' AWS calls to this localcloud
        self.job_dir = Path(job_dir).resolve()
        self.s3 = s3
        self.log_sink = log_sink
        self.job_name: str = request["TrainingJobName"]
        resource = request["ResourceConfig"]
        self.instance_type: str = resource["InstanceType"]
        self.hosts = environment.host_names(int(resource.get("InstanceCount", 1)))
        spec = request.get("AlgorithmSpecification", {})
        self.kind = image_kind(spec.get("TrainingImage", ""))
        self.raw_hps: dict[str, str] = request.get("HyperParameters") or {}
        # The request's own entrypoint (ModelTrainer) replaces the image's: no algorithm runs.
        self.entrypoint = drivers.uses_entrypoint(request)
        self.script_mode = not self.entrypoint and "sagemaker_program" in self.raw_hps
        own_code = self.script_mode or self.entrypoint
        self.algorithm = None if own_code else builtin(self.kind)
        # the image environment's python when one is built for the image, else the server's
        self.python = job_python(request)
        self._python_pattern = drivers.python_pattern(self.python.executable)
        self.bin_dir = self.job_dir / ".bin"
        self.layouts = {h: environment.HostLayout(self.job_dir / h) for h in self.hosts}
        shared = self.algorithm.ports if self.algorithm else 0
        self.master_port, *self._algorithm_ports = _free_ports(1 + shared)
        self._workers: list[HostProcess] = []
        self._lock = threading.Lock()
        self._log_locks = {h: threading.Lock() for h in self.hosts}
        self._started: dict[str, float] = {}
        self._ended: dict[str, float] = {}
        self._exit: dict[str, int | None] = {h: None for h in self.hosts}
        self._failure: tuple[str, str] | None = None
        self._stop_requested = False
        self._done = threading.Event()
        self._pending = 0

    # ------------------------------------------------------------------------- Downloading
    def prepare(self) -> None:
        """Lay out every host, fetch channels and code; raise ClientError to fail the job."""
        if not (self.script_mode or self.entrypoint) and self.algorithm is None:
            image = self.request.get("AlgorithmSpecification", {}).get("TrainingImage", "")
            raise ClientError(
                f"ClientError: localcloud cannot run the image {image!r} without an entry point: "
                "it runs script-mode jobs (a 'sagemaker_program' hyperparameter, i.e. an "
                "estimator with entry_point) of any framework image, and the built-in XGBoost "
                "algorithm (image repository 'sagemaker-xgboost')."
            )
        for channel in self.request.get("InputDataConfig", []):
            environment.check_channel_name(channel.get("ChannelName"))
        for host, layout in self.layouts.items():
            layout.create()
            environment.write_config_files(layout, self.request, host, self.hosts)
        download_channels(self.request, self.layouts, self.job_dir, self.s3)
        if self.script_mode:
            self._fetch_code()
        if self.entrypoint:
            self._map_drivers()

    def _fetch_code(self) -> None:
        hyperparameters = decode_hyperparameters(self.raw_hps)
        submit = str(hyperparameters.get("sagemaker_submit_directory") or "")
        if submit.startswith(OPT_ML + "/"):  # network isolation: the archive came as a channel
            for layout in self.layouts.values():
                files.extract_local(layout.root, layout.code, submit)
        elif submit:
            codes = [layout.code for layout in self.layouts.values()]
            files.download_and_extract(self.s3, submit, codes, self.job_dir)
        validate_entry_point(hyperparameters.get("sagemaker_program"))
        check_requirements(self.layouts[self.hosts[0]].code, self.python)

    def _map_drivers(self) -> None:
        """The SDK's drivers, mapped to this machine in every host (drivers.py)."""
        type_gpus = instances.gpu_count(self.instance_type)
        gpus = min(type_gpus, environment.machine_gpu_count())
        drivers.write_bin(self.bin_dir, gpus, self.python.executable)
        for host, layout in self.layouts.items():
            folder = layout.channel(drivers.DRIVERS_CHANNEL)
            drivers.refuse_mpi(folder)
            changed = drivers.map_drivers(folder, layout.root, self.master_port)
            if changed and host == self.hosts[0]:
                self._log(
                    host,
                    f"localcloud: mapped /opt/ml, algo-1 and 7777 in {len(changed)} "
                    "SDK driver files to this host's folder and loopback",
                )
        first = self.layouts[self.hosts[0]]
        with tempfile.TemporaryDirectory(dir=self.job_dir, prefix=".code-") as scratch:
            requirements = drivers.requirements_file(
                first.channel(drivers.DRIVERS_CHANNEL), first.channel("code"), Path(scratch)
            )
            missing = missing_requirements(requirements, self.python) if requirements else []
        if missing:
            raise ClientError(
                "AlgorithmError: InstallRequirementsError: localcloud runs offline and these "
                f"requirements of {requirements.name} are not installed: {', '.join(missing)}"
            )

    # ---------------------------------------------------------------------------- Training
    def start(self) -> None:
        """Spawn every host (one process group each, several with torch_distributed)."""
        base = self._base_env()
        machine_gpus = environment.machine_gpu_count()
        type_gpus = instances.gpu_count(self.instance_type)
        launches: list[tuple[str, list[str], dict[str, str], Path]] = []
        for host in self.hosts:
            layout = self.layouts[host]
            job = environment.script_job(layout, self.request, host, self.hosts, type_gpus)
            env = script_env(job, base)
            if self.python.notice:
                self._log(host, self.python.notice)
            if type_gpus and machine_gpus < type_gpus:
                self._log(
                    host,
                    f"localcloud: {self.instance_type} has {type_gpus} GPU(s) but this "
                    f"machine has {machine_gpus}; the job runs on the CPU.",
                )
            if self.entrypoint:
                launches.append((host, *self._container_launch(layout, base)))
                continue
            if self.algorithm is not None:
                if self.algorithm.ports_env:
                    env[self.algorithm.ports_env] = ",".join(map(str, self._algorithm_ports))
                cmd = [self.python.executable, "-m", self.algorithm.module]
                launches.append((host, cmd, env, layout.root))
                continue
            if self.kind == "pytorch":
                env.update(torch_distributed.loopback_env(self.master_port))
            cmd = entry_command(job, self.kind, self.python.executable)
            if torch_distributed.enabled(job.sagemaker_hyperparameters):
                nproc = torch_distributed.processes_per_host(type_gpus, machine_gpus)
                for rank_env in torch_distributed.torchrun_envs(
                    self.hosts, host, nproc, self.master_port, self.job_name
                ):
                    launches.append((host, cmd, {**env, **rank_env}, layout.code))
            else:
                launches.append((host, cmd, env, layout.code))
        self._pending = len(launches)
        for host, cmd, env, cwd in launches:
            self._spawn(host, cmd, env, cwd)

    def _container_launch(
        self, layout: environment.HostLayout, base: dict[str, str]
    ) -> tuple[list[str], dict[str, str], Path]:
        """The request's entrypoint and arguments as this host runs them (drivers.py)."""
        spec = self.request["AlgorithmSpecification"]
        cmd = drivers.command(
            list(spec["ContainerEntrypoint"]),
            list(spec.get("ContainerArguments") or []),
            layout.root,
            self.bin_dir,
        )
        paths = python_path(layout.channel("code"), base)
        return cmd, drivers.container_env(base, self.bin_dir, paths), layout.root

    def _base_env(self) -> dict[str, str]:
        """The platform's env of every host, as host_env (if any) completes it."""
        base = environment.base_env(self.request)
        if self.host_env is None:
            return self.python.environ(base)
        env = dict(self.host_env(base))
        env.pop("NOTEBOOK_INSTANCE_NAME", None)  # a training host is no notebook instance
        return self.python.environ(env)

    def _spawn(self, host: str, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        if self.script_mode:
            self._log(host, toolkit_line("Invoking user script"))
            self._log(host, "Invoking script with the following command:")
            self._log(host, shlex.join(cmd))
        worker = process.launch(host, cmd, env, cwd)
        process.record_group(self.job_dir, worker.proc.pid, worker.token)
        with self._lock:
            self._workers.append(worker)
            self._started.setdefault(host, time.monotonic())
        process.supervise(worker, self.job_dir, self._log, self._exited)

    def _log(self, host: str, line: str) -> None:
        # The manager's sink also writes <job_dir>/<host>.log, so Cluster does not.
        if self.entrypoint:  # the drivers print their paths: show them as the container's
            line = line.replace(str(self.layouts[host].root), OPT_ML)
            line = line.replace(str(self.bin_dir), drivers.CONTAINER_BIN)
            line = self._python_pattern.sub(drivers.CONTAINER_BIN + "/python3", line)
        with self._log_locks[host]:
            self.log_sink(host, line)

    def _exited(self, worker: HostProcess, code: int) -> None:
        """A host group has ended and been reaped: note it; the first failure stops the rest."""
        host = worker.host
        with self._lock:
            self._ended[host] = time.monotonic()
            previous = self._exit[host]
            self._exit[host] = code if previous in (None, 0) else previous
            first_failure = code != 0 and self._failure is None and not self._stop_requested
        if first_failure:
            text = self._host_failure_text(worker, code)
            with self._lock:
                if self._failure is None:
                    self._failure = (host, text)
            if self.script_mode:
                self._log(host, toolkit_line("Reporting training FAILURE", "ERROR"))
                for line in text.splitlines():
                    self._log(host, line)
            threading.Thread(
                target=self._terminate, args=(KILL_OTHERS_GRACE_S,), daemon=True
            ).start()
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if last:
            self._finish()

    def _host_failure_text(self, worker: HostProcess, code: int) -> str:
        # The host's folder is the script's to change: the failure file may be a link by now.
        if not self.script_mode:
            limit = 4 * FAILURE_LIMIT
            text = files.read_failure_file(self.job_dir, worker.host, limit, self._log)
            if text.strip():
                return text.replace(str(self.layouts[worker.host].root), OPT_ML)
            if self.entrypoint:
                return failure_text(code, worker.capture.error_message(), " ".join(worker.cmd))
            return f", exit code: {code}"
        text = failure_text(
            code, worker.capture.error_message(), " ".join(worker.cmd), kind=self.kind
        )
        files.write_failure_file(self.job_dir, worker.host, text, self._log)
        return text

    def _finish(self) -> None:
        if self.script_mode and self._failure is None and not self._stop_requested:
            for host in self.hosts:
                files.write_success_file(self.job_dir, host, self._log)
                self._log(host, toolkit_line("Reporting training SUCCESS"))
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True when every host has exited and been reaped."""
        if not self._workers and self._pending == 0:
            return True
        return self._done.wait(timeout)

    def stop(self, grace_s: float = 120.0) -> None:
        """SIGTERM every host's process group, SIGKILL after grace_s; reap everything."""
        with self._lock:
            self._stop_requested = self._failure is None
        self._terminate(grace_s)
        self.wait(grace_s + 15)

    def _terminate(self, grace_s: float) -> None:
        with self._lock:
            workers = list(self._workers)
        process.terminate(workers, grace_s)

    def outcome(self) -> Outcome:
        """Exit codes, FailureReason ("AlgorithmError: …", ≤ 1024 chars) and wall seconds."""
        with self._lock:
            failure = self._failure
            walls = {
                h: round(self._ended.get(h, time.monotonic()) - t, 3)
                for h, t in self._started.items()
            }
            codes = [self._exit[h] for h in self.hosts]
        reason = None
        if failure is not None:
            reason = ("AlgorithmError: " + failure[1])[:FAILURE_LIMIT]
        return Outcome(list(self.hosts), codes, reason, walls, failure[0] if failure else None)

    # --------------------------------------------------------------------------- Uploading
    def collect(self, s3: S3Access, output_s3_uri: str) -> str | None:
        """Upload model.tar.gz and output.tar.gz (all hosts merged); return the model's URI.

        An empty model folder still gives an (empty) model.tar.gz, so the SDK's model_data
        always names an object.
        """
        bucket, prefix = parse_s3_uri(output_s3_uri.rstrip("/"))
        base = "/".join(p for p in (prefix, self.job_name, "output") if p)
        # A fresh folder of our own: a script may have left a link under any name it could guess.
        with tempfile.TemporaryDirectory(dir=self.job_dir, prefix=".artifacts-") as staging:
            model_tar = Path(staging) / "model.tar.gz"
            output_tar = Path(staging) / "output.tar.gz"
            files.pack_hosts(self.job_dir, self.hosts, "model", model_tar, self._log)
            files.pack_hosts(self.job_dir, self.hosts, "output/data", output_tar, self._log)
            s3.upload(model_tar, bucket, f"{base}/model.tar.gz")
            s3.upload(output_tar, bucket, f"{base}/output.tar.gz")
        return f"s3://{bucket}/{base}/model.tar.gz"
