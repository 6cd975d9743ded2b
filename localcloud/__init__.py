"""localcloud: the AWS APIs a SageMaker training course uses, answered offline on 127.0.0.1."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localcloud.client import Connection

__all__ = ["connect"]


def connect(home: Any = None, *, start: bool = True) -> Connection:
    """Wire this process to localcloud (see localcloud.client.connect)."""
    from localcloud.client import connect as _connect

    return _connect(home, start=start)
