"""SDK v2's modules carry localcloud's patches, and a moved target is loud, never silently slow.

install() and uninstall() change the whole process, so they run in child processes here: a
localcloud server that another test wired into this one keeps its patches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localcloud import config, environ, sdk_patches

KINDS = {"clock", "config", "telemetry", "read"}


def _python_path() -> dict[str, str]:
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def _child(code: str, tmp_path: Path, **env: str) -> dict:
    """Run `code` in a fresh interpreter (as a learner's process starts) and read its JSON."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=config.REPO_ROOT,
        # PYTHONPATH carries the SDK v2 layer (make test-sdkv2), as it does for this process
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **_python_path(), **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_every_v2_target_is_where_the_table_says(monkeypatch):
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    assert sdk_patches.generation() == "v2"
    targets = sdk_patches.check_targets()
    assert {t.kind for t in targets} == KINDS
    assert "sagemaker.session.time" in map(str, targets)
    # the checker itself: a release that moved an attribute or a module is named
    moved = sdk_patches.Target("sagemaker.session", "clock", "clock")
    gone = sdk_patches.Target("sagemaker.waiting", "time", "clock")
    with pytest.raises(sdk_patches.TargetMissing) as raised:
        sdk_patches.check_targets(table={"v2": (*sdk_patches.TARGETS["v2"], moved, gone)})
    assert "sagemaker.session.clock (sagemaker.session has no attribute clock)" in str(raised.value)
    assert "sagemaker.waiting.time (module sagemaker.waiting not importable" in str(raised.value)
    with pytest.raises(
        sdk_patches.TargetMissing, match="generation v9 is not one localcloud knows"
    ):
        sdk_patches.check_targets("v9")


V2_CHILD = """
import json, uuid
from types import SimpleNamespace
from localcloud import sdk_patches

sdk_patches.install(50)  # before the SDK is imported, as a learner's process does
import jsonschema, sagemaker.session, sagemaker_core.main.resources
from sagemaker.config import config as sdk_config
from sagemaker.config.config_schema import TELEMETRY_OPT_OUT_PATH
from sagemaker.telemetry import telemetry_logging

def state():
    seen, real = [], jsonschema.validate
    jsonschema.validate = lambda c, s: (seen.append(c), real(c, s))[1]
    fresh = {"SchemaVersion": "1.0", "CustomParameters": {"probe": uuid.uuid4().hex}}
    sdk_config.validate_sagemaker_config(fresh)
    sagemaker.session.validate_sagemaker_config(fresh)
    refused = 0
    for _ in range(2):  # an invalid config is refused every time
        try:
            sdk_config.validate_sagemaker_config({"SchemaVersion": "0.9"})
        except jsonschema.ValidationError:
            refused += 1
    jsonschema.validate = real
    no_config = SimpleNamespace(boto_session=None)  # a sagemaker_core Session has none
    return {
        "sagemaker.session.time": type(sagemaker.session.time).__name__,
        "resources.time": type(sagemaker_core.main.resources.time).__name__,
        "validations of one config": seen.count(fresh),
        "invalid refused": refused,
        "telemetry opted out": telemetry_logging.resolve_value_from_config(
            config_path=TELEMETRY_OPT_OUT_PATH, default_value=False, sagemaker_session=no_config
        ),
    }

installed = state()
sdk_patches.uninstall()
print(json.dumps({"installed": installed, "uninstalled": state()}))
"""


def test_install_patches_v2_and_uninstall_restores_it(tmp_path):
    sdk_config = environ.write_sdk_config(tmp_path)  # TelemetryOptOut: true
    found = _child(
        V2_CHILD,
        tmp_path,
        SAGEMAKER_USER_CONFIG_OVERRIDE=str(sdk_config),
        SAGEMAKER_SUPPRESS_V2_WARNING="1",
    )
    assert found == {
        "installed": {
            "sagemaker.session.time": "ScaledClock",
            "resources.time": "ScaledClock",
            "validations of one config": 1,
            "invalid refused": 2,
            "telemetry opted out": True,
        },
        "uninstalled": {
            "sagemaker.session.time": "module",
            "resources.time": "module",
            "validations of one config": 2,
            "invalid refused": 2,
            "telemetry opted out": False,
        },
    }


# A made-up SDK whose next release moved two targets: one module lost its `time`, one is gone.
FAKE_SDK = {
    "fakesdk/__init__.py": "",
    "fakesdk/slow.py": "import time\n",
    "fakesdk/moved.py": "from time import sleep\n",
}
MOVED_CHILD = """
import json, sys, warnings
from localcloud import sdk_patches
from localcloud.sdk_patches import Target

sdk_patches.TARGETS.clear()
sdk_patches.TARGETS["v9"] = tuple(
    Target(f"fakesdk.{name}", "time", "clock") for name in ("slow", "moved", "gone")
)
sdk_patches.generation = lambda: "v9"
sdk_patches.ANCHOR = "fakesdk"
sdk_patches.install(50)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import fakesdk.slow, fakesdk.moved
    del sys.modules["fakesdk.moved"]
    import fakesdk.moved  # imported again: no second warning
print(json.dumps({
    "slow.time": type(fakesdk.slow.time).__name__,
    "moved.sleep": fakesdk.moved.sleep.__name__,
    "warnings": sorted(
        f"{w.category.__name__}: {w.message}".split(" (")[0] for w in caught
    ),
}))
"""


def test_a_moved_target_warns_once_by_name_and_the_import_still_works(tmp_path):
    for name, text in FAKE_SDK.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = _child(MOVED_CHILD, tmp_path, PYTHONPATH=f"{tmp_path}:{config.REPO_ROOT}")
    prefix = "SdkPatchWarning: localcloud cannot patch the SageMaker SDK's"
    assert found == {
        "slow.time": "ScaledClock",  # the control: the target still in place is patched
        "moved.sleep": "sleep",
        "warnings": [f"{prefix} fakesdk.gone.time", f"{prefix} fakesdk.moved.time"],
    }
