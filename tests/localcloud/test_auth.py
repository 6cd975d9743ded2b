"""Only localcloud's own signed clients get in; each refusal beside the same request done right."""

from __future__ import annotations

import http.client
import json
import stat
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from localcloud import credentials

pytestmark = pytest.mark.localcloud

# What localcloud/config.py held before credentials moved into the state folder: anyone with the
# repository had them.
COMMITTED_KEY = ("ASIALOCALCLOUDCOURSE", "localcloudCourseRoleSecretNotARealKey000")
COMMITTED_TOKEN = "localcloud-course-role-session-token"
BUCKET = "auth-tests"


@pytest.fixture(scope="module")
def secret(localcloud_server: Any) -> credentials.RoleCredentials:
    return credentials.load(localcloud_server.home)


@pytest.fixture(scope="module")
def bucket(localcloud_server: Any) -> str:
    s3 = localcloud_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="known.txt", Body=b"known")
    return BUCKET


def _session(key: str, secret_key: str, token: str | None) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        region_name="us-east-1",
    )


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def _calls(session: boto3.session.Session, bucket: str) -> dict[str, Any]:
    """One call per wire protocol: AWS JSON (SageMaker, Logs), query (STS, IAM), S3."""
    return {
        "sagemaker": lambda: session.client("sagemaker").list_training_jobs(),
        "logs": lambda: session.client("logs").describe_log_groups(),
        "sts": lambda: session.client("sts").get_caller_identity(),
        "iam": lambda: session.client("iam").list_roles(),
        "s3": lambda: session.client("s3").get_object(Bucket=bucket, Key="known.txt"),
    }


def test_the_state_folders_credentials_work_for_every_protocol(secret, bucket):
    session = _session(secret.access_key_id, secret.secret_access_key, secret.session_token)
    for name, call in _calls(session, bucket).items():
        assert call()["ResponseMetadata"]["HTTPStatusCode"] == 200, name


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("committed", {"sagemaker": "UnrecognizedClientException", "sts": "InvalidClientTokenId"}),
        ("unknown", {"logs": "UnrecognizedClientException", "s3": "InvalidAccessKeyId"}),
        (
            "wrong_secret",
            {"sagemaker": "InvalidSignatureException", "iam": "SignatureDoesNotMatch"},
        ),
        ("wrong_secret_s3", {"s3": "SignatureDoesNotMatch", "logs": "InvalidSignatureException"}),
        ("wrong_token", {"sagemaker": "UnrecognizedClientException", "s3": "InvalidToken"}),
    ],
)
def test_foreign_credentials_get_the_services_errors(secret, bucket, label, expected):
    if label == "committed":
        session = _session(*COMMITTED_KEY, COMMITTED_TOKEN)
    elif label == "unknown":
        session = _session("ASIAUNKNOWNKEY123456", secret.secret_access_key, secret.session_token)
    elif label.startswith("wrong_secret"):
        session = _session(secret.access_key_id, "x" * 40, secret.session_token)
    else:
        session = _session(secret.access_key_id, secret.secret_access_key, "not-the-token")
    calls = _calls(session, bucket)
    for name, code in expected.items():
        assert _code(calls[name]) == code, name
    right = _session(secret.access_key_id, secret.secret_access_key, secret.session_token)
    for name in expected:  # the same calls, signed properly, succeed
        _calls(right, bucket)[name]()


def _send(
    endpoint: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    sign: Credentials | None = None,
    service: str = "sagemaker",
) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP request, optionally SigV4-signed; returns status, headers and body."""
    parts = urlsplit(endpoint)
    headers = {"Content-Length": str(len(body)), **(headers or {})}
    if sign is not None:
        request = AWSRequest(method=method, url=endpoint + path, data=body, headers=headers)
        SigV4Auth(sign, service, "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body or None)
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


def _creds(secret: credentials.RoleCredentials) -> Credentials:
    return Credentials(secret.access_key_id, secret.secret_access_key, secret.session_token)


JSON_LIST = {
    "X-Amz-Target": "SageMaker.ListTrainingJobs",
    "Content-Type": "application/x-amz-json-1.1",
}


def test_unsigned_requests_are_refused_before_anything_runs(localcloud_server, secret, bucket):
    endpoint = localcloud_server.endpoint
    status, _, body = _send(endpoint, "POST", "/", b"{}", JSON_LIST)
    assert status == 403
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    status, _, body = _send(endpoint, "PUT", f"/{bucket}/unsigned.txt", b"evil")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = _send(endpoint, "POST", "/", b"Action=GetCallerIdentity", form)
    assert status == 403 and b"<Code>MissingAuthenticationToken</Code>" in body
    assert (
        _code(lambda: localcloud_server.client("s3").head_object(Bucket=bucket, Key="unsigned.txt"))
        == "404"
    )
    status, _, body = _send(endpoint, "POST", "/", b"{}", JSON_LIST, sign=_creds(secret))
    assert status == 200 and "TrainingJobSummaries" in json.loads(body), body


def test_a_tampered_body_breaks_the_signature(localcloud_server, secret):
    def swap_body(request: Any, **_: Any) -> None:
        request.body = json.dumps({"MaxResults": 1}).encode()

    client = _session(secret.access_key_id, secret.secret_access_key, secret.session_token).client(
        "sagemaker"
    )
    client.meta.events.register("before-send.sagemaker.ListTrainingJobs", swap_body)
    assert _code(lambda: client.list_training_jobs(MaxResults=5)) == "InvalidSignatureException"
    client.meta.events.unregister("before-send.sagemaker.ListTrainingJobs", swap_body)
    assert "TrainingJobSummaries" in client.list_training_jobs(MaxResults=5)


def _with_header(name: str, value: str):
    def add(request: Any, **_: Any) -> None:
        request.headers[name] = value

    return add


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Origin", "http://127.0.0.1:8000"),
        ("Origin", "null"),
        ("Sec-Fetch-Mode", "no-cors"),
        ("Sec-Fetch-Site", "same-site"),
        ("Host", "attacker.example"),
    ],
)
def test_browser_and_rebinding_requests_are_refused_even_when_signed(
    localcloud_server, header, value
):
    client = localcloud_server.client("sagemaker")
    hook = _with_header(
        header, value if header == "Origin" else f"{value}:{_port(localcloud_server)}"
    )
    client.meta.events.register("before-send", hook)
    with pytest.raises(ClientError) as caught:
        client.list_training_jobs()
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    client.meta.events.unregister("before-send", hook)
    assert "TrainingJobSummaries" in client.list_training_jobs()


def _port(connection: Any) -> int:
    return int(urlsplit(connection.endpoint).port)


def test_loopback_by_name_is_a_valid_host(localcloud_server, secret):
    endpoint = f"http://localhost:{_port(localcloud_server)}"
    creds = _creds(secret)
    status, _, _ = _send(endpoint, "POST", "/", b"{}", JSON_LIST, sign=creds)
    assert status == 200
    headers = {**JSON_LIST, "Host": f"[::1]:{_port(localcloud_server)}"}
    status, _, _ = _send(localcloud_server.endpoint, "POST", "/", b"{}", headers, sign=creds)
    assert status == 200
    headers["Host"] = f"127.0.0.1:{_port(localcloud_server) + 1}"  # right address, other port
    status, _, body = _send(localcloud_server.endpoint, "POST", "/", b"{}", headers, sign=creds)
    assert status == 403 and json.loads(body)["__type"] == "AccessDeniedException"


def test_preflight_gets_no_cors_grant(localcloud_server, bucket):
    headers = {
        "Origin": "http://127.0.0.1:8000",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-amz-target,content-type",
    }
    status, reply_headers, _ = _send(
        localcloud_server.endpoint, "OPTIONS", f"/{bucket}/x", b"", headers
    )
    assert status == 403
    assert not any(name.lower().startswith("access-control-") for name in reply_headers)
    # a signed call from the real client carries no CORS grant either (moto's global CORS is off)
    reply = localcloud_server.client("s3").get_object(Bucket=bucket, Key="known.txt")
    assert not any(
        k.lower().startswith("access-control-") for k in reply["ResponseMetadata"]["HTTPHeaders"]
    )


@pytest.mark.parametrize("version", ["default", "s3v4"])
def test_presigned_urls_work_and_cannot_be_bent(localcloud_server, bucket, version):
    config = None if version == "default" else Config(signature_version="s3v4")
    s3 = localcloud_server.boto_session.client("s3", config=config)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "known.txt"})
    with urllib.request.urlopen(url, timeout=30) as reply:
        assert reply.read() == b"known"
    bent = url.replace("/known.txt", "/other.txt")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bent, timeout=30)
    assert caught.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in caught.value.read()


def test_request_bodies_that_are_not_json_and_unknown_operations(localcloud_server, secret):
    creds = _creds(secret)
    status, _, body = _send(
        localcloud_server.endpoint, "POST", "/", b"{not json", JSON_LIST, sign=creds
    )
    assert status == 400 and json.loads(body)["__type"] == "SerializationException"
    status, _, body = _send(
        localcloud_server.endpoint, "POST", "/", b"[1, 2]", JSON_LIST, sign=creds
    )
    assert status == 400 and json.loads(body)["__type"] == "SerializationException"
    unknown = {**JSON_LIST, "X-Amz-Target": "SageMaker.RunMyCode"}
    status, _, body = _send(localcloud_server.endpoint, "POST", "/", b"{}", unknown, sign=creds)
    assert status == 400 and json.loads(body)["__type"] == "UnknownOperationException"
    status, _, body = _send(localcloud_server.endpoint, "POST", "/", b"{}", JSON_LIST, sign=creds)
    assert status == 200


def test_the_secret_stays_in_its_file(localcloud_server, secret):
    home = localcloud_server.home
    assert stat.S_IMODE(credentials.path(home).stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("server.log", "server.port", "server.pid"):
        if (home / name).exists():
            assert secret.secret_access_key not in (home / name).read_text()
    assert secret.secret_access_key not in repr(secret)


def test_motos_own_control_routes_are_closed_even_to_signed_clients(localcloud_server, secret):
    creds = _creds(secret)
    for path in ("/moto-api/reset", "/moto-api/data.json", "/moto-api/seed?a=42"):
        status, _, _ = _send(localcloud_server.endpoint, "POST", path, b"", sign=creds)
        assert status == 404, path
    # what a reset would have wiped is still there
    assert localcloud_server.client("sts").get_caller_identity()["Arn"].endswith("/localcloud")
