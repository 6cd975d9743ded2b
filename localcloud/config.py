"""State folder, port and defaults shared by the server, the CLI and the client."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999), so an outgoing connection rarely holds our port.
PORT_RANGE = (20000, 29999)
PORT_TRIES = 10  # a busy derived port: the next ones are tried, the one used goes in server.port
DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
ROLE_NAME = "SageMakerCourseExecutionRole"
DEFAULT_NOTEBOOK_INSTANCE = "localcloud-notebook"
DEFAULT_CLOCK_SCALE = 50.0  # SDK polls of 5 s / 10 s / 30 s become 0.1 s / 0.2 s / 0.6 s
MAX_RUNNING_JOBS = 4
# SageMaker waits 120 s between SIGTERM and SIGKILL; locally a learner should not wait that long.
DEFAULT_STOP_GRACE_S = 5.0
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# The course role's session (its credentials live in the state folder: localcloud/credentials.py),
# registered in moto at every server start, so a kernel keeps its identity across restarts.
ROLE_SESSION_NAME = "localcloud"

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
BOOT_DIR = PACKAGE_DIR / "_boot"


def _work_tree(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where pid, port, logs and job folders live: explicit, $LOCALCLOUD_HOME, or the work tree."""
    chosen = explicit or os.environ.get("LOCALCLOUD_HOME")
    if chosen:
        return Path(chosen).expanduser().resolve()
    tree = _work_tree(Path.cwd().resolve()) or _work_tree(REPO_ROOT) or Path.cwd().resolve()
    return tree / ".localcloud"


def default_port(home: Path) -> int:
    """A port derived from the state folder's path so two checkouts don't clash."""
    if os.environ.get("LOCALCLOUD_PORT"):
        return int(os.environ["LOCALCLOUD_PORT"])
    digest = hashlib.sha256(str(home).encode()).digest()
    low, high = PORT_RANGE
    return low + int.from_bytes(digest[:4], "big") % (high - low + 1)


def port_is_fixed() -> bool:
    """Whether the port was chosen by the user ($LOCALCLOUD_PORT) rather than derived."""
    return bool(os.environ.get("LOCALCLOUD_PORT"))


def region() -> str:
    """The region clients use: the usual AWS variables if set, else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


# The trust policy of a SageMaker execution role: SageMaker may assume it.
SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def role_arn() -> str:
    """ARN of the course's execution role created at server start."""
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE_NAME}"


def clock_scale() -> float:
    """How much faster the SageMaker SDK's polling clock runs in clients."""
    try:
        return max(1.0, float(os.environ.get("LOCALCLOUD_CLOCK_SCALE", DEFAULT_CLOCK_SCALE)))
    except ValueError:
        return DEFAULT_CLOCK_SCALE


def server_python() -> str:
    """The interpreter that serves and runs jobs: LOCALCLOUD_PYTHON (a client venv without the
    server's packages, e.g. SDK v3's test venv, names the course venv's), else this one."""
    return os.environ.get("LOCALCLOUD_PYTHON") or sys.executable


def endpoint_for(port: int) -> str:
    return f"http://{HOST}:{port}"


@dataclass(frozen=True)
class ServerSettings:
    """What the server needs to know at start, read once from the environment."""

    home: Path
    port: int
    notebook_instance: str
    stop_grace_s: float
    max_running_jobs: int
    fixed_port: bool = False  # False: a busy port makes the server try the next PORT_TRIES - 1

    @classmethod
    def from_env(cls, home: Path | None = None, port: int | None = None) -> ServerSettings:
        """Settings for a server in `home` (default: state_dir())."""
        home = home or state_dir()
        return cls(
            home=home,
            port=port or default_port(home),
            notebook_instance=os.environ.get(
                "LOCALCLOUD_NOTEBOOK_INSTANCE", DEFAULT_NOTEBOOK_INSTANCE
            ),
            stop_grace_s=float(os.environ.get("LOCALCLOUD_STOP_GRACE_S", DEFAULT_STOP_GRACE_S)),
            max_running_jobs=int(os.environ.get("LOCALCLOUD_MAX_RUNNING_JOBS", MAX_RUNNING_JOBS)),
            fixed_port=bool(port) or port_is_fixed(),
        )

    @property
    def pid_file(self) -> Path:
        return self.home / "server.pid"

    @property
    def port_file(self) -> Path:
        return self.home / "server.port"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def records_dir(self) -> Path:
        return self.home / "records"
