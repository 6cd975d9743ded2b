"""The error the built-in XGBoost container reports for what its user can fix."""


class UserError(Exception):
    """A problem the user can fix (bad hyperparameter, channel or data), as the container says."""

    def __init__(self, message: str, caused_by: BaseException | None = None) -> None:
        if caused_by is not None:
            message = f"{message} (caused by {type(caused_by).__name__})"
        super().__init__(message)
