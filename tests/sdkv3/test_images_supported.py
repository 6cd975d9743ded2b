"""The images the course uses resolve with SDK v3's image_uris and are patched on the file's date.

helpers/aws_reference.json dates each image's end of patch; SDK v3 (sagemaker-core) decides
which versions exist. The notebooks' parameters cells must name versions both accept.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from sagemaker.core import image_uris

from helpers import reference

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
INSTANCE_TYPES = {"cpu": "ml.m5.large", "gpu": "ml.g4dn.xlarge"}
VERSION_NAMES = ("framework_version", "algorithm_version", "xgboost_version", "pytorch_version")
TABLE = reference.load_reference()
AS_OF = reference.as_of()


def training_uri(framework: str, version: str, instance_type: str, py_version: str | None) -> str:
    """The training image SDK v3 picks, or its ValueError for a version it does not know."""
    return image_uris.retrieve(
        "pytorch" if framework == "pytorch" else "xgboost",
        REGION,
        version=version,
        py_version=py_version,
        instance_type=instance_type,
        image_scope="training",
    )


def parameters(notebook: Path) -> dict[str, object]:
    """The literal assignments of a notebook's cell tagged 'parameters'."""
    found: dict[str, object] = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        for node in ast.parse("".join(cell["source"])).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    try:
                        found[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        continue  # an expression such as 2 * 60 * 60 is not a version
    return found


def image_settings(notebook: Path) -> list[dict[str, str]]:
    """[{framework, version, py_version?, instance_type?}] for each image a notebook's
    parameters pick: framework_version is PyTorch's beside a py_version, else XGBoost's."""
    params = parameters(notebook)
    pytorch_notebook = "py_version" in params or "pytorch" in notebook.stem
    found = []
    for name in VERSION_NAMES:
        if not isinstance(params.get(name), str):
            continue
        pytorch = name == "pytorch_version" or (name == "framework_version" and pytorch_notebook)
        settings = {"framework": "pytorch" if pytorch else "xgboost", "version": params[name]}
        if pytorch and "py_version" in params:
            settings["py_version"] = str(params["py_version"])
        if isinstance(params.get("instance_type"), str):
            settings["instance_type"] = str(params["instance_type"])
        found.append(settings)
    return found


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SETTINGS = {f"{nb.stem}:{s['framework']}": s for nb in NOTEBOOKS for s in image_settings(nb)}


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_chosen_xgboost_resolves_and_is_patched(kind: str) -> None:
    version = TABLE["chosen"]["xgboost"]
    uri = training_uri("xgboost", version, INSTANCE_TYPES[kind], None)
    assert uri.endswith(f"/sagemaker-xgboost:{version}")
    assert reference.image_support("xgboost", version) > AS_OF


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_chosen_pytorch_resolves_and_is_patched(kind: str) -> None:
    chosen = TABLE["chosen"]["pytorch"]
    version, py_version = chosen["framework_version"], chosen["py_version"]
    uri = training_uri("pytorch", version, INSTANCE_TYPES[kind], py_version)
    assert uri.endswith(f"/pytorch-training:{version}-{kind}-{py_version}")
    entry = reference.image_entry("pytorch", version)
    assert entry["py_version"] == py_version and kind in entry["processor"]
    assert reference.image_support("pytorch", version) > AS_OF


def test_old_or_mismatched_versions_are_caught() -> None:
    """Negative controls: what the checks above would refuse."""
    # PyTorch 2.1 still resolves, so only the support date tells it is out of patch
    old = training_uri("pytorch", "2.1", INSTANCE_TYPES["cpu"], "py310")
    assert old.endswith("/pytorch-training:2.1-cpu-py310")
    assert reference.image_support("pytorch", "2.1") < AS_OF
    assert reference.image_support("xgboost", "3.0-5") < AS_OF
    chosen = TABLE["chosen"]["pytorch"]
    with pytest.raises(ValueError, match="Unsupported Python version"):
        training_uri("pytorch", chosen["framework_version"], INSTANCE_TYPES["cpu"], "py310")
    with pytest.raises(ValueError, match="Unsupported xgboost version"):
        training_uri("xgboost", "9.9-9", INSTANCE_TYPES["cpu"], None)


def test_the_notebooks_parameters_are_read() -> None:
    """The notebook check below is not vacuous: both frameworks' notebooks are found."""
    frameworks = {s["framework"] for s in SETTINGS.values()}
    assert frameworks == {"xgboost", "pytorch"}, SETTINGS
    assert all(s["framework"] != "pytorch" or "py_version" in s for s in SETTINGS.values())
    assert "05_pytorch_cpu:pytorch" in SETTINGS and "03_builtin_xgboost:xgboost" in SETTINGS


@pytest.mark.parametrize("stem", sorted(SETTINGS))
def test_every_version_a_notebook_sets_is_supported(stem: str) -> None:
    """stem is 'notebook:framework'."""
    settings = SETTINGS[stem]
    framework, version = settings["framework"], settings["version"]
    entry = reference.image_entry(framework, version)
    assert reference.image_support(framework, version) > AS_OF, f"{stem}: {framework} {version}"
    if framework == "pytorch":
        assert settings["py_version"] == entry["py_version"], stem
    kinds = (
        INSTANCE_TYPES.values() if "instance_type" not in settings else [settings["instance_type"]]
    )
    for instance_type in kinds:
        training_uri(framework, version, instance_type, settings.get("py_version"))
