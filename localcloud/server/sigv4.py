"""Signature checks of incoming requests, recomputed with botocore's own signers.

SigV4 in the Authorization header or a presigned query, and the SigV2 query that boto3's
`generate_presigned_url` still makes for S3 by default.

moto's `iam.access_control` does the same when its IAM auth is on, but it fails with a KeyError
on a request without an Authorization header or with a presigned URL, and answers JSON services
with query-protocol error codes; the signature arithmetic here is botocore's, as there.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.auth import HmacV1Auth, S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)  # SigV4's window for a signed request's X-Amz-Date
TIME_FORMAT = "%Y%m%dT%H%M%SZ"


class AuthFailure(Exception):
    """Why a request is refused; `kind` picks the service's error (see guard.py)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Signature:
    """What a request claims about its signer, read from its Authorization header or query."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    token: str | None
    presigned: bool
    expires_s: int | None = None
    v2: bool = False  # SigV2 presigned S3 URL: `date` holds its Expires (epoch seconds)


def _scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise AuthFailure("malformed", "credential scope")
    return parts[0], parts[1], parts[2], parts[3]


def read_signature(environ: dict[str, Any]) -> Signature:
    """The signature a request carries; AuthFailure("missing") when it carries none."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if header:
        algorithm, _, rest = header.partition(" ")
        if algorithm != ALGORITHM:
            raise AuthFailure("malformed", "algorithm")
        fields = dict(item.strip().partition("=")[::2] for item in rest.split(",") if "=" in item)
        if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
            raise AuthFailure("malformed", "fields")
        key, _, region, service = _scope(fields["Credential"])
        return Signature(
            access_key_id=key,
            date=environ.get("HTTP_X_AMZ_DATE", ""),
            region=region,
            service=service,
            signed_headers=tuple(fields["SignedHeaders"].split(";")),
            signature=fields["Signature"],
            token=environ.get("HTTP_X_AMZ_SECURITY_TOKEN"),
            presigned=False,
        )
    if "X-Amz-Signature" in query or "X-Amz-Credential" in query:
        one = {k: v[0] for k, v in query.items()}
        if one.get("X-Amz-Algorithm") != ALGORITHM:
            raise AuthFailure("malformed", "algorithm")
        key, _, region, service = _scope(one.get("X-Amz-Credential", ""))
        try:
            expires = int(one.get("X-Amz-Expires", "0"))
        except ValueError:
            raise AuthFailure("malformed", "expires") from None
        return Signature(
            access_key_id=key,
            date=one.get("X-Amz-Date", ""),
            region=region,
            service=service,
            signed_headers=tuple(one.get("X-Amz-SignedHeaders", "host").split(";")),
            signature=one.get("X-Amz-Signature", ""),
            token=one.get("X-Amz-Security-Token"),
            presigned=True,
            expires_s=expires,
        )
    if "AWSAccessKeyId" in query and "Signature" in query:
        one = {k: v[0] for k, v in query.items()}
        return Signature(
            access_key_id=one["AWSAccessKeyId"],
            date=one.get("Expires", ""),
            region="us-east-1",
            service="s3",
            signed_headers=(),
            signature=one["Signature"],
            token=one.get("x-amz-security-token"),
            presigned=True,
            v2=True,
        )
    raise AuthFailure("missing")


def check_time(signature: Signature, now: datetime | None = None) -> None:
    """Refuse a signature made too far from now, or a presigned URL past its expiry."""
    now = now or datetime.now(timezone.utc)
    if signature.v2:
        try:
            expires = datetime.fromtimestamp(int(signature.date), timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise AuthFailure("malformed", "expires") from None
        if now > expires:
            raise AuthFailure("expired")
        return
    try:
        signed_at = datetime.strptime(signature.date, TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise AuthFailure("malformed", "date") from None
    if signature.presigned:
        if now > signed_at + timedelta(seconds=signature.expires_s or 0):
            raise AuthFailure("expired")
    elif abs(now - signed_at) > MAX_SKEW:
        raise AuthFailure("skewed", signature.date)


def _header(environ: dict[str, Any], name: str) -> str | None:
    key = name.upper().replace("-", "_")
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return environ.get(key)
    return environ.get("HTTP_" + key)


def _raw_target(environ: dict[str, Any]) -> tuple[str, str]:
    """The path and query exactly as the client sent them (the signature covers those bytes)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        path, _, query = raw.partition("?")
        return path, query
    from urllib.parse import quote

    return quote(environ.get("PATH_INFO", "/")), environ.get("QUERY_STRING", "")


def _signer(signature: Signature) -> Callable[[Credentials, str, str], SigV4Auth]:
    if signature.service == "s3":
        return S3SigV4QueryAuth if signature.presigned else S3SigV4Auth
    return SigV4QueryAuth if signature.presigned else SigV4Auth


def expected_signature(
    environ: dict[str, Any], body: bytes | None, signature: Signature, credentials: Credentials
) -> str:
    """The signature the request would carry had it been signed with `credentials`."""
    if signature.v2:
        return _v2_query_signature(environ, signature, credentials)
    path, query = _raw_target(environ)
    if signature.presigned:
        query = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    headers = {}
    for name in signature.signed_headers:
        value = _header(environ, name)
        if value is None:
            raise AuthFailure("bad_signature", f"signed header {name} is missing")
        headers[name] = value
    host = headers.get("host") or environ.get("HTTP_HOST", "")
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"), url=url, headers=headers)
    request.data = body or b""
    request.context["timestamp"] = signature.date
    signer = _signer(signature)(credentials, signature.service, signature.region)
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


class _V2AtExpiry(HmacV1Auth):
    """botocore's SigV2 signer with the URL's own Expires where a Date would be."""

    def __init__(self, credentials: Credentials, expires: str) -> None:
        super().__init__(credentials)
        self._expires = expires

    def _get_date(self) -> str:
        return self._expires


_V2_AUTH_PARAMS = ("AWSAccessKeyId=", "Signature=", "Expires=", "x-amz-security-token=")


def _v2_query_signature(
    environ: dict[str, Any], signature: Signature, credentials: Credentials
) -> str:
    path, query = _raw_target(environ)
    kept = [p for p in query.split("&") if p and not p.startswith(_V2_AUTH_PARAMS)]
    headers = HTTPHeaders()
    for name in ("content-md5", "content-type"):
        value = parse_qs(query).get(name)
        if value:
            headers[name] = value[0]
    split = urlsplit(path + ("?" + "&".join(kept) if kept else ""))
    signer = _V2AtExpiry(credentials, signature.date)
    return signer.get_signature(environ.get("REQUEST_METHOD", "GET"), split, headers)


def verify(
    environ: dict[str, Any], body: bytes | None, signature: Signature, credentials: Credentials
) -> None:
    """Raise AuthFailure("bad_signature") unless the request was signed with `credentials`."""
    claimed = _header(environ, "x-amz-content-sha256")
    # only S3 may sign a payload hash without the server reading the payload here
    if (
        signature.service != "s3"
        and claimed
        and body is not None
        and claimed != hashlib.sha256(body).hexdigest()
    ):
        raise AuthFailure("bad_signature", "payload hash")
    wanted = expected_signature(environ, body, signature, credentials)
    if not hmac.compare_digest(wanted.encode(), signature.signature.encode()):
        raise AuthFailure("bad_signature")
