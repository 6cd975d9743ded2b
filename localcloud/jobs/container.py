"""One host of a training job: its /opt/ml-like folder, config files, SM_* env and argv.

Everything here is a pure function of the CreateTrainingJob request and the host folder, so the
result can be compared with what the sagemaker-training toolkit computes (contract §1–§2).
Deliberate differences from a real container are listed in localcloud/README.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPT_ML = "/opt/ml"
GROUP_NAME = "homogeneousCluster"
# The toolkit never passes these reserved keys to the script; every other sagemaker_* key is a
# "framework parameter" (contract §2.3).
RESERVED_HYPERPARAMETERS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "default_user_module_name",
    "_tuning_objective_metric",
    "sagemaker_s3_output",
)
# Hyperparameters that turn on a distribution strategy and so make the toolkit pick its master
# from the instance group's host list.
DISTRIBUTION_FLAGS = (
    "sagemaker_mpi_enabled",
    "sagemaker_parameter_server_enabled",
    "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_ddp_enabled",
    "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled",
    "sagemaker_torch_distributed_enabled",
)
# SAGEMAKER_TRAINING_MODULE of each framework image; it shows up as SM_FRAMEWORK_MODULE.
FRAMEWORK_MODULES = {
    "pytorch": "sagemaker_pytorch_container.training:main",
    "xgboost": "sagemaker_xgboost_container.training:main",
    "sklearn": "sagemaker_sklearn_container.training:main",
    "tensorflow": "sagemaker_tensorflow_container.training:main",
}
# The API's ChannelName pattern; "." and ".." match it but name no folder of their own.
CHANNEL_NAME = re.compile(r"[A-Za-z0-9\.\-_]+")
_SAFE_ENTRY_POINT = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._+-]*(/[A-Za-z0-9._+-]+)*$")
# Fallback GPU counts for the course's types until localcloud.jobs.instances is available.
_FALLBACK_GPUS = {
    "ml.g4dn.xlarge": 1,
    "ml.g4dn.2xlarge": 1,
    "ml.g4dn.4xlarge": 1,
    "ml.g4dn.8xlarge": 1,
    "ml.g4dn.12xlarge": 4,
    "ml.g4dn.16xlarge": 1,
    "ml.g5.xlarge": 1,
    "ml.g5.2xlarge": 1,
    "ml.g5.4xlarge": 1,
    "ml.g5.8xlarge": 1,
    "ml.g5.12xlarge": 4,
    "ml.g5.16xlarge": 1,
    "ml.g5.24xlarge": 4,
    "ml.g5.48xlarge": 8,
    "ml.p3.2xlarge": 1,
    "ml.p3.8xlarge": 4,
    "ml.p3.16xlarge": 8,
    "ml.p3dn.24xlarge": 8,
    "ml.p4d.24xlarge": 8,
    "ml.p5.48xlarge": 8,
    "ml.p2.xlarge": 1,
    "ml.p2.8xlarge": 8,
    "ml.p2.16xlarge": 16,
}


class ClientError(Exception):
    """A job that cannot run as requested; its text becomes the FailureReason as is."""


def image_kind(training_image: str) -> str:
    """Which container an image URI names, from its repository (…/<repo>:<tag>)."""
    repo = training_image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    if repo == "sagemaker-xgboost":
        return "xgboost"
    if repo.startswith("pytorch-training"):
        return "pytorch"
    if repo.startswith("sagemaker-scikit-learn"):
        return "sklearn"
    if repo.startswith("tensorflow-training"):
        return "tensorflow"
    return "other"


def gpu_count(instance_type: str) -> int:
    """GPUs of an instance type, from the instance table (README: SM_NUM_GPUS follows it)."""
    try:
        from localcloud.jobs import instances  # owned by the server colleague
    except ImportError:
        return _FALLBACK_GPUS.get(instance_type, 0)
    return int(instances.gpu_count(instance_type))


def machine_gpu_count() -> int:
    """GPUs this machine really has, counted the way the toolkit counts them."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(
            ["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def neuron_count(instance_type: str) -> int:
    """Neuron cores as the toolkit reports them without neuron-ls."""
    return 64 if "trn2.48xlarge" in instance_type else 0


@dataclass(frozen=True)
class HostLayout:
    """The /opt/ml tree of one host, rooted in the job folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def data(self) -> Path:
        return self.root / "input" / "data"

    @property
    def code(self) -> Path:
        return self.root / "code"

    def channel(self, name: str) -> Path:
        """input/data/<name>; refused unless the name is one plain folder name."""
        return self.data / check_channel_name(name)

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    def create(self) -> None:
        """Make the empty tree SageMaker provides before the container starts."""
        for sub in (
            self.config,
            self.data,
            self.code,
            self.model,
            self.output_data,
            self.output / "intermediate",
            self.root / "checkpoints",
        ):
            sub.mkdir(parents=True, exist_ok=True)

    def local_path(self, path: str) -> str:
        """The place in this folder that an /opt/ml path names (other paths unchanged)."""
        if path == OPT_ML or path.startswith(OPT_ML + "/"):
            return str(self.root) + path[len(OPT_ML) :]
        return path


def check_channel_name(name: str) -> str:
    """The name itself, or a ClientError: a channel folder must be one folder in input/data."""
    if not isinstance(name, str) or not CHANNEL_NAME.fullmatch(name) or name in (".", ".."):
        raise ClientError(
            f"ClientError: Channel name {name!r} cannot be used: it must match "
            "[A-Za-z0-9\\.\\-_]+ and name one folder inside /opt/ml/input/data, so localcloud "
            "created nothing for it."
        )
    return name


# ---------------------------------------------------------------- config files (contract §1)


def host_names(count: int) -> list[str]:
    """algo-1..algo-N, sorted the way SageMaker sorts them (lexicographically)."""
    return sorted(f"algo-{i}" for i in range(1, count + 1))


def resource_config(host: str, hosts: list[str], instance_type: str) -> dict[str, Any]:
    """resourceconfig.json of one host (contract §1.4)."""
    return {
        "current_host": host,
        "current_instance_type": instance_type,
        "current_group_name": GROUP_NAME,
        "hosts": list(hosts),
        "instance_groups": [
            {
                "instance_group_name": GROUP_NAME,
                "instance_type": instance_type,
                "hosts": list(hosts),
            }
        ],
        "network_interface_name": "eth0",
    }


def input_data_config(request: dict[str, Any]) -> dict[str, dict[str, str]]:
    """inputdataconfig.json: one entry per channel, ContentType only when set (contract §1.3)."""
    default_mode = request.get("AlgorithmSpecification", {}).get("TrainingInputMode", "File")
    config: dict[str, dict[str, str]] = {}
    for channel in request.get("InputDataConfig", []):
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        entry: dict[str, str] = {}
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        entry["TrainingInputMode"] = channel.get("InputMode") or default_mode
        entry["S3DistributionType"] = source.get("S3DataDistributionType", "FullyReplicated")
        entry["RecordWrapperType"] = channel.get("RecordWrapperType", "None")
        config[channel["ChannelName"]] = entry
    return config


def rewrite_hyperparameters(raw: dict[str, str], layout: HostLayout) -> dict[str, str]:
    """Point /opt/ml/... values at the host folder, keeping each value's JSON encoding."""
    out = {}
    for key, value in raw.items():
        try:
            decoded = json.loads(value)
        except (ValueError, TypeError):
            out[key] = layout.local_path(value) if isinstance(value, str) else value
            continue
        if isinstance(decoded, str) and decoded != layout.local_path(decoded):
            out[key] = json.dumps(layout.local_path(decoded))
        else:
            out[key] = value
    return out


def write_config_files(
    layout: HostLayout, request: dict[str, Any], host: str, hosts: list[str]
) -> None:
    """The three files SageMaker writes into /opt/ml/input/config before the container starts."""
    instance_type = request["ResourceConfig"]["InstanceType"]
    hyperparameters = rewrite_hyperparameters(request.get("HyperParameters") or {}, layout)
    files = {
        "hyperparameters.json": hyperparameters,
        "inputdataconfig.json": input_data_config(request),
        "resourceconfig.json": resource_config(host, hosts, instance_type),
    }
    checkpoint = request.get("CheckpointConfig")
    if checkpoint:
        local = layout.local_path(checkpoint.get("LocalPath") or OPT_ML + "/checkpoints")
        files["checkpointconfig.json"] = {"LocalPath": local, "S3Uri": checkpoint.get("S3Uri")}
    for name, content in files.items():
        (layout.config / name).write_text(json.dumps(content, indent=4))


# ---------------------------------------------------------- hyperparameters (contract §2.3)


def decode_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """JSON-decode each value, keeping the raw string when it is not JSON (as the toolkit does)."""
    decoded = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (ValueError, TypeError):
            decoded[key] = value
    return decoded


def split_hyperparameters(decoded: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(user hyperparameters, sagemaker_* ones): the script never sees the second kind."""
    user, sagemaker = {}, {}
    for key, value in decoded.items():
        if key in RESERVED_HYPERPARAMETERS or key.startswith("sagemaker_"):
            sagemaker[key] = value
        else:
            user[key] = value
    return user, sagemaker


def _arg_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin1")
    return str(value)


def to_cmd_args(hyperparameters: dict[str, Any]) -> list[str]:
    """Sorted `--key value` (or `-k value`) pairs, values as str() of the decoded JSON."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        name = _arg_text(key)
        args.append(("--" if len(name) > 1 else "-") + name if name else "")
        value = hyperparameters[key]
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(_arg_text(value))
    return args


def env_value(value: Any) -> str:
    """How the toolkit writes a value into an SM_* variable: str as is, else compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin1")
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# ------------------------------------------------------------------ environment (contract §2.2)


@dataclass
class ScriptJob:
    """What a host needs to run a script-mode entry point."""

    layout: HostLayout
    host: str
    hosts: list[str]
    instance_type: str
    job_name: str
    region: str
    hyperparameters: dict[str, Any]
    sagemaker_hyperparameters: dict[str, Any]
    input_data_config: dict[str, dict[str, str]]
    framework_module: str | None
    num_gpus: int
    num_cpus: int


def script_job(
    layout: HostLayout,
    request: dict[str, Any],
    host: str,
    hosts: list[str],
    num_gpus: int,
    num_cpus: int | None = None,
) -> ScriptJob:
    """Collect what the toolkit would read from the config files and the image's env."""
    raw = rewrite_hyperparameters(request.get("HyperParameters") or {}, layout)
    user, sagemaker = split_hyperparameters(decode_hyperparameters(raw))
    kind = image_kind(request.get("AlgorithmSpecification", {}).get("TrainingImage", ""))
    return ScriptJob(
        layout=layout,
        host=host,
        hosts=hosts,
        instance_type=request["ResourceConfig"]["InstanceType"],
        job_name=request["TrainingJobName"],
        region=request.get("Region", ""),
        hyperparameters=user,
        sagemaker_hyperparameters=sagemaker,
        input_data_config=input_data_config(request),
        framework_module=FRAMEWORK_MODULES.get(kind),
        num_gpus=num_gpus,
        num_cpus=num_cpus if num_cpus is not None else (os.cpu_count() or 1),
    )


def training_env(job: ScriptJob) -> dict[str, Any]:
    """The toolkit's Environment as a dict (what SM_TRAINING_ENV holds)."""
    root = job.layout.root
    smhp = job.sagemaker_hyperparameters
    framework_params = {k: v for k, v in smhp.items() if k not in RESERVED_HYPERPARAMETERS}
    rc = resource_config(job.host, job.hosts, job.instance_type)
    distributed = any(framework_params.get(flag, False) for flag in DISTRIBUTION_FLAGS)
    dist_groups = framework_params.get(
        "sagemaker_distribution_instance_groups", [GROUP_NAME] if distributed else []
    )
    dist_hosts = [
        h
        for g in rc["instance_groups"]
        if g["instance_group_name"] in dist_groups
        for h in g["hosts"]
    ]
    master = dist_hosts[0] if dist_hosts else job.hosts[0]
    program = smhp.get("sagemaker_program")
    module = str(program)
    return {
        "additional_framework_parameters": framework_params,
        "channel_input_dirs": {c: str(root / "input" / "data" / c) for c in job.input_data_config},
        "current_host": job.host,
        "current_instance_group": GROUP_NAME,
        "current_instance_group_hosts": list(job.hosts),
        "current_instance_type": job.instance_type,
        "distribution_hosts": dist_hosts,
        "distribution_instance_groups": dist_groups,
        "framework_module": job.framework_module,
        "hosts": list(job.hosts),
        "hyperparameters": job.hyperparameters,
        "input_config_dir": str(root / "input" / "config"),
        "input_data_config": job.input_data_config,
        "input_dir": str(root / "input"),
        "instance_groups": [GROUP_NAME],
        "instance_groups_dict": {GROUP_NAME: rc["instance_groups"][0]},
        "is_hetero": False,
        "is_master": job.host == master,
        # The toolkit computes `SM_HP_MP_PARAMETERS and ...`, which is null when it is unset.
        "is_modelparallel_enabled": None,
        "is_smddpmprun_installed": False,
        "is_smddprun_installed": False,
        "job_name": job.job_name,
        "log_level": smhp.get("sagemaker_container_log_level", logging.INFO),
        "master_hostname": master,
        "model_dir": str(root / "model"),
        "module_dir": str(smhp.get("sagemaker_submit_directory", root / "code")),
        "module_name": module[:-3] if module.endswith(".py") else module,
        "network_interface_name": "eth0",
        "num_cpus": job.num_cpus,
        "num_gpus": job.num_gpus,
        "num_neurons": neuron_count(job.instance_type),
        "output_data_dir": str(root / "output" / "data"),
        "output_dir": str(root / "output"),
        "output_intermediate_dir": str(root / "output" / "intermediate"),
        "resource_config": rc,
        "topology": [],
        "user_entry_point": program,
    }


def sm_env_vars(job: ScriptJob) -> dict[str, str]:
    """Every SM_* variable the toolkit exports (toolkit 5.1.4 `to_env_vars`)."""
    env = training_env(job)
    values: dict[str, Any] = {
        "hosts": env["hosts"],
        "network_interface_name": env["network_interface_name"],
        "hps": env["hyperparameters"],
        "user_entry_point": env["user_entry_point"],
        "framework_params": env["additional_framework_parameters"],
        "resource_config": env["resource_config"],
        "input_data_config": env["input_data_config"],
        "output_data_dir": env["output_data_dir"],
        "channels": sorted(env["channel_input_dirs"]),
        "current_host": env["current_host"],
        "current_instance_type": env["current_instance_type"],
        "current_instance_group": env["current_instance_group"],
        "current_instance_group_hosts": env["current_instance_group_hosts"],
        "instance_groups": env["instance_groups"],
        "instance_groups_dict": env["instance_groups_dict"],
        "distribution_instance_groups": env["distribution_instance_groups"],
        "is_hetero": env["is_hetero"],
        "module_name": env["module_name"],
        "log_level": env["log_level"],
        "framework_module": env["framework_module"],
        "input_dir": env["input_dir"],
        "input_config_dir": env["input_config_dir"],
        "output_dir": env["output_dir"],
        "num_cpus": env["num_cpus"],
        "num_gpus": env["num_gpus"],
        "num_neurons": env["num_neurons"],
        "model_dir": env["model_dir"],
        "module_dir": env["module_dir"],
        "training_env": env,
        "user_args": to_cmd_args(job.hyperparameters),
        "output_intermediate_dir": env["output_intermediate_dir"],
    }
    for name, path in env["channel_input_dirs"].items():
        values[f"channel_{name}"] = path
    for key, value in job.hyperparameters.items():
        values[f"hp_{key}"] = value
    return {f"SM_{str(k).upper()}": env_value(v) for k, v in values.items()}


def _boot_path(env: dict[str, str]) -> list[str]:
    """The boot folder (its sitecustomize redirects AWS calls) when env sends them to localcloud."""
    boot = Path(__file__).resolve().parents[1] / "_boot"
    return [str(boot)] if env.get("LOCALCLOUD_ENDPOINT") and boot.is_dir() else []


def base_env(request: dict[str, Any], parent: dict[str, str] | None = None) -> dict[str, str]:
    """The platform's part of a host's env: parent env, job identity, request Environment."""
    parent = dict(os.environ if parent is None else parent)
    env = {
        k: v
        for k, v in parent.items()
        if not k.startswith(("SM_", "SAGEMAKER_", "TRAINING_JOB_")) and k != "CURRENT_HOST"
    }
    region = request.get("Region") or parent.get("AWS_DEFAULT_REGION") or ""
    if region:
        env.setdefault("AWS_REGION", region)
        env.setdefault("AWS_DEFAULT_REGION", region)
    # Idle OpenMP threads (xgboost, torch) spin by default; on a small shared machine that
    # starves the other hosts of the same job. The request's Environment can still override it.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["TRAINING_JOB_NAME"] = request["TrainingJobName"]
    env["TRAINING_JOB_ARN"] = request.get("TrainingJobArn", "")
    env.update({k: str(v) for k, v in (request.get("Environment") or {}).items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def script_env(job: ScriptJob, base: dict[str, str]) -> dict[str, str]:
    """The full environment the entry point sees: platform env, toolkit exports, SM_* vars."""
    env = dict(base)
    if job.framework_module:
        env["SAGEMAKER_TRAINING_MODULE"] = job.framework_module
    smhp = job.sagemaker_hyperparameters
    env["SAGEMAKER_JOB_NAME"] = str(smhp.get("sagemaker_job_name", ""))
    env["CURRENT_HOST"] = job.host
    env["SAGEMAKER_REGION"] = str(smhp.get("sagemaker_region") or job.region or "")
    env.update(sm_env_vars(job))
    # the code folder first (as the toolkit does), then the boot folder before anything else that
    # could hold a sitecustomize, then the repository root so `localcloud` imports
    repo = str(Path(__file__).resolve().parents[2])
    parts = [str(job.layout.code), *_boot_path(base), repo]
    if base.get("PYTHONPATH"):
        parts.append(base["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


# --------------------------------------------------------------- entry point (contract §2.5)


def validate_entry_point(name: str | None) -> str:
    """The toolkit 5.1.4 rule: a plain relative path inside the code folder."""
    if not name:
        raise ClientError(
            "ClientError: The training entry point name is empty. Set the "
            "'sagemaker_program' hyperparameter to the script to run, e.g. train.py."
        )
    bad = not _SAFE_ENTRY_POINT.match(name) or any(p in (".", "..") for p in name.split("/"))
    if bad:
        raise ClientError(
            f"ClientError: The training entry point {name!r} cannot be used: it must "
            "be a path inside your source directory made of letters, digits, "
            "'.', '_', '+', '-' and '/', not starting with '-' or '/'."
        )
    return name


def entry_command(job: ScriptJob, kind: str) -> list[str]:
    """The command line the container runs for the entry point (toolkit 5.1.4 rules).

    The XGBoost framework image (sagemaker-containers) runs the script as a module,
    `python -m <name>`, so localcloud does the same for that image.
    """
    program = validate_entry_point(job.sagemaker_hyperparameters.get("sagemaker_program"))
    args = to_cmd_args(job.hyperparameters)
    if program.endswith(".sh"):
        quoted = " ".join(_shell_quote(a) for a in args)
        return ["/bin/sh", "-c", f"./{_shell_quote(program)} {quoted}"]
    is_package = (job.layout.code / "setup.py").exists()
    if kind == "xgboost" or is_package:
        module = program[:-3] if program.endswith(".py") else program
        return [sys.executable, "-m", module.replace("/", "."), *args]
    if program.endswith(".py"):
        return [sys.executable, "--", program, *args]
    return ["/bin/sh", "-c", f"./{_shell_quote(program)} " + " ".join(map(_shell_quote, args))]


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# ------------------------------------------------------- requirements.txt, offline (§2.5)


def _installed_version(name: str) -> str | None:
    """Version of a distribution, or of the one providing that import name (xgboost-cpu)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    providers = metadata.packages_distributions().get(name.replace("-", "_").lower(), [])
    for dist in providers:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def missing_requirements(requirements: Path) -> list[str]:
    """Requirement lines this interpreter does not satisfy (pip would have to download them)."""
    from packaging.requirements import InvalidRequirement, Requirement

    missing = []
    for raw in requirements.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            missing.append(line)  # options, -r, -e: nothing pip could do offline
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            missing.append(line)
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = _installed_version(req.name)
        if version is None:
            missing.append(line)
            continue
        if req.url or not req.specifier.contains(version, prereleases=True):
            missing.append(f"{line} (installed: {version})")
    return missing


# ------------------------------------------------------------ failure text (contract §2.6)


def _error_markers() -> tuple[str, ...]:
    """Names whose appearance in a line starts the captured ErrorMessage, as in the toolkit."""
    import builtins

    skip = {
        "SystemExit",
        "KeyboardInterrupt",
        "GeneratorExit",
        "StopIteration",
        "StopAsyncIteration",
        "BaseExceptionGroup",
        "ExceptionGroup",
    }
    names = [
        n
        for n, obj in vars(builtins).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and not issubclass(obj, Warning)
        and n not in skip
    ]
    return (
        *names,
        "Invalidrequirement",
        "ResourceExhaustedError",
        "OutOfRangeError",
        "InvalidArgumentError",
        "mpirun.real",
        "ORTE",
        "ExecuteUserScriptError",
    )


ERROR_MARKERS = _error_markers()


class ErrorCapture:
    """Keeps stdout and stderr from the first line naming an exception class, per stream."""

    def __init__(self) -> None:
        self._lines: dict[bool, list[str]] = {False: [], True: []}

    def feed(self, line: str, is_stderr: bool) -> None:
        kept = self._lines[is_stderr]
        if kept or any(marker in line for marker in ERROR_MARKERS):
            kept.append(line.strip(" :\n") + "\n")

    def error_message(self) -> str:
        """The toolkit's ErrorMessage: stdout part then stderr part, repeated lines removed."""
        joined = " ".join(" ".join(self._lines[s]) for s in (False, True))
        return "\n".join(dict.fromkeys(joined.split("\n"))).strip()


def failure_text(exit_code: int, error_message: str, command: str) -> str:
    """The failure file the toolkit writes when the entry point exits non-zero."""
    lines = ["ExecuteUserScriptError:", f"ExitCode {exit_code}", f'ErrorMessage "{error_message}"']
    if exit_code == 137:
        lines.append('ExtraInfo "OutOfMemory: Process killed by SIGKILL (signal 9)"')
    lines.append(f'Command "{command}"')
    return "\n".join(lines).strip()
