"""N hosts of one training job as local process groups: data, code, start, stop, artifacts.

The seam the job manager drives (localcloud/README.md): prepare → start → wait/stop → outcome →
collect. Each host is a folder laid out like /opt/ml and one process group (several with
torch_distributed), started the way the SageMaker containers start the entry point (contract §2).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localcloud.jobs import artifacts, safepaths
from localcloud.jobs import container as ct
from localcloud.jobs.artifacts import safe_extract
from localcloud.jobs.container import ClientError, ErrorCapture, HostLayout

if TYPE_CHECKING:
    from localcloud.jobs.s3io import S3Access

LogSink = Callable[[str, str], None]
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


@dataclass
class _Worker:
    host: str
    cmd: list[str]
    proc: subprocess.Popen[bytes]
    capture: ErrorCapture = field(default_factory=ErrorCapture)
    readers: list[threading.Thread] = field(default_factory=list)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/key → (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ClientError(f"ClientError: Not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _illegal_key(key: str, channel: str | None) -> ClientError:
    """The platform's refusal of a key that names no plain path under the channel folder."""
    failed = "ClientError: Data download failed:Failed to download data. "
    if "//" in key:
        return ClientError(f"{failed}S3 key: {key} has an illegal char sub-sequence '//' in it")
    where = f"/opt/ml/input/data/{channel}" if channel else "the channel folder"
    segment = "'..'" if ".." in key.split("/") else "'.'"
    if key.startswith("/") or segment == "'..'":
        why = "a leading '/'" if key.startswith("/") else segment
        return ClientError(
            f"{failed}S3 key: {key} has an illegal path segment ({why}) in it: it would be "
            f"written outside {where}, so nothing was downloaded"
        )
    return ClientError(f"{failed}S3 key: {key} has an illegal path segment ({segment}) in it")


def relative_key(prefix: str, key: str, channel: str | None = None) -> str:
    """Where an object lands under the channel folder, as SageMaker lays S3Prefix data out.

    The whole key must be a plain path (no '', '.' or '..' segment), not just the part below
    the prefix, so no key can name a place outside the channel folder.
    """
    if any(p in ("", ".", "..") for p in key.split("/")):
        raise _illegal_key(key, channel)
    if key == prefix:
        rel = key.rsplit("/", 1)[-1]
    elif prefix == "" or prefix.endswith("/") or key[len(prefix)] == "/":
        rel = key[len(prefix) :].lstrip("/")
    else:
        rel = key[len(prefix.rsplit("/", 1)[0]) + 1 :] if "/" in prefix else key
    try:
        parts = safepaths.components(rel)
    except safepaths.UnsafePath:
        parts = []
    if not parts:
        raise _illegal_key(key, channel)
    return rel


def assign_objects(keys: list[str], hosts: list[str], distribution: str) -> dict[str, list[str]]:
    """FullyReplicated: every host gets all; ShardedByS3Key: round-robin over sorted keys."""
    keys = sorted(keys)
    if distribution != "ShardedByS3Key":
        return {h: list(keys) for h in hosts}
    return {h: keys[i :: len(hosts)] for i, h in enumerate(hosts)}


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (each socket stays bound until all are chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


HOSTS_RECORD = ".host-groups"  # under a job folder: one file per live host process group


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def kill_recorded_hosts(jobs_dir: Path) -> list[int]:
    """SIGKILL the host process groups a killed server left running; returns their ids."""
    killed = []
    for record in _host_records(jobs_dir):
        try:
            pgid = int(record.rsplit("/", 1)[1])
            started = (safepaths.read_regular(jobs_dir, record, 64) or b"").decode().strip()
        except (OSError, ValueError, safepaths.UnsafePath):
            continue
        now = _start_time(pgid)
        # A leader gone with its group still alive keeps the id taken, so the group is ours;
        # a live process with another start time got the id after our group had ended.
        if (now is None and _live_members(pgid)) or (now is not None and now == started):
            _kill_group(pgid, signal.SIGKILL)
            _wait_group_gone(pgid)
            killed.append(pgid)
        with contextlib.suppress(OSError, safepaths.UnsafePath):
            safepaths.remove(jobs_dir, record)
    return killed


def _host_records(jobs_dir: Path) -> list[str]:
    """<job>/<HOSTS_RECORD>/<pgid> names under jobs_dir, reached without following links."""
    records = []
    for job in sorted(os.listdir(jobs_dir)) if jobs_dir.is_dir() else []:
        folder = f"{job}/{HOSTS_RECORD}"
        with contextlib.suppress(OSError, safepaths.UnsafePath):
            records.extend(
                f"{folder}/{name}" for name in sorted(safepaths.list_entries(jobs_dir, folder))
            )
    return records


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class Cluster:
    """The hosts of one training job; see localcloud/README.md for the calling order."""

    def __init__(
        self,
        request: dict[str, Any],
        job_dir: Path,
        s3: S3Access,
        log_sink: LogSink,
        *,
        endpoint: str | None = None,
        home: Path | None = None,
    ) -> None:
        self.request = request
        self.endpoint = endpoint  # with home: hosts' AWS calls go to this localcloud
        self.home = home
        self.job_dir = Path(job_dir).resolve()
        self.s3 = s3
        self.log_sink = log_sink
        self.job_name: str = request["TrainingJobName"]
        resource = request["ResourceConfig"]
        self.instance_type: str = resource["InstanceType"]
        self.hosts = ct.host_names(int(resource.get("InstanceCount", 1)))
        spec = request.get("AlgorithmSpecification", {})
        self.kind = ct.image_kind(spec.get("TrainingImage", ""))
        self.raw_hps: dict[str, str] = request.get("HyperParameters") or {}
        self.script_mode = "sagemaker_program" in self.raw_hps
        self.layouts = {h: HostLayout(self.job_dir / h) for h in self.hosts}
        self.master_port, *self._xgb_ports = _free_ports(3)
        self._workers: list[_Worker] = []
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
        if not self.script_mode and self.kind != "xgboost":
            image = self.request.get("AlgorithmSpecification", {}).get("TrainingImage", "")
            raise ClientError(
                f"ClientError: localcloud cannot run the image {image!r} without an entry point: "
                "it runs script-mode jobs (a 'sagemaker_program' hyperparameter, i.e. an "
                "estimator with entry_point) of any framework image, and the built-in XGBoost "
                "algorithm (image repository 'sagemaker-xgboost')."
            )
        for channel in self.request.get("InputDataConfig", []):
            ct.check_channel_name(channel.get("ChannelName"))
        for host, layout in self.layouts.items():
            layout.create()
            ct.write_config_files(layout, self.request, host, self.hosts)
        self._download_channels()
        if self.script_mode:
            self._fetch_code()

    def _download_channels(self) -> None:
        # Objects are cached under names of our own: no key ever becomes part of a cache path.
        with tempfile.TemporaryDirectory(dir=self.job_dir, prefix=".s3cache-") as cache:
            fetched: dict[tuple[str, str], Path] = {}
            for channel in self.request.get("InputDataConfig", []):
                self._download_channel(channel, Path(cache), fetched)

    def _download_channel(
        self, channel: dict[str, Any], cache: Path, fetched: dict[tuple[str, str], Path]
    ) -> None:
        name = channel["ChannelName"]
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is None:
            raise ClientError(
                f"ClientError: Channel {name!r}: localcloud reads only S3DataSource channels."
            )
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise ClientError(
                f"ClientError: Channel {name!r}: S3DataType "
                f"{source['S3DataType']} is not supported by localcloud "
                "(only S3Prefix)."
            )
        bucket, prefix = split_s3_uri(source["S3Uri"])
        keys = self.s3.list_keys(bucket, prefix)
        rels = {key: relative_key(prefix, key, name) for key in keys}
        distribution = source.get("S3DataDistributionType", "FullyReplicated")
        for host, host_keys in assign_objects(keys, self.hosts, distribution).items():
            folder = self._inside_job(self.layouts[host].channel(name))
            safepaths.make_dirs(self.job_dir, folder)
            for key in host_keys:
                cached = fetched.get((bucket, key))
                if cached is None:
                    cached = cache / str(len(fetched))
                    self.s3.download(bucket, key, cached)
                    fetched[(bucket, key)] = cached
                try:
                    safepaths.copy_file(cached, self.job_dir, f"{folder}/{rels[key]}")
                except (OSError, safepaths.UnsafePath) as exc:
                    raise ClientError(
                        "ClientError: Data download failed:Failed to download data. "
                        f"S3 key: {key} could not be written into channel {name!r}: {exc}"
                    ) from exc

    def _inside_job(self, path: Path) -> str:
        """A path of this job's folder as the relative name the safepaths helpers take."""
        return path.relative_to(self.job_dir).as_posix()

    def _fetch_code(self) -> None:
        submit = ct.decode_hyperparameters(self.raw_hps).get("sagemaker_submit_directory")
        if submit:
            if not str(submit).startswith("s3://"):
                raise ClientError(
                    f"ClientError: sagemaker_submit_directory {submit!r} is not "
                    "an S3 URI; localcloud fetches code from S3 only."
                )
            bucket, key = split_s3_uri(str(submit))
            with tempfile.TemporaryDirectory(dir=self.job_dir) as tmp:
                archive = Path(tmp) / "sourcedir.tar.gz"
                self.s3.download(bucket, key, archive)
                for layout in self.layouts.values():
                    safe_extract(archive, layout.code, str(submit))
        code = self.layouts[self.hosts[0]].code
        program = ct.decode_hyperparameters(self.raw_hps).get("sagemaker_program")
        ct.validate_entry_point(program)
        if (code / "requirements.txt").exists() and not (code / "setup.py").exists():
            missing = ct.missing_requirements(code / "requirements.txt")
            if missing:
                raise ClientError(
                    "AlgorithmError: InstallRequirementsError:\nExitCode 1\nErrorMessage "
                    f'"localcloud runs offline and these requirements are not installed: '
                    f'{", ".join(missing)}"\nCommand "{sys.executable} -m pip install -r '
                    'requirements.txt"'
                )

    # ---------------------------------------------------------------------------- Training
    def start(self) -> None:
        """Spawn every host (one process group each, several with torch_distributed)."""
        base = self._base_env()
        machine_gpus = ct.machine_gpu_count()
        type_gpus = ct.gpu_count(self.instance_type)
        launches: list[tuple[str, list[str], dict[str, str], Path]] = []
        xgb_ports = ",".join(map(str, self._xgb_ports))
        for host in self.hosts:
            layout = self.layouts[host]
            job = ct.script_job(layout, self.request, host, self.hosts, num_gpus=type_gpus)
            env = ct.script_env(job, base)
            if type_gpus and machine_gpus < type_gpus:
                self._log(
                    host,
                    f"localcloud: {self.instance_type} has {type_gpus} GPU(s) but this "
                    f"machine has {machine_gpus}; the job runs on the CPU.",
                )
            if not self.script_mode:
                env["LOCALCLOUD_XGB_PORTS"] = xgb_ports
                cmd = [sys.executable, "-m", "localcloud.algorithms.xgboost_builtin"]
                launches.append((host, cmd, env, layout.root))
                continue
            if self.kind == "pytorch":
                env.update(
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=str(self.master_port),
                    NCCL_SOCKET_IFNAME="lo",
                    NCCL_IB_DISABLE="1",
                    NCCL_DEBUG="WARN",
                )
            cmd = ct.entry_command(job, self.kind)
            smhp = job.sagemaker_hyperparameters
            if _truthy(smhp.get("sagemaker_torch_distributed_enabled")):
                nproc = type_gpus if type_gpus and machine_gpus >= type_gpus else 1
                for rank_env in self._torchrun_envs(host, nproc):
                    launches.append((host, cmd, {**env, **rank_env}, layout.code))
            else:
                launches.append((host, cmd, env, layout.code))
        self._pending = len(launches)
        for host, cmd, env, cwd in launches:
            self._spawn(host, cmd, env, cwd)

    def _base_env(self) -> dict[str, str]:
        """The platform's env of every host: sent to this localcloud when the server runs us."""
        base = ct.base_env(self.request)
        if self.endpoint is None or self.home is None:
            return base
        from localcloud.client import client_env

        env = client_env(self.endpoint, self.home, base=base)
        env.pop("NOTEBOOK_INSTANCE_NAME", None)  # a training host is no notebook instance
        return env

    def _torchrun_envs(self, host: str, nproc: int) -> list[dict[str, str]]:
        """The variables torchrun gives each worker (contract §3.2)."""
        node = self.hosts.index(host)
        world = nproc * len(self.hosts)
        envs = []
        for local in range(nproc):
            rank = node * nproc + local
            env = {
                "RANK": str(rank),
                "LOCAL_RANK": str(local),
                "WORLD_SIZE": str(world),
                "LOCAL_WORLD_SIZE": str(nproc),
                "GROUP_RANK": str(node),
                "GROUP_WORLD_SIZE": str(len(self.hosts)),
                "ROLE_RANK": str(rank),
                "ROLE_WORLD_SIZE": str(world),
                "ROLE_NAME": "default",
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(self.master_port),
                "TORCHELASTIC_RESTART_COUNT": "0",
                "TORCHELASTIC_MAX_RESTARTS": "0",
                "TORCHELASTIC_RUN_ID": self.job_name,
                # False: rank 0 hosts the TCPStore itself, as there is no elastic agent.
                "TORCHELASTIC_USE_AGENT_STORE": "False",
                "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1",
                "NCCL_PROTO": "simple",
            }
            if nproc > 1:
                env["OMP_NUM_THREADS"] = "1"
            envs.append(env)
        return envs

    def _spawn(self, host: str, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        if self.script_mode:
            self._log(host, _toolkit_line("Invoking user script"))
            self._log(host, "Invoking script with the following command:")
            self._log(host, shlex.join(cmd))
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._record(proc.pid)
        worker = _Worker(host, cmd, proc)
        with self._lock:
            self._workers.append(worker)
            self._started.setdefault(host, time.monotonic())
        for stream in (proc.stdout, proc.stderr):
            reader = threading.Thread(target=self._read, args=(worker, stream), daemon=True)
            reader.start()
            worker.readers.append(reader)
        threading.Thread(target=self._reap, args=(worker,), daemon=True).start()

    def _record(self, pgid: int) -> None:
        """Note a live host group, so a server started after a crash of this one can end it."""
        # Hosts already run while later ones are recorded: nothing on the way is followed.
        with contextlib.suppress(OSError, safepaths.UnsafePath):
            started = (_start_time(pgid) or "").encode()
            safepaths.write_file(
                self.job_dir, f"{HOSTS_RECORD}/{pgid}", started, create_parents=True
            )

    def _read(self, worker: _Worker, stream: Any) -> None:
        is_err = stream is worker.proc.stderr
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            worker.capture.feed(line, is_err)
            self._log(worker.host, line)
        stream.close()

    def _log(self, host: str, line: str) -> None:
        # The manager's sink also writes <job_dir>/<host>.log, so Cluster does not.
        with self._log_locks[host]:
            self.log_sink(host, line)

    def _reap(self, worker: _Worker) -> None:
        code = worker.proc.wait()
        _kill_group(worker.proc.pid, signal.SIGKILL)  # stragglers the entry point left behind
        _wait_group_gone(worker.proc.pid)
        with contextlib.suppress(OSError, safepaths.UnsafePath):
            safepaths.remove(self.job_dir, f"{HOSTS_RECORD}/{worker.proc.pid}")
        for reader in worker.readers:
            reader.join(timeout=10)
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
                self._log(host, _toolkit_line("Reporting training FAILURE", "ERROR"))
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

    def _host_failure_text(self, worker: _Worker, code: int) -> str:
        # The host's folder is the script's to change: the failure file may be a link by now.
        failure = self._inside_job(self.layouts[worker.host].failure)
        if not self.script_mode:
            try:
                data = safepaths.read_regular(self.job_dir, failure, 4 * FAILURE_LIMIT)
            except (OSError, safepaths.UnsafePath) as exc:
                reason = _opt_ml(exc, worker.host)
                self._log(worker.host, f"localcloud: the failure file was not read: {reason}")
                data = None
            text = (data or b"").decode("utf-8", "replace")
            return text if text.strip() else f", exit code: {code}"
        text = ct.failure_text(code, worker.capture.error_message(), " ".join(worker.cmd))
        self._write_host_file(worker.host, failure, text)
        return text

    def _write_host_file(self, host: str, relative: str, text: str) -> None:
        """Write a platform file of a host, never through a link the script left on the way."""
        try:
            safepaths.write_file(self.job_dir, relative, text.encode())
        except (OSError, safepaths.UnsafePath) as exc:
            shown = "/opt/ml/" + relative.split("/", 1)[1]
            self._log(host, f"localcloud: {shown} was not written: {_opt_ml(exc, host)}")

    def _finish(self) -> None:
        if self.script_mode and self._failure is None and not self._stop_requested:
            for host in self.hosts:
                success = self._inside_job(self.layouts[host].output / "success")
                self._write_host_file(host, success, "")
                self._log(host, _toolkit_line("Reporting training SUCCESS"))
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
        for worker in workers:
            if worker.proc.poll() is None:
                _kill_group(worker.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for worker in workers:
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(worker.proc.pid, signal.SIGKILL)
                worker.proc.wait()

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
        bucket, prefix = split_s3_uri(output_s3_uri.rstrip("/"))
        base = "/".join(p for p in (prefix, self.job_name, "output") if p)
        # A fresh folder of our own: a script may have left a link under any name it could guess.
        with tempfile.TemporaryDirectory(dir=self.job_dir, prefix=".artifacts-") as staging:
            model_tar = self._pack("model", Path(staging) / "model.tar.gz")
            output_tar = self._pack("output/data", Path(staging) / "output.tar.gz")
            s3.upload(model_tar, bucket, f"{base}/model.tar.gz")
            s3.upload(output_tar, bucket, f"{base}/output.tar.gz")
        return f"s3://{bucket}/{base}/model.tar.gz"

    def _pack(self, folder: str, dest: Path) -> Path:
        """One tar.gz of /opt/ml/<folder> merged over the hosts: regular files only.

        A link inside the folder is left out (and logged); the folder itself being a link (or
        under one) fails the upload rather than packing what the link names.
        """
        scanned = []
        for host in self.hosts:
            try:
                found = artifacts.scan(self.job_dir, f"{host}/{folder}")
            except (OSError, safepaths.UnsafePath) as exc:
                raise ArtifactError(
                    f"/opt/ml/{folder} on {host} could not be packed: "
                    f"{_opt_ml(exc, host)}; localcloud packs only a real folder and follows no "
                    "link out of it, so nothing was uploaded"
                ) from exc
            for name in found.skipped:
                self._log(
                    host,
                    f"localcloud: /opt/ml/{folder}/{name} is not uploaded: only regular files "
                    "are packed (it is a link, fifo or device)",
                )
            scanned.append(found)
        artifacts.write_tar_gz(artifacts.merged_files(scanned), dest)
        return dest


class ArtifactError(Exception):
    """Artifacts that cannot be packed; the manager reports it as an upload failure."""


def _opt_ml(exc: Exception, host: str) -> str:
    """An error about a host path, with the path written as the script sees it (/opt/ml/…)."""
    if isinstance(exc, safepaths.UnsafePath) and exc.path.startswith(f"{host}/"):
        return f"/opt/ml/{exc.path[len(host) + 1 :]} {exc.why}"
    return str(exc)


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _wait_group_gone(pgid: int, timeout_s: float = 3.0) -> None:
    """Return once no live process is left in the group (a SIGKILL lands asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _live_members(pgid):
        time.sleep(0.02)


def _live_members(pgid: int) -> bool:
    """Whether any non-zombie process belongs to process group pgid (Linux /proc)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return False
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _toolkit_line(message: str, level: str = "INFO") -> str:
    """A log line in the toolkit's format, so the host log reads like the container's."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    return f"{stamp} {'sagemaker-training-toolkit':<12} {level:<8} {message}"
