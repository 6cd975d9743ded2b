"""The `localcloud` Jupyter kernel: a normal IPython kernel started through `localcloud run`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from localcloud import config

KERNEL_NAME = "localcloud"
DISPLAY_NAME = "Python 3 (localcloud)"


def kernel_spec() -> dict[str, object]:
    """kernel.json contents: ipykernel under `python -m localcloud run --`."""
    return {
        "argv": [
            sys.executable,
            "-m",
            "localcloud",
            "run",
            "--keep-server",  # a server this kernel started outlives it: other kernels may use it
            "--",
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            # ipykernel 7 warns on every start that loopback TCP is unencrypted; in a course run
            # that line interleaves with every progress bar. Errors still show.
            "--IPKernelApp.log_level=ERROR",
        ],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "env": {"PYTHONPATH": str(config.REPO_ROOT)},
        "metadata": {"debugger": True},
    }


def kernels_dir(user: bool = False) -> Path:
    """The venv's Jupyter kernels folder, or the user's with user=True."""
    if user:
        from jupyter_core.paths import jupyter_data_dir

        return Path(jupyter_data_dir()) / "kernels"
    return Path(sys.prefix) / "share" / "jupyter" / "kernels"


def install_kernel(user: bool = False) -> Path:
    """Write the kernelspec and return its folder."""
    folder = kernels_dir(user) / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(kernel_spec(), indent=1) + "\n")
    logos = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3"
    for logo in ("logo-32x32.png", "logo-64x64.png"):
        if (logos / logo).exists() and not (folder / logo).exists():
            (folder / logo).write_bytes((logos / logo).read_bytes())
    return folder
