"""Why a host failed: the job's refusal and the toolkit's failure text (toolkit errors.py)."""

from __future__ import annotations

import builtins

from localcloud.hosts.image_packages import missing_package_reason


class ClientError(Exception):
    """A job that cannot run as requested; its text becomes the FailureReason as is."""


def _error_markers() -> tuple[str, ...]:
    """Names whose appearance in a line starts the captured ErrorMessage, as in the toolkit."""
    skip = {
        "SystemExit",
        "KeyboardInterrupt",
        "GeneratorExit",
        "StopIteration",
        "StopAsyncIteration",
        "BaseExceptionGroup",
        "ExceptionGroup",
    }
    names = [
        n
        for n, obj in vars(builtins).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and not issubclass(obj, Warning)
        and n not in skip
    ]
    return (
        *names,
        "Invalidrequirement",
        "ResourceExhaustedError",
        "OutOfRangeError",
        "InvalidArgumentError",
        "mpirun.real",
        "ORTE",
        "ExecuteUserScriptError",
    )


ERROR_MARKERS = _error_markers()


class ErrorCapture:
    """Keeps stdout and stderr from the first line naming an exception class, per stream."""

    def __init__(self) -> None:
        self._lines: dict[bool, list[str]] = {False: [], True: []}

    def feed(self, line: str, is_stderr: bool) -> None:
        """Keep the line if this stream has already shown an error marker (or this line does)."""
        kept = self._lines[is_stderr]
        if kept or any(marker in line for marker in ERROR_MARKERS):
            kept.append(line.strip(" :\n") + "\n")

    def error_message(self) -> str:
        """The toolkit's ErrorMessage: stdout part then stderr part, repeated lines removed."""
        joined = " ".join(" ".join(self._lines[s]) for s in (False, True))
        return "\n".join(dict.fromkeys(joined.split("\n"))).strip()


def failure_text(
    exit_code: int, error_message: str, command: str, *, kind: str | None = None
) -> str:
    """The failure file the toolkit writes when the entry point exits non-zero."""
    # with the image's kind, a package only the image ships gets one line (the log has the rest)
    if exit_code != 137:
        reason = missing_package_reason(kind, error_message)
        if reason is not None:
            return reason
    lines = ["ExecuteUserScriptError:", f"ExitCode {exit_code}", f'ErrorMessage "{error_message}"']
    if exit_code == 137:
        lines.append('ExtraInfo "OutOfMemory: Process killed by SIGKILL (signal 9)"')
    lines.append(f'Command "{command}"')
    return "\n".join(lines).strip()
