"""The routes: training jobs and SageMaker quotas answered here, everything else by moto."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Response

from localcloud import config
from localcloud.config import ServerSettings
from localcloud.errors import AwsError, unknown_operation
from localcloud.jobs.manager import JobManager
from localcloud.server import iam_api, logs_api, quotas_api, sagemaker_api
from localcloud.server.guard import HEALTH_PATH
from localcloud.shapes import service_model

StartResponse = Callable[..., Any]
# X-Amz-Target prefixes of the JSON-protocol services the course uses, and botocore's names.
INVOCATIONS = re.compile(r"/endpoints/[^/]+/invocations(-response-stream|-async)?")
JSON_TARGETS = {
    "SageMaker": "sagemaker",
    "ServiceQuotasV20190624": "service-quotas",
    "Logs_20140328": "logs",
}


def json_response(status: int, payload: dict[str, Any]) -> Response:
    """An AWS JSON-protocol answer."""
    return Response(
        json.dumps(payload),
        status,
        {"x-amzn-RequestId": str(uuid.uuid4())},
        content_type="application/x-amz-json-1.1",
    )


def _scope(environ: dict[str, Any]) -> list[str]:
    """The SigV4 credential scope (`Credential=KEY/date/region/service/aws4_request`)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    return auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")


def region_of(environ: dict[str, Any]) -> str:
    """The region the request was signed for."""
    scope = _scope(environ)
    return scope[2] if len(scope) > 3 else config.DEFAULT_REGION


def _signed_for(environ: dict[str, Any]) -> str:
    """The service the request was signed for ('' when none)."""
    scope = _scope(environ)
    return scope[3] if len(scope) > 3 else ""


def json_request(prefix: str, action: str, raw: bytes) -> dict[str, Any]:
    """The body of a JSON-protocol call, refused as the service refuses what it can't read."""
    if action not in service_model(JSON_TARGETS[prefix]).operation_names:
        raise unknown_operation(action)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AwsError("SerializationException", "The request body is not a JSON object")
    return body


class Router:
    """WSGI app: training jobs and SageMaker quotas to us, everything else to moto unchanged."""

    def __init__(
        self, moto_app: Any, manager: JobManager, settings: ServerSettings, logs: Any = None
    ) -> None:
        self.moto_app = moto_app
        self.manager = manager
        self.settings = settings
        self.logs = logs  # the training-job log group's store (logs_api); None: all to moto

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = self._answer(environ)
        if answer is None:
            return self.moto_app(environ, start_response)
        return answer(environ, start_response)

    def _answer(self, environ: dict[str, Any]) -> Response | None:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return json_response(200, self._health())
        if environ.get("PATH_INFO", "").startswith("/moto-api"):  # reset, seed, recorder...
            return json_response(
                404, {"__type": "UnknownOperationException", "message": "Not Found"}
            )
        if INVOCATIONS.fullmatch(environ.get("PATH_INFO", "")):  # sagemaker-runtime
            message = sagemaker_api.NO_HOSTING.format(action="InvokeEndpoint")
            return json_response(400, {"__type": "ValidationError", "message": message})
        if _signed_for(environ) == "iam" and "form" in environ.get("CONTENT_TYPE", ""):
            raw = self._read_body(environ)
            environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again if we pass it on
            params = iam_api.form(raw)
            return iam_api.answer(params) if iam_api.handles(params) else None
        prefix, _, action = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        if prefix not in JSON_TARGETS:
            return None
        raw = self._read_body(environ)
        environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again if we pass the call on
        try:
            body = json_request(prefix, action, raw)
        except AwsError as exc:
            return json_response(exc.status, exc.body())
        handler = self._handler(prefix, action, body)
        if handler is None:
            return None
        try:
            return json_response(200, handler(region_of(environ)))
        except AwsError as exc:
            return json_response(exc.status, exc.body())
        except Exception as exc:  # answer like the service rather than dropping the connection
            logging.getLogger("localcloud").exception("internal error")
            return json_response(500, {"__type": "InternalFailure", "message": str(exc)})

    def _health(self) -> dict[str, Any]:
        return {
            "service": "localcloud",
            "pid": os.getpid(),
            "home": str(self.settings.home),
            "notebook_instance": self.settings.notebook_instance,
        }

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return environ["wsgi.input"].read(length) if length else b""

    def _handler(
        self, prefix: str, action: str, body: dict[str, Any]
    ) -> Callable[[str], dict[str, Any]] | None:
        if prefix == "SageMaker" and sagemaker_api.handles(action, body):
            return lambda region: sagemaker_api.handle(
                self.manager, action, body, region, config.ACCOUNT_ID
            )
        if prefix == "ServiceQuotasV20190624" and quotas_api.handles(action, body):
            return lambda region: quotas_api.handle(action, body, region)
        if prefix == "Logs_20140328" and self.logs is not None and logs_api.handles(action, body):
            return lambda region: logs_api.handle(
                self.logs, action, body, region, config.ACCOUNT_ID
            )
        return None
