"""The one secret of a state folder: the course role's session credentials, made at first start.

Whoever can read `<state folder>/credentials.json` (mode 0600, in a 0700 folder) can use the server;
nobody else can. The file is never printed or logged; clients read it, the server registers it.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "credentials.json"
_KEY_ALPHABET = string.ascii_uppercase + "234567"  # the characters of real access key ids


@dataclass(frozen=True)
class RoleCredentials:
    """Session credentials of the course's execution role (an ASIA… key, as STS hands out)."""

    access_key_id: str
    secret_access_key: str
    session_token: str

    def as_env(self) -> dict[str, str]:
        """The AWS_* variables a child process signs its requests with."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def boto_session(self, region: str = "us-east-1") -> Any:
        """A boto3 session that signs with these credentials (for tests, benches, the server)."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            region_name=region,
        )

    def __repr__(self) -> str:  # never show the secret in a traceback or a log
        return f"RoleCredentials(access_key_id={self.access_key_id!r}, ...)"


def path(home: Path) -> Path:
    """Where a state folder keeps its credentials."""
    return home / FILE_NAME


def generate() -> RoleCredentials:
    """Fresh credentials shaped like STS's (ASIA + 16 characters, a 40-character secret)."""
    key = "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    return RoleCredentials(key, secrets.token_urlsafe(30)[:40], secrets.token_urlsafe(96))


def load(home: Path) -> RoleCredentials:
    """The state folder's credentials; OSError when they don't exist or can't be read."""
    data = json.loads(path(home).read_text())
    return RoleCredentials(data["AccessKeyId"], data["SecretAccessKey"], data["SessionToken"])


def load_or_create(home: Path) -> RoleCredentials:
    """The folder's credentials, generating and storing them (0600) the first time."""
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    try:
        return load(home)
    except FileNotFoundError:
        pass
    made = generate()
    payload = json.dumps(
        {
            "AccessKeyId": made.access_key_id,
            "SecretAccessKey": made.secret_access_key,
            "SessionToken": made.session_token,
        }
    ).encode()
    tmp = home / f".{FILE_NAME}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path(home))  # atomic, and never replaces credentials a client already holds
    except FileExistsError:  # another process made them first: theirs count
        return load(home)
    finally:
        tmp.unlink(missing_ok=True)
    return made
