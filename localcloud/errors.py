"""AWS-shaped errors in the JSON form botocore parses: raised by jobs, answered by the server."""

from __future__ import annotations


class AwsError(Exception):
    """An error the server answers with `{"__type": code, "message": ...}`."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status

    def body(self) -> dict[str, str]:
        """The wire form; botocore reads `__type` and `message`/`Message`."""
        return {"__type": self.code, "message": self.message, "Message": self.message}


def validation(message: str) -> AwsError:
    """ValidationException, the service's answer to a malformed request."""
    return AwsError("ValidationException", message)


def not_found(message: str) -> AwsError:
    """ResourceNotFound as SageMaker spells it (no 'Exception' suffix)."""
    return AwsError("ResourceNotFound", message)


def in_use(message: str) -> AwsError:
    """ResourceInUse, e.g. a duplicate training job name."""
    return AwsError("ResourceInUse", message)


def limit_exceeded(message: str) -> AwsError:
    """ResourceLimitExceeded, a quota that would be exceeded."""
    return AwsError("ResourceLimitExceeded", message)


def unknown_operation(action: str) -> AwsError:
    """What the server says for an action it does not implement."""
    return AwsError("UnknownOperationException", f"Unknown operation {action}")
