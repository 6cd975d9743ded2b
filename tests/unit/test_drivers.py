"""How a request's own entrypoint is mapped: drivers rewritten, loud on unknown ones, PATH first."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from localcloud.hosts import drivers
from localcloud.hosts.errors import ClientError

ENVIRONMENT = """SM_MODEL_DIR = "/opt/ml/model"
SM_MASTER_ADDR = "algo-1"
SM_MASTER_PORT = 7777
"""
TRAIN_SH = """#!/bin/bash
cat /opt/ml/input/config/resourceconfig.json
python3 /opt/ml/input/data/sm_drivers/scripts/environment.py
"""


def _drivers(tmp_path: Path, environment: str = ENVIRONMENT, extra: str = "") -> Path:
    folder = tmp_path / "sm_drivers"
    (folder / "scripts").mkdir(parents=True)
    (folder / "scripts" / "environment.py").write_text(environment)
    (folder / "sm_train.sh").write_text(TRAIN_SH + extra)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "environment.cpython-311.pyc").write_bytes(b"stale")
    return folder


def test_the_drivers_names_are_mapped_to_the_host_folder_and_loopback(tmp_path: Path) -> None:
    folder = _drivers(tmp_path)
    root = tmp_path / "job" / "algo-1"
    changed = drivers.map_drivers(folder, root, 40123)
    assert changed == ["scripts/environment.py", "sm_train.sh"]
    env = (folder / "scripts" / "environment.py").read_text()
    assert f'SM_MODEL_DIR = "{root}/model"' in env
    assert 'SM_MASTER_ADDR = "127.0.0.1"' in env and "SM_MASTER_PORT = 40123" in env
    assert f"cat {root}/input/config/resourceconfig.json" in (folder / "sm_train.sh").read_text()
    assert not (folder / "__pycache__").exists()


def test_a_host_folder_with_a_space_is_quoted_in_shell_text(tmp_path: Path) -> None:
    folder = _drivers(tmp_path)
    root = tmp_path / "my jobs" / "algo-1"
    drivers.map_drivers(folder, root, 40123)
    script = (folder / "sm_train.sh").read_text()
    assert f"cat '{root}'/input/config/resourceconfig.json" in script
    assert f'SM_MODEL_DIR = "{root}/model"' in (folder / "scripts/environment.py").read_text()


def test_a_host_folder_with_shell_characters_is_refused(tmp_path: Path) -> None:
    folder = _drivers(tmp_path)
    with pytest.raises(ClientError, match="plain characters"):
        drivers.map_drivers(folder, tmp_path / "a'$(x)", 40123)
    assert "/opt/ml/model" in (folder / "scripts" / "environment.py").read_text()  # untouched


def test_drivers_of_another_release_fail_loudly(tmp_path: Path) -> None:
    moved = ENVIRONMENT.replace('SM_MASTER_ADDR = "algo-1"', 'MASTER = "algo-1"')
    with pytest.raises(ClientError, match="no longer sets SM_MASTER_ADDR"):
        drivers.map_drivers(_drivers(tmp_path / "a", moved), tmp_path / "root", 40123)
    extra = "torchrun --master_addr=algo-1 --master_port=7777\n"
    with pytest.raises(ClientError, match=r"sm_train.sh:4 names 'algo-1'"):
        drivers.map_drivers(_drivers(tmp_path / "b", extra=extra), tmp_path / "root", 40123)
    # positive control: the same files without the unknown line map
    assert drivers.map_drivers(_drivers(tmp_path / "c"), tmp_path / "root", 40123)


def test_the_mpi_driver_is_refused_and_basic_ones_are_not(tmp_path: Path) -> None:
    folder = _drivers(tmp_path / "a", extra="python3 distributed_drivers/mpi_driver.py\n")
    with pytest.raises(ClientError, match="MPI driver"):
        drivers.refuse_mpi(folder)
    drivers.refuse_mpi(_drivers(tmp_path / "b", extra="python3 basic_script_driver.py\n"))


def test_requirements_must_be_a_file_in_the_code_channel(tmp_path: Path) -> None:
    folder = _drivers(tmp_path)
    code = tmp_path / "code"
    code.mkdir()
    (code / "requirements.txt").write_text("pandas\n")
    (tmp_path / "outside.txt").write_text("pandas\n")
    source = folder / "sourcecode.json"
    source.write_text(json.dumps({"requirements": "requirements.txt"}))
    assert (
        drivers.requirements_file(folder, code, tmp_path / "scratch") == code / "requirements.txt"
    )
    source.write_text(json.dumps({"requirements": "../outside.txt"}))
    with pytest.raises(ClientError, match="not a file in the source directory"):
        drivers.requirements_file(folder, code, tmp_path / "scratch")
    # a source_dir given as a .tar.gz arrives packed: its requirements are read from inside
    with tarfile.open(code / "src.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "outside.txt", arcname="reqs.txt")
    source.write_text(json.dumps({"requirements": "reqs.txt", "source_dir": "/home/me/src.tar.gz"}))
    found = drivers.requirements_file(folder, code, tmp_path / "scratch2")
    assert found == tmp_path / "scratch2" / "reqs.txt" and found.read_text() == "pandas\n"
    source.write_text(json.dumps({"requirements": None}))
    assert drivers.requirements_file(folder, code, tmp_path / "scratch") is None


def test_the_command_maps_opt_ml_and_runs_the_job_interpreter(tmp_path: Path) -> None:
    bin_dir = drivers.write_bin(tmp_path / "bin", gpus=0)
    root = tmp_path / "host root"
    cmd = drivers.command(["/bin/bash"], ["-c", "ls /opt/ml/input"], root, bin_dir)
    assert cmd == ["/bin/bash", "-c", f"ls '{root}'/input"]
    assert drivers.command(["python3", "/opt/ml/code/x.py"], [], root, bin_dir) == [
        str(bin_dir / "python3"),
        f"{root}/code/x.py",
    ]
    with pytest.raises(ClientError, match="not on this machine"):
        drivers.command(["surely-no-such-program"], [], root, bin_dir)


def test_the_job_bin_comes_first_and_is_the_server_interpreter(tmp_path: Path) -> None:
    bin_dir = drivers.write_bin(tmp_path / "bin", gpus=0)
    env = drivers.container_env({"PATH": "/usr/bin:/bin"}, bin_dir, "")
    assert env["PATH"].split(":")[0] == str(bin_dir) and env["PIP_NO_INDEX"] == "1"
    out = subprocess.run(
        ["sh", "-c", "python3 -c 'import sys; print(sys.executable)'; nvidia-smi; echo $?"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == sys.executable and out[-1] == "9"  # a CPU type has no GPU
    assert not (drivers.write_bin(tmp_path / "gpu", gpus=1) / "nvidia-smi").exists()
