"""localcloud.offline: loopback and local sockets pass, the rest is refused before it is sent."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from localcloud import offline

ROOT = Path(__file__).resolve().parents[2]
INET = SimpleNamespace(family=socket.AF_INET)
INET6 = SimpleNamespace(family=socket.AF_INET6)
UNIX = SimpleNamespace(family=socket.AF_UNIX)
PACKET = SimpleNamespace(family=getattr(socket, "AF_PACKET", 17))  # raw frames


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "::ffff:127.0.0.1", "localhost", "LOCALHOST.",
     "api.localhost", b"127.0.0.1"],
)  # fmt: skip
def test_loopback_hosts(host):
    assert offline.is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    ["192.0.2.1", "10.0.0.1", "0.0.0.0", "::", "::ffff:192.0.2.1", "128.0.0.1", "example.com",
     "localhost.example.com", "", None, 2130706433],
)  # fmt: skip
def test_hosts_beyond_loopback(host):
    assert not offline.is_loopback_host(host)


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("socket.connect", (INET, ("127.0.0.1", 80))),
        ("socket.connect", (INET6, ("::1", 80, 0, 0))),
        ("socket.connect", (UNIX, "/tmp/some.sock")),
        ("socket.connect", (UNIX, b"\0abstract")),
        ("socket.sendto", (INET, ("127.0.0.1", 53))),
        ("socket.sendmsg", (INET, None)),  # a connected socket: its connect was checked
        ("socket.getaddrinfo", ("localhost", 443, 0, 0, 0)),
        ("socket.getaddrinfo", ("127.0.0.1", 443, 0, 0, 0)),
        ("socket.getaddrinfo", ("192.0.2.1", 443, 0, 0, 0)),  # a literal: nothing is looked up
        ("socket.getaddrinfo", (None, 8080, 0, 0, 0)),
        ("socket.gethostbyname", ("localhost",)),
        ("socket.gethostbyaddr", ("127.0.0.1",)),
        ("socket.getnameinfo", (("127.0.0.1", 80),)),
        ("socket.bind", (INET, ("0.0.0.0", 0))),  # listening sends nothing
        ("open", ("/etc/hosts", "r", 0)),
    ],
)
def test_events_that_stay_on_the_machine_pass(event, args):
    assert offline.refusal(event, args) is None


@pytest.mark.parametrize(
    ("event", "args", "shown"),
    [
        ("socket.connect", (INET, ("192.0.2.1", 9)), "a connection to 192.0.2.1:9"),
        ("socket.connect", (INET, ("example.com", 443)), "a connection to example.com:443"),
        ("socket.connect", (INET, ("0.0.0.0", 80)), "a connection to 0.0.0.0:80"),
        ("socket.connect", (INET6, ("2001:db8::1", 443, 0, 0)), "to [2001:db8::1]:443"),
        ("socket.connect", (PACKET, ("eth0", 0)), "family"),
        ("socket.sendto", (INET, ("192.0.2.1", 53)), "sending to 192.0.2.1:53"),
        ("socket.sendmsg", (INET6, ("2001:db8::1", 53, 0, 0)), "sending to [2001:db8::1]:53"),
        (
            "socket.getaddrinfo",
            ("sm-pysdk-t-us-east-1.s3.us-east-1.amazonaws.com", 443, 0, 0, 0),
            "look up sm-pysdk-t-us-east-1.s3.us-east-1.amazonaws.com:443",
        ),
        ("socket.gethostbyname", ("example.com",), "look up example.com"),
        ("socket.gethostbyaddr", ("192.0.2.1",), "look up 192.0.2.1"),  # reverse DNS is a query
        ("socket.getnameinfo", (("192.0.2.1", 80),), "look up 192.0.2.1"),
    ],
)
def test_events_that_would_leave_the_machine_are_refused(event, args, shown):
    reason = offline.refusal(event, args)
    assert reason is not None and reason.startswith("localcloud is offline: refused ")
    assert shown in reason


def test_refusal_is_a_permission_error_naming_the_target():
    error = offline.OfflineError("localcloud is offline: refused a connection to 192.0.2.1:9")
    assert isinstance(error, OSError) and error.errno == errno.EPERM
    assert "192.0.2.1:9" in str(error)


CHILD = textwrap.dedent("""
    import json, socket, sys, tempfile, os
    from localcloud import offline

    def attempt(action):
        try:
            action()
        except offline.OfflineError as exc:
            return "refused: " + exc.strerror
        except OSError as exc:
            return "oserror: " + type(exc).__name__
        return "ok"

    def unix_roundtrip():
        path = os.path.join(tempfile.mkdtemp(), "s")
        with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
            server.bind(path)
            server.listen()
            client.connect(path)

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    far = lambda: socket.create_connection(("192.0.2.1", 9), timeout=0.5).close()
    near = lambda: socket.create_connection(("127.0.0.1", port), timeout=5).close()
    def udp(host):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"x", (host, port))
    results = {"first": offline.install(), "second": offline.install()}
    results.update(
        far=attempt(far),
        near=attempt(near),
        udp=attempt(lambda: udp("192.0.2.1")),
        udp_near=attempt(lambda: udp("127.0.0.1")),
        unix=attempt(unix_roundtrip),
        lookup_far=attempt(lambda: socket.getaddrinfo("offline-check.invalid", 443)),
        lookup_near=attempt(lambda: socket.getaddrinfo("localhost", port)),
        reverse_far=attempt(lambda: socket.gethostbyaddr("192.0.2.1")),
        name_far=attempt(lambda: socket.getnameinfo(("192.0.2.1", 9), 0)),
        name_near=attempt(lambda: socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)),
        installed=offline.installed(),
        port=port,
    )
    print(json.dumps(results))
""")  # fmt: skip


def test_installed_hook_refuses_far_addresses_and_keeps_loopback_working():
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["first"] is True and results["second"] is False and results["installed"]
    # positive controls: the same calls to loopback and AF_UNIX go through with the hook on
    assert results["near"] == "ok"
    assert results["udp_near"] == "ok"
    assert results["unix"] == "ok"
    assert results["lookup_near"] == "ok"
    assert results["name_near"] == "ok"
    refused, only = "refused: localcloud is offline: refused ", "; only loopback is allowed"
    assert results["far"] == refused + "a connection to 192.0.2.1:9" + only
    assert results["udp"] == refused + f"sending to 192.0.2.1:{results['port']}" + only
    assert results["lookup_far"].startswith(refused + "to look up offline-check.invalid:443")
    assert results["reverse_far"].startswith(refused + "to look up 192.0.2.1")
    assert results["name_far"].startswith(refused + "to look up 192.0.2.1")
