"""No web page can store data in localcloud, start a job through it, or read what it answers.

A hostile page on another 127.0.0.1 port, opened in headless Chromium, tries every request a page
can make without CORS' permission: a multipart S3 POST-object form, no-cors and cors fetches of
PutObject and CreateTrainingJob, a text/plain form whose body looks like JSON, and reads of the
health route and the bucket listing. The job it asks for would run the archive the real client
stored below, whose script writes a sentinel file: the same request sent by the signed client
does start that job and the sentinel appears (the positive control); the page's never do.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from _browser import WebDriver, headless_chromium
from _lc_jobs import unique, wait_for

from localcloud.testing import source_tar

pytestmark = pytest.mark.localcloud

SCRIPT_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310"
# argv carries the job's hyperparameters (`--sentinel PATH`): each job names its own file.
SCRIPT = b"""\
import pathlib, sys
args = sys.argv[1:]
pathlib.Path(args[args.index("--sentinel") + 1]).write_text("the page's code ran")
"""
ATTACK_KEYS = ("attack/form/sourcedir.tar.gz", "attack/put/sourcedir.tar.gz")
SOURCE_KEY = "control/sourcedir.tar.gz"

# What the page may get from each attempt: a refusal by the browser, or an answer it cannot open.
OUTCOMES = {
    "a_form_post_object": "submitted",
    "b_put_no_cors": "rejected",  # PUT is not allowed in no-cors mode: the browser refuses it
    "b_put_cors": "rejected",
    "c_create_job_cors": "rejected",
    "d_create_job_no_cors": "opaque",
    "e_form_text_plain": "submitted",
    "f_read_health": "rejected",
    "f_read_listing": "rejected",
    "f_read_health_no_cors": "opaque",
}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>loading</title></head><body>
<h1>Free GPU hours</h1>
<pre id="read"></pre>
<iframe name="sink-a" id="sink-a"></iframe>
<form id="form-a" method="POST" enctype="multipart/form-data" target="sink-a">
  <input type="hidden" name="key">
  <input type="hidden" name="Content-Type" value="application/gzip">
  <input type="file" name="file" id="file-a">
</form>
<iframe name="sink-e" id="sink-e"></iframe>
<form id="form-e" method="POST" enctype="text/plain" target="sink-e">
  <input type="hidden" id="json-e">
</form>
<script>
const C = __CONFIG__;
const results = {};
const bytes = Uint8Array.from(atob(C.archive), ch => ch.charCodeAt(0));
const TARGET = {"X-Amz-Target": "SageMaker.CreateTrainingJob"};

async function attempt(name, request) {
  try {
    const answer = await request();
    let text = null;
    try { text = await answer.text(); } catch (err) { text = "unreadable: " + err; }
    results[name] = {outcome: answer.type === "opaque" ? "opaque" : "readable",
                     type: answer.type, status: answer.status, text: text};
  } catch (err) {
    results[name] = {outcome: "rejected", error: String(err)};
  }
}

function submitted(name, form, frame) {
  return new Promise(done => {
    // an answer without a body (S3's 204) loads nothing: say so rather than hang
    setTimeout(() => { results[name] = results[name] || {outcome: "nothing loaded"}; done(); },
               10000);
    frame.addEventListener("load", () => {
      let seen = null;
      try { seen = frame.contentDocument && frame.contentDocument.body.innerText; }
      catch (err) { seen = null; }
      results[name] = {outcome: seen ? "readable" : "submitted", text: seen};
      done();
    }, {once: true});
    form.submit();
  });
}

async function run() {
  const formA = document.getElementById("form-a");
  formA.action = C.endpoint + "/" + C.bucket;
  formA.elements.key.value = C.formKey;
  const files = new DataTransfer();
  files.items.add(new File([bytes], "sourcedir.tar.gz", {type: "application/gzip"}));
  document.getElementById("file-a").files = files.files;
  const formE = document.getElementById("form-e");
  formE.action = C.endpoint + "/";
  const body = C.jobs.e;  // text/plain sends name=value: the JSON ends inside a padding string
  const field = document.getElementById("json-e");
  field.name = body.slice(0, -1) + ', "pad": "';
  field.value = '"}';
  const json11 = {"Content-Type": "application/x-amz-json-1.1"};
  await Promise.all([
    submitted("a_form_post_object", formA, document.getElementById("sink-a")),
    attempt("b_put_no_cors", () => fetch(C.endpoint + "/" + C.bucket + "/" + C.putKey,
      {method: "PUT", body: bytes, mode: "no-cors"})),
    attempt("b_put_cors", () => fetch(C.endpoint + "/" + C.bucket + "/" + C.putKey,
      {method: "PUT", body: bytes})),
    attempt("c_create_job_cors", () => fetch(C.endpoint + "/",
      {method: "POST", headers: {...TARGET, ...json11}, body: C.jobs.c})),
    attempt("d_create_job_no_cors", () => fetch(C.endpoint + "/",
      {method: "POST", mode: "no-cors", headers: {...TARGET, "Content-Type": "text/plain"},
       body: C.jobs.d})),
    submitted("e_form_text_plain", formE, document.getElementById("sink-e")),
    attempt("f_read_health", () => fetch(C.endpoint + "/localcloud/health")),
    attempt("f_read_listing", () => fetch(C.endpoint + "/" + C.bucket)),
    attempt("f_read_health_no_cors", () => fetch(C.endpoint + "/localcloud/health",
      {mode: "no-cors"})),
  ]);
  document.getElementById("read").textContent = Object.values(results)
    .filter(r => r.outcome === "readable").map(r => r.text).join("\\n");
  window.attackResults = results;
  document.title = "attack finished";
}
run();
</script></body></html>
"""


def job_request(name: str, bucket: str, sentinel: Path, role_arn: str) -> dict[str, Any]:
    """CreateTrainingJob of a script-mode job that runs the stored archive."""
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": SCRIPT_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "HyperParameters": {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/{SOURCE_KEY}"),
            "sentinel": json.dumps(str(sentinel)),
        },
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }


@pytest.fixture
def page_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """An HTTP server on another 127.0.0.1 port serving the pages put in its dict."""
    pages: dict[str, bytes] = {}

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium that records its network events (the performance log)."""
    with headless_chromium(tmp_path, logs=("browser", "performance")) as driver:
        yield driver


def network_answers(driver: WebDriver, endpoint: str) -> list[dict[str, Any]]:
    """Each request the page made to the endpoint: what went on the wire and what came back."""
    events: dict[str, dict[str, Any]] = {}
    for entry in driver.log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if "requestId" in params:
            events.setdefault(params["requestId"], {})[message["method"]] = params
    found = []
    for seen in events.values():
        request = seen.get("Network.requestWillBeSent", {}).get("request")
        if request is None or not request["url"].startswith(endpoint):
            continue
        sent = seen.get("Network.requestWillBeSentExtraInfo")  # the headers as sent, or None
        answer = seen.get("Network.responseReceivedExtraInfo")  # the raw answer, even if hidden
        failed = seen.get("Network.loadingFailed", {})
        found.append(
            {
                "method": request["method"],
                "path": urlsplit(request["url"]).path,
                "sent": sent is not None,
                "origin": (sent or {}).get("headers", {}).get("Origin"),
                "status": answer and answer["statusCode"],
                "headers": sorted(k.lower() for k in (answer or {}).get("headers", {})),
                "cors": (failed.get("corsErrorStatus") or {}).get("corsError"),
            }
        )
    return found


def raw_answer(endpoint: str, method: str, path: str, headers: dict[str, str]) -> Any:
    """One unsigned request over http.client: its status, headers and body."""
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        reply = conn.getresponse()
        body = reply.read()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, body
    finally:
        conn.close()


def test_a_hostile_page_cannot_store_run_or_read(
    localcloud_server: Any,
    page_server: tuple[str, dict[str, bytes]],
    browser: WebDriver,
    tmp_path: Path,
) -> None:
    s3, sm = localcloud_server.client("s3"), localcloud_server.client("sagemaker")
    endpoint, role = localcloud_server.endpoint, localcloud_server.role_arn
    bucket = unique("browser-attack")
    archive = source_tar({"train.py": SCRIPT.decode()})  # its train.py writes the sentinel
    # positive control: the real, signed client stores the archive and starts the job
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=SOURCE_KEY, Body=archive)
    sentinels = tmp_path / "sentinels"
    sentinels.mkdir()
    control = unique("control-job")
    sm.create_training_job(**job_request(control, bucket, sentinels / "control", role))

    page_url, pages = page_server
    suffix = unique("x")
    names = {step: f"attack-{step}-{suffix}" for step in "cde"}
    jobs = {
        step: json.dumps(job_request(name, bucket, sentinels / name, role))
        for step, name in names.items()
    }
    config = {
        "endpoint": endpoint,
        "bucket": bucket,
        "archive": base64.b64encode(archive).decode(),
        "formKey": ATTACK_KEYS[0],
        "putKey": ATTACK_KEYS[1],
        "jobs": jobs,
    }
    pages["/attack.html"] = PAGE.replace("__CONFIG__", json.dumps(config)).encode()
    browser.get(f"{page_url}/attack.html")
    wait_for(lambda: browser.js("return document.title") == "attack finished", timeout=60)
    results = browser.js("return window.attackResults")
    read = browser.js("return document.getElementById('read').textContent")
    answers = network_answers(browser, endpoint)

    done = wait_for(
        lambda: (
            (d := sm.describe_training_job(TrainingJobName=control))["TrainingJobStatus"]
            in ("Completed", "Failed", "Stopped")
            and d
        ),
        timeout=120,
    )
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    assert (sentinels / "control").read_text() == "the page's code ran"

    # nothing stored, nothing started, nothing ran
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert SOURCE_KEY in keys
    assert [k for k in keys if k.startswith("attack/")] == []
    assert sm.list_training_jobs(NameContains=suffix)["TrainingJobSummaries"] == []
    listed = sm.list_training_jobs(NameContains=control)["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == [control]
    assert sorted(p.name for p in sentinels.iterdir()) == ["control"]

    # nothing the page could read
    assert set(results) == set(OUTCOMES)
    assert {k: r["outcome"] for k, r in results.items()} == OUTCOMES, results
    assert read == ""
    assert results["d_create_job_no_cors"]["text"] == ""

    # what went on the wire: every request with an Origin refused 403, no origin ever allowed
    assert all(not h.startswith("access-control-") for a in answers for h in a["headers"]), answers
    seen = sorted(
        (a["method"], a["path"], a["sent"], bool(a["origin"]), a["status"], a["cors"] or "")
        for a in answers
    )
    preflight_failed = "PreflightMissingAllowOriginHeader"
    assert seen == sorted(
        [
            ("POST", f"/{bucket}", True, True, 403, ""),  # (a) the POST-object form
            ("OPTIONS", f"/{bucket}/{ATTACK_KEYS[1]}", True, True, 403, ""),  # (b) cors preflight
            ("PUT", f"/{bucket}/{ATTACK_KEYS[1]}", False, False, None, preflight_failed),
            ("OPTIONS", "/", True, True, 403, ""),  # (c) preflight
            ("POST", "/", False, False, None, preflight_failed),  # (c) never sent
            ("POST", "/", True, True, 403, ""),  # (d)
            ("POST", "/", True, True, 403, ""),  # (e)
            ("GET", "/localcloud/health", True, True, 403, "MissingAllowOriginHeader"),  # (f)
            ("GET", f"/{bucket}", True, True, 403, "MissingAllowOriginHeader"),  # (f)
            # a no-cors GET carries no Origin, but its Sec-Fetch-* headers get it refused too,
            # so a page cannot even tell from success or failure that localcloud listens here
            ("GET", "/localcloud/health", True, False, 403, ""),
        ]
    ), answers


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/", "POST", "content-type,x-amz-target"),  # CreateTrainingJob
        ("/some-bucket/sourcedir.tar.gz", "PUT", "content-type"),  # PutObject
    ],
)
def test_preflight_is_refused_without_cors_headers(
    localcloud_server: Any, path: str, method: str, headers: str
) -> None:
    endpoint = localcloud_server.endpoint
    host = urlsplit(endpoint).netloc
    origin = "http://127.0.0.1:9"  # any other page
    # positive control: the same raw client, without an Origin, reaches the one unsigned route
    status, _, body = raw_answer(endpoint, "GET", "/localcloud/health", {"Host": host})
    assert status == 200 and json.loads(body)["service"] == "localcloud"
    preflight = {
        "Host": host,
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }
    status, answer, body = raw_answer(endpoint, "OPTIONS", path, preflight)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    assert [h for h in answer if h.startswith("access-control-")] == []
    status, answer, body = raw_answer(
        endpoint, "GET", "/localcloud/health", {"Host": host, "Origin": origin}
    )
    assert status == 403 and b"AccessDenied" in body
    assert [h for h in answer if h.startswith("access-control-")] == []
