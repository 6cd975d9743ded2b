"""The offset-token pagination our list actions share (the token is the next item's index)."""

from __future__ import annotations

from typing import Any


def page(items: list[Any], body: dict[str, Any], key: str, default_size: int) -> dict[str, Any]:
    """One page of items under `key`, with NextToken only when more items follow."""
    start = int(body.get("NextToken") or 0)
    size = int(body.get("MaxResults") or default_size)
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out
