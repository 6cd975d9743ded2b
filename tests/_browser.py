"""Headless Chromium driven through chromedriver's W3C WebDriver HTTP API with urllib (no selenium).

Shared by the browser tests; installs the Debian packages `chromium` and `chromium-driver` when
they are missing and skips only when that is impossible.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
]


def ensure_chromium() -> None:
    """Install chromium + chromedriver from Debian when absent; skip only if that is impossible."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if not shutil.which("apt-get") or (sudo and not shutil.which("sudo")):
        pytest.skip("chromium/chromedriver missing and apt-get (as root) is unavailable")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium", "chromium-driver"]):
        done = subprocess.run(
            sudo + cmd,
            capture_output=True,
            text=True,
            timeout=1200,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:
            pytest.skip(f"could not install chromium: {' '.join(cmd)} -> {done.stderr[-500:]}")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("apt-get ran but /usr/bin/chromium or /usr/bin/chromedriver is still missing")


class WebDriver:
    """The few W3C WebDriver commands the tests need, over plain HTTP to chromedriver."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One WebDriver command; raises with the driver's message on an error status."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"{}").get("value")
        except urllib.error.HTTPError as err:
            raise AssertionError(f"WebDriver {method} {path}: {err.read()[:500]!r}") from err

    def start(self, logs: tuple[str, ...] = ("browser",)) -> None:
        """Open a headless Chromium recording the given logs (browser console, performance)."""
        caps = {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": str(CHROMIUM), "args": CHROME_ARGS},
            "goog:loggingPrefs": dict.fromkeys(logs, "ALL"),
        }
        value = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        self.session = value["sessionId"]

    def cmd(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A command inside the session."""
        return self.call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait until the page has loaded, however slow the machine is."""
        self.cmd("POST", "/url", {"url": url})
        # chromedriver can answer while the page is still "interactive" on a loaded machine
        deadline = time.monotonic() + timeout
        while self.js("return document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not finish loading in {timeout:.0f} s")
            time.sleep(0.1)

    def js(self, script: str) -> Any:
        """Run a script in the page and return its value."""
        return self.cmd("POST", "/execute/sync", {"script": script, "args": []})

    def log(self, kind: str) -> list[dict[str, Any]]:
        """Entries of a log (`browser`, `performance`) since the last call."""
        try:
            return self.cmd("POST", "/se/log", {"type": kind}) or []
        except AssertionError:
            return self.cmd("POST", "/log", {"type": kind}) or []

    def console(self) -> list[dict[str, Any]]:
        """Browser console entries since the last call (chromedriver's log extension)."""
        return self.log("browser")

    def screenshot(self, dest: Path) -> None:
        """Save the viewport as a PNG."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))

    def quit(self) -> None:
        """Close the browser."""
        if self.session:
            self.cmd("DELETE", "")
            self.session = ""


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def headless_chromium(log_dir: Path, logs: tuple[str, ...] = ("browser",)) -> Iterator[WebDriver]:
    """chromedriver + headless Chromium, torn down with everything they started."""
    ensure_chromium()
    port = free_port()
    log = (log_dir / "chromedriver.log").open("w")
    proc = subprocess.Popen(
        [str(CHROMEDRIVER), f"--port={port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    driver = WebDriver(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if driver.call("GET", "/status")["ready"]:
                    break
            except (urllib.error.URLError, ConnectionError, AssertionError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("chromedriver did not become ready")
            time.sleep(0.2)
        driver.start(logs)
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            # any browser process chromedriver left behind is in its process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
