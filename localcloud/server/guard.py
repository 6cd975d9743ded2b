"""The top of the WSGI chain: no browser, no foreign Host, nothing unsigned gets past it.

localcloud runs code on request, so it is as closed as a Jupyter server: a request that carries
an Origin or Sec-Fetch-* header (a web page), any OPTIONS (a CORS preflight), a Host other than
the loopback address and port it listens on (DNS rebinding), or no valid SigV4 signature made
with the state folder's credentials is answered with the service's error before any route sees it.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from botocore.credentials import Credentials
from werkzeug.wrappers import Response

from localcloud.credentials import RoleCredentials
from localcloud.server import sigv4
from localcloud.server.sigv4 import AuthFailure

HEALTH_PATH = "/localcloud/health"
MAX_BODY_BYTES = 16 * 1024 * 1024  # for JSON and query APIs; S3 bodies stream past unread
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_SIG_TEXT = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation "
    "for details."
)
_TOKEN_TEXT = "The security token included in the request is invalid."
_BROWSER_TEXT = "localcloud answers only its own SDK clients: browser requests are refused"
_HOST_TEXT = "localcloud answers only requests addressed to its loopback address and port"
# kind -> {protocol: (code, message, HTTP status)}; texts as the services answer them.
ERRORS: dict[str, dict[str, tuple[str, str, int]]] = {
    "missing": {
        "json": ("MissingAuthenticationTokenException", "Missing Authentication Token", 403),
        "query": ("MissingAuthenticationToken", "Request is missing Authentication Token", 403),
        "s3": ("AccessDenied", "Access Denied", 403),
    },
    "unknown_key": {
        "json": ("UnrecognizedClientException", _TOKEN_TEXT, 403),
        "query": ("InvalidClientTokenId", _TOKEN_TEXT, 403),
        "s3": (
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            403,
        ),
    },
    "bad_token": {
        "json": ("UnrecognizedClientException", _TOKEN_TEXT, 403),
        "query": ("InvalidClientTokenId", _TOKEN_TEXT, 403),
        "s3": ("InvalidToken", "The provided token is malformed or otherwise invalid.", 400),
    },
    "bad_signature": {
        "json": ("InvalidSignatureException", _SIG_TEXT, 403),
        "query": ("SignatureDoesNotMatch", _SIG_TEXT, 403),
        "s3": (
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            403,
        ),
    },
    "malformed": {
        "json": ("IncompleteSignatureException", "Authorization header is malformed", 403),
        "query": ("IncompleteSignature", "Authorization header is malformed", 403),
        "s3": ("AuthorizationHeaderMalformed", "The authorization header is malformed", 400),
    },
    "skewed": {
        "json": ("InvalidSignatureException", "Signature expired", 403),
        "query": ("SignatureDoesNotMatch", "Signature expired", 403),
        "s3": (
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            403,
        ),
    },
    "expired": {
        "json": ("InvalidSignatureException", "Signature expired", 403),
        "query": ("SignatureDoesNotMatch", "Signature expired", 403),
        "s3": ("AccessDenied", "Request has expired", 403),
    },
    "browser": {
        "json": ("AccessDeniedException", _BROWSER_TEXT, 403),
        "query": ("AccessDenied", _BROWSER_TEXT, 403),
        "s3": ("AccessDenied", _BROWSER_TEXT, 403),
    },
    "host": {
        "json": ("AccessDeniedException", _HOST_TEXT, 403),
        "query": ("AccessDenied", _HOST_TEXT, 403),
        "s3": ("AccessDenied", _HOST_TEXT, 403),
    },
    "too_large": {
        "json": ("SerializationException", "Request body too large", 413),
        "query": ("RequestEntityTooLarge", "Request body too large", 413),
        "s3": ("EntityTooLarge", "Request body too large", 413),
    },
}


def protocol_of(environ: dict[str, Any], service: str | None = None) -> str:
    """Which error dialect the caller parses: AWS JSON, the query protocol (IAM, STS) or S3."""
    if environ.get("HTTP_X_AMZ_TARGET") or "amz-json" in environ.get("CONTENT_TYPE", ""):
        return "json"
    if service in ("iam", "sts") or (
        service is None and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", "")
    ):
        return "query"
    return "s3" if service in (None, "s3") else "json"


def error_response(kind: str, protocol: str) -> Response:
    """The AWS-shaped answer for a refusal, in the caller's dialect."""
    code, message, status = ERRORS[kind][protocol]
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id, "x-amz-request-id": request_id}
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message})
        return Response(body, status, headers, content_type="application/x-amz-json-1.1")
    code, message = escape(code), escape(message)
    if protocol == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    else:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    return Response(body, status, headers, content_type="application/xml")


def allowed_hosts(port: int) -> frozenset[str]:
    """The Host values that name this server: loopback by address or name, and its port."""
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})


def _from_browser(environ: dict[str, Any]) -> bool:
    """An Origin header, or the Fetch Metadata (Sec-Fetch-*) current browsers add to every request.

    A no-cors GET carries no Origin; without the second test a page could still learn from
    success or failure that localcloud listens on a port.
    """
    return "HTTP_ORIGIN" in environ or any(key.startswith("HTTP_SEC_FETCH_") for key in environ)


class CredentialBook:
    """Secrets of the keys the server accepts: the state folder's, then those moto issued."""

    def __init__(self, ours: RoleCredentials, account_id: str) -> None:
        self.ours = ours
        self.account_id = account_id

    def lookup(self, key_id: str, token: str | None) -> Credentials:
        """The credentials for a key, or AuthFailure(unknown_key / bad_token)."""
        if key_id == self.ours.access_key_id:
            if token != self.ours.session_token:
                raise AuthFailure("bad_token")
            return Credentials(key_id, self.ours.secret_access_key, token)
        from moto.iam.access_control import CreateAccessKeyFailure, create_access_key

        headers = {"X-Amz-Security-Token": token} if token else {}
        try:
            found = create_access_key(self.account_id, "aws", key_id, headers)
        except CreateAccessKeyFailure as exc:
            raise AuthFailure(
                "bad_token" if exc.reason == "InvalidToken" else "unknown_key"
            ) from None
        return found.create_credentials()


class Guard:
    """WSGI middleware in front of every route, moto's and localcloud's alike."""

    def __init__(self, app: WSGIApp, book: CredentialBook, port: int) -> None:
        self.app = app
        self.book = book
        self.hosts = allowed_hosts(port)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        refusal = self._refusal(environ)
        if refusal is not None:
            kind, protocol = refusal
            return error_response(kind, protocol)(environ, start_response)
        return self.app(environ, start_response)

    def _refusal(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        if environ.get("REQUEST_METHOD") == "OPTIONS" or _from_browser(environ):
            return "browser", protocol_of(environ)
        if environ.get("HTTP_HOST", "").lower() not in self.hosts:
            return "host", protocol_of(environ)
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") == "GET":
            return None  # the one unsigned route: says only that localcloud serves this folder
        service = None
        try:
            signature = sigv4.read_signature(environ)
            service = signature.service
            body = None if service == "s3" else self._body(environ)
            sigv4.check_time(signature)
            credentials = self.book.lookup(signature.access_key_id, signature.token)
            sigv4.verify(environ, body, signature, credentials)
        except AuthFailure as failure:
            return failure.kind, protocol_of(environ, service)
        return None

    @staticmethod
    def _body(environ: dict[str, Any]) -> bytes:
        """Read the (small) body once and put it back for the route behind us."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise AuthFailure("malformed", "content length") from None
        if length > MAX_BODY_BYTES:
            raise AuthFailure("too_large")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body
