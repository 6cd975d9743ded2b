"""Hyperparameters as the toolkit decodes, splits and passes them on (toolkit mapping.py)."""

from __future__ import annotations

import json
from typing import Any

from localcloud.hosts.params import RESERVED_HYPERPARAMETERS


def decode_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """JSON-decode each value, keeping the raw string when it is not JSON (as the toolkit does)."""
    decoded = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (ValueError, TypeError):
            decoded[key] = value
    return decoded


def split_hyperparameters(decoded: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(user hyperparameters, sagemaker_* ones): the script never sees the second kind."""
    user, sagemaker = {}, {}
    for key, value in decoded.items():
        if key in RESERVED_HYPERPARAMETERS or key.startswith("sagemaker_"):
            sagemaker[key] = value
        else:
            user[key] = value
    return user, sagemaker


def _arg_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin1")
    return str(value)


def to_cmd_args(hyperparameters: dict[str, Any]) -> list[str]:
    """Sorted `--key value` (or `-k value`) pairs, values as str() of the decoded JSON."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        name = _arg_text(key)
        args.append(("--" if len(name) > 1 else "-") + name if name else "")
        value = hyperparameters[key]
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(_arg_text(value))
    return args


def env_value(value: Any) -> str:
    """How the toolkit writes a value into an SM_* variable: str as is, else compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin1")
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
