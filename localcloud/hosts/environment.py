"""One host as the toolkit sees it: its /opt/ml folder, config files and SM_* variables.

The counterpart of toolkit environment.py: everything here but the machine's GPU count is a
function of the CreateTrainingJob request and the host folder, so it can be compared with what
the sagemaker-training toolkit computes (contract §1–§2). Deliberate differences from a real
container are listed in localcloud/README.md.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcloud.algorithms import image_kind
from localcloud.hosts.errors import ClientError
from localcloud.hosts.mapping import (
    decode_hyperparameters,
    env_value,
    split_hyperparameters,
    to_cmd_args,
)
from localcloud.hosts.params import (
    CHANNEL_NAME,
    DISTRIBUTION_FLAGS,
    FRAMEWORK_MODULES,
    GROUP_NAME,
    OPT_ML,
    RESERVED_HYPERPARAMETERS,
)


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


def loopback_interface() -> str:
    """The loopback device's name on this machine (macOS calls it lo0): every host's network."""
    return "lo0" if sys.platform == "darwin" else "lo"


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
        "network_interface_name": loopback_interface(),
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
        "network_interface_name": loopback_interface(),
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
