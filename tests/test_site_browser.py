"""The rendered course site works in a real offline browser: pages, links, chart, clean console.

Builds a site from a tiny fake run (no real notebooks, no localcloud), serves it on 127.0.0.1 and
drives headless Chromium through chromedriver's W3C WebDriver HTTP API with urllib (no selenium).
Installs the Debian packages `chromium` and `chromium-driver` when they are missing.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlparse

import nbformat
import pandas as pd
import pytest
from _browser import WebDriver, headless_chromium

from course import ROOT
from course.site import render_site

SCREENSHOT = ROOT / "build" / "site-screenshot.png"
RESULTS_SCREENSHOT = ROOT / "build" / "site-results-screenshot.png"
# A 2×2 PNG, so a notebook page carries an inline image output like the real lessons do.
PNG_2X2 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAA"
    "AABJRU5ErkJggg=="
)


def fake_run(out: Path) -> None:
    """Two small executed notebooks, a run summary and a jobs table: what `course run` leaves."""
    (out / "notebooks").mkdir(parents=True)
    lessons = [
        (
            "00_setup",
            "# Setting up\n\nTeaching: 10 min\nExercises: 5 min\n\n## Questions\n"
            "- How do I reach `localcloud`?\n\n## Objectives\n- Create a bucket.\n",
        ),
        (
            "01_train",
            "# Training a model\n\n## Objectives\n- Start a training job.\n"
            "\n## Notes\nSee [the outline](../index.html).\n",
        ),
    ]
    for stem, header in lessons:
        nb = nbformat.v4.new_notebook()
        code = nbformat.v4.new_code_cell("print('accuracy', 0.81)", execution_count=1)
        code.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text="accuracy 0.81\n"),
            nbformat.v4.new_output(
                "display_data", data={"image/png": PNG_2X2, "text/plain": "<Figure>"}
            ),
        ]
        nb.cells = [nbformat.v4.new_markdown_cell(header), code]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nbformat.write(nb, out / "notebooks" / f"{stem}.ipynb")
    run = {
        "started": "2025-01-01T00:00:00+00:00",
        "fast": True,
        "kernel": "python3",
        "total_s": 12.5,
        "status": "ok",
        "notebooks": [
            {
                "stem": "00_setup",
                "wall_s": 2.0,
                "jobs": 0,
                "status": "ok",
                "executed": "notebooks/00_setup.ipynb",
                "error": None,
            },
            {
                "stem": "01_train",
                "wall_s": 10.5,
                "jobs": 3,
                "status": "ok",
                "executed": "notebooks/01_train.ipynb",
                "error": None,
            },
        ],
    }
    (out / "run.json").write_text(json.dumps(run))
    pd.DataFrame(
        {
            "job_name": ["titanic-xgb-1", "titanic-xgb-2", "titanic-xgb-3"],
            "notebook": ["01_train"] * 3,
            "instance_type": ["ml.m5.large", "ml.m5.large", "ml.m5.xlarge"],
            "instance_count": [1, 2, 1],
            "status": ["Completed"] * 3,
            "wall_seconds": [70.0, 65.0, 50.0],
            "training_seconds": [40.0, 30.0, 25.0],
            "billable_seconds": [40, 30, 25],
            "billed_instance_seconds": [40, 60, 25],
            "cost_usd": [0.0013, 0.0019, 0.0016],
            "test_accuracy": [0.81, 0.80, 0.82],
        }
    ).to_csv(out / "jobs.csv", index=False)


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake run's site, served over HTTP on 127.0.0.1."""
    out = tmp_path_factory.mktemp("course") / "build"
    fake_run(out)
    site = render_site(out).parent

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """chromedriver + headless Chromium, torn down with everything they started."""
    with headless_chromium(tmp_path_factory.mktemp("chromedriver")) as driver:
        yield driver


def http_status(url: str) -> int:
    """The HTTP status a link answers with."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_site_in_headless_chromium(site_url: str, browser: WebDriver) -> None:
    """Every page reachable from the index loads, links resolve, images load, console is clean."""
    index = urljoin(site_url, "index.html")
    todo, seen, errors = [index], set(), {}
    while todo:
        page = todo.pop(0)
        if page in seen:
            continue
        seen.add(page)
        browser.get(page)
        assert browser.js("return document.title"), f"{page} has no title"
        links = browser.js("return [...document.querySelectorAll('a[href]')].map(a => a.href)")
        assert index in links, f"{page} has no link back to the index"
        for link in links:
            target, fragment = urldefrag(link)
            if urlparse(target).netloc != urlparse(site_url).netloc:
                continue  # nothing outside the site is linked to be followed offline
            assert http_status(target) == 200, f"{page} links to {link}, which does not resolve"
            if target == page and fragment:
                found = browser.js(
                    f"return !!document.getElementById(decodeURIComponent({fragment!r}))"
                )
                assert found, f"{page} links to #{fragment}, which is not on the page"
            if target.endswith(".html"):
                todo.append(target)
        images = browser.js(
            "return [...document.images].map(i => [i.src.slice(0, 60), i.complete, i.naturalWidth])"
        )
        for src, complete, width in images:
            assert complete and width > 0, f"image {src} did not load on {page}"
        severe = [e for e in browser.console() if e.get("level") == "SEVERE"]
        if severe:
            errors[page] = severe
    assert not errors, f"browser console errors: {errors}"
    pages = {urlparse(p).path for p in seen}
    assert {
        "/index.html",
        "/results.html",
        "/notebooks/00_setup.html",
        "/notebooks/01_train.html",
    } <= pages

    browser.get(urljoin(site_url, "results.html"))
    assert browser.js("return document.getElementById('chart').naturalWidth") > 0
    rows = browser.js("return document.querySelectorAll('#jobs tbody tr').length")
    assert rows == 3
    wall = browser.js("return document.querySelector('#jobs tbody tr td:nth-child(5)').textContent")
    assert wall == "70.0"  # wall seconds (creation to end), not training seconds
    browser.screenshot(RESULTS_SCREENSHOT)

    browser.get(index)
    browser.screenshot(SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 1000

    # The console check above must be able to fail: an error logged now has to show up.
    browser.console()
    browser.js("console.error('course-site-selftest')")
    assert any("course-site-selftest" in e.get("message", "") for e in browser.console())
