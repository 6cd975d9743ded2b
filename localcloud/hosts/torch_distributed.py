"""torchrun's worker environment without torchrun, and PyTorch's rendezvous over loopback.

The counterpart of toolkit torch_distributed.py (contract §3.2): every host of the job is a
process group on this machine, so the master is 127.0.0.1 and NCCL stays on the loopback device.
"""

from __future__ import annotations

from typing import Any

from localcloud.hosts.environment import loopback_interface
from localcloud.hosts.params import TORCH_DISTRIBUTED_ENABLED


def enabled(sagemaker_hyperparameters: dict[str, Any]) -> bool:
    """Whether the estimator asked for distribution={"torch_distributed": {"enabled": True}}."""
    value = sagemaker_hyperparameters.get(TORCH_DISTRIBUTED_ENABLED)
    return value is True or str(value).lower() == "true"


def processes_per_host(type_gpus: int, machine_gpus: int) -> int:
    """One worker per GPU of the instance type when this machine has them, else one."""
    return type_gpus if type_gpus and machine_gpus >= type_gpus else 1


def loopback_env(master_port: int) -> dict[str, str]:
    """What a PyTorch image's host needs to reach its peers on this machine."""
    return {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(master_port),
        "NCCL_SOCKET_IFNAME": loopback_interface(),
        "NCCL_IB_DISABLE": "1",
        "NCCL_DEBUG": "WARN",
    }


def torchrun_envs(
    hosts: list[str], host: str, nproc: int, master_port: int, run_id: str
) -> list[dict[str, str]]:
    """The variables torchrun gives each of the host's nproc workers."""
    node = hosts.index(host)
    world = nproc * len(hosts)
    envs = []
    for local in range(nproc):
        rank = node * nproc + local
        env = {
            "RANK": str(rank),
            "LOCAL_RANK": str(local),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(nproc),
            "GROUP_RANK": str(node),
            "GROUP_WORLD_SIZE": str(len(hosts)),
            "ROLE_RANK": str(rank),
            "ROLE_WORLD_SIZE": str(world),
            "ROLE_NAME": "default",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(master_port),
            "TORCHELASTIC_RESTART_COUNT": "0",
            "TORCHELASTIC_MAX_RESTARTS": "0",
            "TORCHELASTIC_RUN_ID": run_id,
            # False: rank 0 hosts the TCPStore itself, as there is no elastic agent.
            "TORCHELASTIC_USE_AGENT_STORE": "False",
            "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1",
            "NCCL_PROTO": "simple",
        }
        if nproc > 1:
            env["OMP_NUM_THREADS"] = "1"
        envs.append(env)
    return envs
