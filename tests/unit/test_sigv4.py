"""The server's signature checks and the state folder's secret, without a server."""

from __future__ import annotations

import io
import stat
from datetime import datetime, timedelta, timezone

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localcloud import credentials
from localcloud.server import guard, sigv4
from localcloud.server.sigv4 import AuthFailure

CREDS = Credentials("ASIAEXAMPLEEXAMPLE12", "s" * 40, "token")
HOST = "127.0.0.1:20001"


def _environ(request: AWSRequest, body: bytes = b"") -> dict:
    """The WSGI environ a server sees for a prepared botocore request."""
    prepared = request.prepare()
    path, _, query = prepared.url.split(HOST, 1)[1].partition("?")
    environ = {
        "REQUEST_METHOD": prepared.method,
        "RAW_URI": path + ("?" + query if query else ""),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in prepared.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    environ.setdefault("HTTP_HOST", HOST)
    return environ


def _signed(service: str = "sagemaker", body: bytes = b"{}", path: str = "/") -> dict:
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}{path}",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "Host": HOST},
    )
    (S3SigV4Auth if service == "s3" else SigV4Auth)(CREDS, service, "eu-west-1").add_auth(request)
    return _environ(request, body)


def test_a_signed_request_verifies_and_a_changed_one_does_not():
    environ = _signed()
    signature = sigv4.read_signature(environ)
    assert (signature.access_key_id, signature.region, signature.service) == (
        CREDS.access_key,
        "eu-west-1",
        "sagemaker",
    )
    sigv4.verify(environ, b"{}", signature, CREDS)
    with pytest.raises(AuthFailure) as caught:
        sigv4.verify(environ, b'{"MaxResults": 1}', signature, CREDS)
    assert caught.value.kind == "bad_signature"
    other = Credentials(CREDS.access_key, "t" * 40, CREDS.token)
    with pytest.raises(AuthFailure):
        sigv4.verify(environ, b"{}", signature, other)


def test_a_changed_path_breaks_an_s3_signature():
    environ = _signed("s3", b"", "/bucket/key.txt")
    signature = sigv4.read_signature(environ)
    sigv4.verify(environ, None, signature, CREDS)
    environ["RAW_URI"] = "/bucket/other.txt"
    with pytest.raises(AuthFailure):
        sigv4.verify(environ, None, signature, CREDS)


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (None, "missing"),
        ("AWS AKIA:abc", "malformed"),
        ("AWS4-HMAC-SHA256 Credential=K/20261201/us-east-1/s3/aws4_request", "malformed"),
        ("AWS4-HMAC-SHA256 Credential=K/x, SignedHeaders=host, Signature=a", "malformed"),
    ],
)
def test_missing_and_malformed_authorization(header, kind):
    environ = {"HTTP_HOST": HOST, "REQUEST_METHOD": "GET"}
    if header:
        environ["HTTP_AUTHORIZATION"] = header
    with pytest.raises(AuthFailure) as caught:
        sigv4.read_signature(environ)
    assert caught.value.kind == kind


def test_signatures_too_far_from_now_and_expired_presigned_urls():
    signature = sigv4.read_signature(_signed())
    signed_at = datetime.strptime(signature.date, sigv4.TIME_FORMAT).replace(tzinfo=timezone.utc)
    sigv4.check_time(signature, signed_at + timedelta(minutes=14))
    with pytest.raises(AuthFailure) as caught:
        sigv4.check_time(signature, signed_at + timedelta(minutes=16))
    assert caught.value.kind == "skewed"
    presigned = sigv4.Signature(
        "K", signature.date, "us-east-1", "s3", ("host",), "x", None, True, 60
    )
    sigv4.check_time(presigned, signed_at + timedelta(seconds=59))
    with pytest.raises(AuthFailure) as caught:
        sigv4.check_time(presigned, signed_at + timedelta(seconds=61))
    assert caught.value.kind == "expired"


@pytest.mark.parametrize("protocol", ["json", "query", "s3"])
def test_every_refusal_has_an_answer_in_every_dialect(protocol):
    for kind in guard.ERRORS:
        response = guard.error_response(kind, protocol)
        code = guard.ERRORS[kind][protocol][0]
        assert code.encode() in response.get_data()
        assert response.status_code in (400, 403, 413)


def test_credentials_are_made_once_private_and_reused(tmp_path):
    home = tmp_path / "state"
    first = credentials.load_or_create(home)
    assert first.access_key_id.startswith("ASIA") and len(first.access_key_id) == 20
    assert len(first.secret_access_key) == 40
    assert stat.S_IMODE(credentials.path(home).stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert credentials.load_or_create(home) == first == credentials.load(home)
    assert credentials.load_or_create(tmp_path / "other") != first
    assert first.secret_access_key not in repr(first)
    assert list(home.iterdir()) == [credentials.path(home)]  # no temporary file left
