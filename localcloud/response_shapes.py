"""Answers checked against a botocore output shape, as an SDK reading them would need them.

The reverse of shapes.py: not what a service accepts, but whether what we send is what the
service's model says it sends. Checked: required members, JSON types as the JSON protocol carries
them (timestamps as epoch numbers), enums, nested structures, lists and maps, and members the
model does not know. Not checked: lengths, ranges and patterns, which the models state for
requests; the services answer outside them (OutputDataConfig.KmsKeyId is "" when none was set).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from botocore.model import Shape

from localcloud.shapes import Overlay, service_model

_INTEGERS = frozenset({"integer", "long"})
_REALS = frozenset({"float", "double"})


@functools.cache
def _answered(service: str) -> dict[str, dict[str, Any]]:
    """Where the service answers otherwise than its model says, as recorded responses show."""
    if service != "sagemaker":
        return {}
    describe = service_model("sagemaker").shape_for("DescribeTrainingJobResponse")
    # The model marks ModelArtifacts required, yet the service leaves it out until there are
    # artifacts: a recorded `describe-training-job` of an InProgress job (SecondaryStatus
    # Starting) has none, and the SDK's Estimator.model_data reads it only after the job ends.
    required = [m for m in describe.metadata.get("required", ()) if m != "ModelArtifacts"]
    return {"DescribeTrainingJobResponse": {"required": required}}


def check_answer(
    service: str, operation: str, answer: Any, overlay: Overlay | None = None
) -> list[str]:
    """Every way one operation's answer departs from its output shape; [] when it conforms.

    An operation without an output shape answers with an empty JSON object.
    """
    shape = service_model(service).operation_model(operation).output_shape
    if shape is None:
        return [] if answer == {} else [f"(answer): expected {{}} (no output), got {answer!r}"]
    return problems(shape, answer, {**_answered(service), **(overlay or {})})


def problems(shape: Shape, value: Any, overlay: Overlay | None = None) -> list[str]:
    """Every departure of `value` (a decoded JSON answer) from `shape`, each as 'path: what'."""
    found: list[str] = []
    _visit(shape, value, "", overlay or {}, found)
    return found


def _visit(shape: Shape, value: Any, path: str, overlay: Overlay, found: list[str]) -> None:
    where = path or "(answer)"
    if value is None:
        found.append(f"{where}: null (the services leave a member out rather than send null)")
        return
    kind = shape.type_name
    expected = _json_type(kind)
    if not _is(kind, value):
        found.append(f"{where}: expected {expected}, got {_json_name(value)} {value!r}")
        return
    meta: Mapping[str, Any] = {**shape.metadata, **overlay.get(shape.name, {})}
    if kind == "structure":
        _structure(shape, meta, value, path, overlay, found)
    elif kind == "list":
        for index, item in enumerate(value):
            _visit(shape.member, item, f"{path}[{index}]", overlay, found)
    elif kind == "map":
        for key, item in value.items():
            _visit(shape.key, key, f"{path}{{{key!r}}}", overlay, found)
            _visit(shape.value, item, f"{path}[{key!r}]", overlay, found)
    elif kind == "string" and meta.get("enum") and value not in meta["enum"]:
        found.append(f"{where}: {value!r} is not one of [{', '.join(meta['enum'])}]")


def _structure(
    shape: Shape,
    meta: Mapping[str, Any],
    value: dict[str, Any],
    path: str,
    overlay: Overlay,
    found: list[str],
) -> None:
    members = shape.members
    for name in meta.get("required", ()):
        if name not in value:
            found.append(f"{_join(path, name)}: missing (required by {shape.name})")
    for name, item in value.items():
        if name not in members:
            found.append(f"{_join(path, name)}: not a member of {shape.name}")
            continue
        _visit(members[name], item, _join(path, name), overlay, found)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _is(kind: str, value: Any) -> bool:
    """Whether a decoded JSON value is of the kind the JSON protocol uses for `kind`."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in _INTEGERS:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in _REALS or kind == "timestamp":  # timestamps travel as epoch seconds
        return number and math.isfinite(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "structure" or kind == "map":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    return isinstance(value, str)  # string, and blob (base64 text)


def _json_type(kind: str) -> str:
    names = {
        "structure": "an object",
        "map": "an object",
        "list": "an array",
        "boolean": "true or false",
        "timestamp": "epoch seconds (a number)",
        "blob": "base64 text",
    }
    if kind in _INTEGERS:
        return "a whole number"
    if kind in _REALS:
        return "a number"
    return names.get(kind, "a string")


def _json_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)
