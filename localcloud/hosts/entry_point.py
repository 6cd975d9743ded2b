"""What a host runs: the checked entry point, its command line and its environment.

The counterpart of toolkit entry_point.py and the command part of its process.py (contract §2.5).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from localcloud.hosts.environment import ScriptJob, sm_env_vars
from localcloud.hosts.errors import ClientError
from localcloud.hosts.mapping import to_cmd_args

_SAFE_ENTRY_POINT = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._+-]*(/[A-Za-z0-9._+-]+)*$")
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # localcloud/
_REPOSITORY = _PACKAGE_ROOT.parent


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


def entry_command(job: ScriptJob, kind: str, python: str = sys.executable) -> list[str]:
    """The command line the container runs for the entry point (toolkit 5.1.4 rules).

    The XGBoost framework image (sagemaker-containers) runs the script as a module,
    `python -m <name>`, so localcloud does the same for that image. python: the job's
    interpreter (images/job_python.py).
    """
    program = validate_entry_point(job.sagemaker_hyperparameters.get("sagemaker_program"))
    args = to_cmd_args(job.hyperparameters)
    if program.endswith(".sh"):
        quoted = " ".join(shlex.quote(a) for a in args)
        return ["/bin/sh", "-c", f"./{shlex.quote(program)} {quoted}"]
    is_package = (job.layout.code / "setup.py").exists()
    if kind == "xgboost" or is_package:
        module = program[:-3] if program.endswith(".py") else program
        return [python, "-m", module.replace("/", "."), *args]
    if program.endswith(".py"):
        return [python, "--", program, *args]
    return ["/bin/sh", "-c", f"./{shlex.quote(program)} " + " ".join(map(shlex.quote, args))]


def _boot_path(env: dict[str, str]) -> list[str]:
    """The boot folder (its sitecustomize redirects AWS calls) when env sends them to localcloud."""
    boot = _PACKAGE_ROOT / "_boot"
    return [str(boot)] if env.get("LOCALCLOUD_ENDPOINT") and boot.is_dir() else []


def python_path(code: Path, base: dict[str, str]) -> str:
    """PYTHONPATH of the entry point: its code, localcloud's boot folder and repository, base's."""
    # the code folder first (as the toolkit does), then the boot folder before anything else that
    # could hold a sitecustomize, then the repository root so `localcloud` imports
    parts = [str(code), *_boot_path(base), str(_REPOSITORY)]
    if base.get("PYTHONPATH"):
        parts.append(base["PYTHONPATH"])
    return os.pathsep.join(dict.fromkeys(parts))


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
    env["PYTHONPATH"] = python_path(job.layout.code, base)
    return env
