"""The request's own entrypoint (ContainerEntrypoint/Arguments), run as SDK v3's drivers expect.

ModelTrainer does not use the image's ENTRYPOINT: it sends `/bin/bash -c "…/sm_train.sh"` and its
own driver scripts in the `sm_drivers` channel, which hard-code `/opt/ml`, the master `algo-1`
and port 7777 (../shared/reference/sdk-v3-modeltrainer-notes.md). No container and no mount
namespace here (that would not work on a macOS laptop), so this module maps those names by
rewriting a private copy of the drivers: `/opt/ml` → the host folder, `algo-1:7777` → loopback and
the job's own free port. A release whose drivers name them anywhere else fails the job loudly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

from localcloud.hosts import safepaths
from localcloud.hosts.environment import loopback_interface
from localcloud.hosts.errors import ClientError
from localcloud.hosts.params import OPT_ML

DRIVERS_CHANNEL = "sm_drivers"
CONTAINER_BIN = "/usr/local/bin"  # where the job's python3/pip3/torchrun show in its logs
# the job interpreter as the drivers print it (sys.executable), not a longer name it starts
PYTHON_PATH = re.compile(re.escape(sys.executable) + r"(?![\w.])")


def python_pattern(python: str) -> re.Pattern[str]:
    """PYTHON_PATH for a job whose interpreter is python (an image environment's)."""
    return PYTHON_PATH if python == sys.executable else re.compile(re.escape(python) + r"(?![\w.])")


# The constants environment.py writes into sm_training.env; every other driver reads that file.
MASTER_ADDR = 'SM_MASTER_ADDR = "algo-1"'
MASTER_PORT = "SM_MASTER_PORT = 7777"
ENVIRONMENT_SCRIPT = "scripts/environment.py"
MPI_DRIVER = "mpi_driver.py"
# Only the MPI driver (refused) may still name a host or the port after the mapping.
_UNMAPPED = re.compile(r"algo-\d|\b7777\b")
_UNMAPPED_EXEMPT = ("mpi_driver.py", "mpi_utils.py")
_TEXT_SUFFIXES = (".py", ".sh")
# What the host-folder path may not contain: it is spliced into shell and Python text.
_UNSAFE_PATH = re.compile(r"[\"'\\`$\n\r\t;&|<>(){}*?!#~]")
SHELLS = ("bash", "sh")


def uses_entrypoint(request: dict[str, Any]) -> bool:
    """Whether the request brings its own entrypoint (ModelTrainer always does)."""
    return bool(request.get("AlgorithmSpecification", {}).get("ContainerEntrypoint"))


def check_root(root: Path) -> str:
    """The host folder as text, refused if shell or Python text could not carry it verbatim."""
    text = str(root)
    if _UNSAFE_PATH.search(text):
        raise ClientError(
            f"ClientError: localcloud cannot map /opt/ml to {text!r}: the drivers of this job "
            "are shell and Python scripts, and that path has quotes or shell characters. Start "
            "localcloud with a LOCALCLOUD_HOME made of plain characters."
        )
    return text


def _rewrite(path: Path, text: str) -> None:
    """Replace path's content by a new file (a downloaded file may share its inode)."""
    tmp = path.with_name(path.name + ".localcloud")
    tmp.write_text(text)
    os.replace(tmp, path)


def map_drivers(drivers: Path, root: Path, master_port: int) -> list[str]:
    """Rewrite the drivers' /opt/ml, algo-1 and 7777; the files changed, relative to drivers."""
    if not drivers.is_dir():
        return []
    host_root = check_root(root)
    environment = drivers / ENVIRONMENT_SCRIPT
    if environment.is_file():
        text = environment.read_text()
        missing = [anchor for anchor in (MASTER_ADDR, MASTER_PORT) if anchor not in text]
        if missing:
            raise _changed_drivers(f"{ENVIRONMENT_SCRIPT} no longer sets {' and '.join(missing)}")
    changed = []
    for folder, dirs, names in os.walk(drivers):  # os.walk does not follow links
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = Path(folder, name)
            if path.is_symlink() or not name.endswith(_TEXT_SUFFIXES):
                continue
            text = path.read_text()
            new = text.replace(MASTER_ADDR, 'SM_MASTER_ADDR = "127.0.0.1"')
            new = new.replace(MASTER_PORT, f"SM_MASTER_PORT = {master_port}")
            unmapped = None if name in _UNMAPPED_EXEMPT else _UNMAPPED.search(new)
            if unmapped:
                line = new[: unmapped.start()].count("\n") + 1
                relative = path.relative_to(drivers)
                raise _changed_drivers(f"{relative}:{line} names {unmapped.group()!r}")
            new = new.replace(OPT_ML, shlex.quote(host_root) if name.endswith(".sh") else host_root)
            if new != text:
                _rewrite(path, new)
                changed.append(str(path.relative_to(drivers)))
    for cache in drivers.rglob("__pycache__"):
        if cache.is_dir() and not cache.is_symlink():
            shutil.rmtree(cache)  # compiled from the unmapped text
    return sorted(changed)


def _changed_drivers(detail: str) -> ClientError:
    return ClientError(
        "ClientError: localcloud does not know this SDK release's container drivers "
        f"({detail}); it maps /opt/ml, algo-1 and 7777 as sagemaker-train 1.27 uses them. "
        "Use the SDK version in the course's requirements.txt, or update "
        "localcloud/hosts/drivers.py."
    )


def refuse_mpi(drivers: Path) -> None:
    """The MPI driver needs sshd between hosts; localcloud runs Torchrun and plain scripts."""
    script = drivers / "sm_train.sh"
    if script.is_file() and MPI_DRIVER in script.read_text():
        raise ClientError(
            "ClientError: localcloud does not run ModelTrainer's MPI driver (it starts sshd on "
            "every host); use distributed=Torchrun() or no distributed config."
        )


def requirements_file(drivers: Path, code: Path, scratch: Path) -> Path | None:
    """SourceCode.requirements as a file of the code channel, or None when not set.

    A source_dir given as a .tar.gz arrives packed (sm_train.sh unpacks it at run time), so
    its requirements are looked up in a link-safe extraction into scratch.
    """
    try:
        source_code = json.loads((drivers / "sourcecode.json").read_text()) or {}
    except (OSError, ValueError):
        return None
    if not isinstance(source_code, dict) or not source_code.get("requirements"):
        return None
    name = str(source_code["requirements"])
    archive = code / Path(str(source_code.get("source_dir") or "")).name
    if archive.name.endswith(".tar.gz") and archive.is_file() and not archive.is_symlink():
        try:
            safepaths.extract_tar(archive, scratch)
        except (OSError, tarfile.TarError, safepaths.UnsafePath) as exc:
            raise ClientError(f"ClientError: Could not extract {archive.name}: {exc}") from exc
        code = scratch
    try:
        path = safepaths.inside(code, name)
    except safepaths.UnsafePath:
        path = None
    if path is None or not path.is_file():
        raise ClientError(
            f"ClientError: SourceCode.requirements {name!r} is not a file in the source "
            "directory (/opt/ml/input/data/code)."
        )
    return path


def command(entrypoint: list[str], arguments: list[str], root: Path, bin_dir: Path) -> list[str]:
    """The container's command with /opt/ml mapped and its program found on this machine."""
    host_root = check_root(root)
    program = entrypoint[0]
    local = bin_dir / Path(program).name
    if local.is_file():
        resolved = str(local)
    elif os.path.isabs(program) and os.access(program, os.X_OK):
        resolved = program
    else:
        resolved = shutil.which(program) or ""
    if not resolved:
        raise ClientError(
            f"ClientError: the ContainerEntrypoint program {program!r} is not on this machine; "
            "localcloud runs the request's entrypoint with the machine's own programs."
        )
    words = [*entrypoint[1:], *arguments]
    shell = Path(program).name in SHELLS
    mapped = []
    for i, word in enumerate(words):
        script = shell and i > 0 and words[i - 1] == "-c"
        mapped.append(word.replace(OPT_ML, shlex.quote(host_root) if script else host_root))
    return [resolved, *mapped]


def write_bin(bin_dir: Path, gpus: int, python: str = sys.executable) -> Path:
    """python3, pip3, torchrun of the job interpreter (and no nvidia-smi on a CPU type)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    python = shlex.quote(python)
    scripts = {
        "python3": f'exec {python} "$@"',
        "python": f'exec {python} "$@"',
        "pip3": f'exec {python} -m pip "$@"',
        "pip": f'exec {python} -m pip "$@"',
        "torchrun": f'exec {python} -m torch.distributed.run "$@"',
    }
    if gpus == 0:  # a CPU instance has no GPU even when this machine has one
        scripts["nvidia-smi"] = 'echo "NVIDIA-SMI has failed: no GPU on this instance" >&2; exit 9'
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def container_env(base: dict[str, str], bin_dir: Path, python_path: str) -> dict[str, str]:
    """The platform env of an entrypoint job: the job interpreter first, pip kept offline."""
    env = dict(base)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH") or os.defpath])
    env["PYTHONPATH"] = python_path
    env["PIP_NO_INDEX"] = "1"  # pip finds only what is installed; it never reaches an index
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["GLOO_SOCKET_IFNAME"] = loopback_interface()
    return env
