"""Keep a process on this machine: Python sockets may reach loopback and local sockets only.

`install()` adds an audit hook (PEP 578) that refuses, before anything is sent, a connect or
send to an address outside 127.0.0.0/8 and ::1, and a name lookup (DNS) of any name but
localhost. Every process localcloud starts or redirects installs it at interpreter start
(localcloud/_boot/sitecustomize.py). It sees what Python's `socket` module does; native code
that opens its own sockets (libzmq, gloo, a subprocess such as curl) is not covered.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from typing import Any

_AUDITED = frozenset(
    {
        "socket.connect",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
    }
)
_LOCAL_FAMILIES = frozenset({socket.AF_UNIX})
_INET_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})
_installed = False


class OfflineError(PermissionError):
    """What a refused connect or lookup raises (EPERM, as a firewall's reject rule would)."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EPERM, message)


def is_loopback_host(host: object) -> bool:
    """True for a loopback IP literal (127.0.0.0/8, ::1, ::ffff:127.x), localhost, *.localhost."""
    if isinstance(host, bytes | bytearray):
        host = bytes(host).decode("ascii", "replace")
    if not isinstance(host, str) or not host:
        return False
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _endpoint(host: object, port: object) -> str:
    if isinstance(host, bytes | bytearray):
        host = bytes(host).decode("ascii", "replace")
    host = f"[{host}]" if isinstance(host, str) and ":" in host else host
    return f"{host}:{port}"


def refusal(event: str, args: tuple[Any, ...]) -> str | None:
    """Why this audit event must not happen here, or None when it stays on the machine."""
    if event not in _AUDITED:
        return None
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[1]
        if address is None:  # sendmsg on a connected socket: its connect was checked
            return None
        family = getattr(sock, "family", None)
        if family in _LOCAL_FAMILIES:
            return None
        if family in _INET_FAMILIES and isinstance(address, tuple) and len(address) >= 2:
            if is_loopback_host(address[0]):
                return None
            target = _endpoint(address[0], address[1])
        else:
            target = f"{address!r} (address family {family!r})"
        verb = "a connection to" if event == "socket.connect" else "sending to"
        return f"localcloud is offline: refused {verb} {target}; only loopback is allowed"
    if event == "socket.getnameinfo":  # a reverse lookup of (host, port, ...)
        sockaddr = args[0]
        host = sockaddr[0] if isinstance(sockaddr, tuple) and sockaddr else sockaddr
        if is_loopback_host(host):
            return None
        return f"localcloud is offline: refused to look up {host!s}; only localhost resolves here"
    host = args[0]
    if host is None or host in ("", b""):  # no lookup: the wildcard or loopback address
        return None
    if is_loopback_host(host):
        return None
    if event != "socket.gethostbyaddr" and _is_ip_literal(host):  # a literal is not looked up
        return None
    shown = _endpoint(host, args[1]) if event == "socket.getaddrinfo" else host
    return f"localcloud is offline: refused to look up {shown}; only localhost resolves here"


def _is_ip_literal(host: object) -> bool:
    if isinstance(host, bytes | bytearray):
        host = bytes(host).decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).strip("[]"))
    except ValueError:
        return False
    return True


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not event.startswith("socket."):  # the hook sees every audited event: keep this cheap
        return
    reason = refusal(event, args)
    if reason is not None:
        raise OfflineError(reason)


def install() -> bool:
    """Refuse non-loopback sockets in this process from now on; False if already installed.

    An audit hook cannot be removed, so this lasts for the life of the process.
    """
    global _installed
    if _installed:
        return False
    sys.addaudithook(_hook)
    _installed = True
    return True


def installed() -> bool:
    """Whether install() ran in this process."""
    return _installed
