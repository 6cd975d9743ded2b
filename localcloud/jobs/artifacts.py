"""Archives in and out of a job: safe extraction of user code, model.tar.gz and output.tar.gz.

What is packed (a deliberate choice; SageMaker's own uploader is not documented on this): only
regular files. Links inside the folder, to files or folders, inside or outside it, are left out
and reported; a folder that is itself a link (or lies under one) fails the upload, since packing
it would pack whatever the link names.
"""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from localcloud.jobs import safepaths
from localcloud.jobs.container import ClientError


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
