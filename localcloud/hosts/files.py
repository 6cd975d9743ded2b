"""Files in and out of a host: user code, model.tar.gz/output.tar.gz, success and failure files.

The counterpart of toolkit files.py. What is packed (a deliberate choice; SageMaker's own
uploader is not documented on this): only regular files. Links inside the folder, to files or
folders, inside or outside it, are left out and reported; a folder that is itself a link (or lies
under one) fails the upload, since packing it would pack whatever the link names. Every file of a
host folder is reached through safepaths: the folder is the script's to change.
"""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from localcloud.hosts import safepaths
from localcloud.hosts.data import S3Access, parse_s3_uri
from localcloud.hosts.errors import ClientError
from localcloud.hosts.params import OPT_ML
from localcloud.hosts.process import LogSink


class ArtifactError(Exception):
    """Artifacts that cannot be packed; the manager reports it as an upload failure."""


def safe_extract(archive: Path, dest: Path, label: str) -> list[str]:
    """Extract a tar(.gz) into dest after checking every member; raise before writing anything."""
    try:
        return safepaths.extract_tar(archive, dest)
    except safepaths.UnsafeMember as exc:
        raise ClientError(
            f"ClientError: The archive {label} contains an unsafe member {exc.path!r} "
            f"({exc.why}); localcloud extracts only files inside the target folder, so nothing "
            "was extracted."
        ) from exc
    except (tarfile.TarError, OSError, safepaths.UnsafePath) as exc:
        raise ClientError(f"ClientError: Could not extract {label}: {exc}") from exc


def download_and_extract(s3: S3Access, uri: str, dests: list[Path], work_dir: Path) -> None:
    """Fetch the sourcedir archive at uri once and extract it into every dest folder."""
    if not uri.startswith("s3://"):
        raise ClientError(
            f"ClientError: sagemaker_submit_directory {uri!r} is not "
            "an S3 URI; localcloud fetches code from S3 only."
        )
    bucket, key = parse_s3_uri(uri)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        archive = Path(tmp) / "sourcedir.tar.gz"
        s3.download(bucket, key, archive)
        for dest in dests:
            safe_extract(archive, dest, uri)


def extract_local(root: Path, code: Path, submit: str) -> None:
    """Network isolation: sagemaker_submit_directory names an archive in one of root's channels."""
    relative = submit[len(OPT_ML) :].lstrip("/")
    data = "input/data/"
    try:
        if not relative.startswith(data):
            raise safepaths.UnsafePath(submit, "is not in /opt/ml/input/data")
        archive = safepaths.inside(root / "input" / "data", relative[len(data) :])
    except safepaths.UnsafePath as exc:
        raise ClientError(
            f"ClientError: sagemaker_submit_directory {submit!r} cannot be used: {exc.why}."
        ) from exc
    if not archive.is_file():
        raise ClientError(
            f"ClientError: sagemaker_submit_directory {submit!r} names no file: with network "
            "isolation the code archive must come in one of the job's channels (e.g. 'code')."
        )
    safe_extract(archive, code, submit)


# ------------------------------------------------------------- success and failure files


def opt_ml_reason(exc: Exception, host: str) -> str:
    """An error about a host path, with the path written as the script sees it (/opt/ml/…)."""
    if isinstance(exc, safepaths.UnsafePath) and exc.path.startswith(f"{host}/"):
        return f"/opt/ml/{exc.path[len(host) + 1 :]} {exc.why}"
    return str(exc)


def write_host_file(job_dir: Path, host: str, relative: str, text: str, log: LogSink) -> None:
    """Write a platform file of a host, never through a link the script left on the way."""
    try:
        safepaths.write_file(job_dir, relative, text.encode())
    except (OSError, safepaths.UnsafePath) as exc:
        shown = "/opt/ml/" + relative.split("/", 1)[1]
        log(host, f"localcloud: {shown} was not written: {opt_ml_reason(exc, host)}")


def write_success_file(job_dir: Path, host: str, log: LogSink) -> None:
    """The empty output/success the toolkit leaves when the entry point exits 0."""
    write_host_file(job_dir, host, f"{host}/output/success", "", log)


def write_failure_file(job_dir: Path, host: str, text: str, log: LogSink) -> None:
    """output/failure with the toolkit's failure text."""
    write_host_file(job_dir, host, f"{host}/output/failure", text, log)


def read_failure_file(job_dir: Path, host: str, limit: int, log: LogSink) -> str:
    """What the host wrote into output/failure ('' when nothing could be read)."""
    try:
        data = safepaths.read_regular(job_dir, f"{host}/output/failure", limit)
    except (OSError, safepaths.UnsafePath) as exc:
        log(host, f"localcloud: the failure file was not read: {opt_ml_reason(exc, host)}")
        data = None
    return (data or b"").decode("utf-8", "replace")


# ------------------------------------------------------------------------------- artifacts


@dataclass
class Folder:
    """The regular files of base/relative, found without following any link."""

    base: Path
    relative: str
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # links, fifos, devices: never packed


def scan(base: Path, relative: str) -> Folder:
    """List a folder beneath base; UnsafePath when it, or a folder on the way, is a link."""
    files, skipped = safepaths.regular_files(base, relative)
    return Folder(base, relative, files, skipped)


def merged_files(folders: list[Folder]) -> dict[str, tuple[Path, str]]:
    """Name in the archive → (base, path under base) over several folders; later ones win."""
    merged: dict[str, tuple[Path, str]] = {}
    for folder in folders:
        for name in folder.files:
            merged[name] = (folder.base, f"{folder.relative}/{name}" if folder.relative else name)
    return merged


def write_tar_gz(files: dict[str, tuple[Path, str]], dest: Path) -> int:
    """Write a gzip tar of the files (an empty archive when none); returns how many went in.

    Each file is opened without following links and checked to be regular, so one swapped for
    a link after the listing is left out rather than followed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with tarfile.open(dest, "w:gz") as tar:
        for name in sorted(files):
            base, relative = files[name]
            try:
                fd = safepaths.open_no_follow(base, relative, os.O_RDONLY | os.O_NONBLOCK)
            except (FileNotFoundError, safepaths.UnsafePath):
                continue  # gone, or swapped for a link since the listing
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                info = tar.gettarinfo(arcname=name, fileobj=handle)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, handle)
                count += 1
    return count


def merge_into_tar(roots: list[Path], dest: Path) -> tuple[Path, int]:
    """Merge the same folder of every host into one tar.gz (contract §3.1); returns file count."""
    folders = [scan(root.parent, root.name) for root in roots]
    return dest, write_tar_gz(merged_files(folders), dest)


def pack_hosts(job_dir: Path, hosts: list[str], folder: str, dest: Path, log: LogSink) -> Path:
    """One tar.gz of /opt/ml/<folder> merged over the hosts: regular files only.

    A link inside the folder is left out (and logged); the folder itself being a link (or
    under one) fails the upload rather than packing what the link names.
    """
    scanned = []
    for host in hosts:
        try:
            found = scan(job_dir, f"{host}/{folder}")
        except (OSError, safepaths.UnsafePath) as exc:
            raise ArtifactError(
                f"/opt/ml/{folder} on {host} could not be packed: "
                f"{opt_ml_reason(exc, host)}; localcloud packs only a real folder and follows no "
                "link out of it, so nothing was uploaded"
            ) from exc
        for name in found.skipped:
            log(
                host,
                f"localcloud: /opt/ml/{folder}/{name} is not uploaded: only regular files "
                "are packed (it is a link, fifo or device)",
            )
        scanned.append(found)
    write_tar_gz(merged_files(scanned), dest)
    return dest
