"""Archives in and out of a job: safe extraction of user code, model.tar.gz and output.tar.gz."""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path

from localcloud.jobs.container import ClientError


def _unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why a member could write outside the destination, or None when it is safe."""
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "'..' in its path"
    if member.issym() or member.islnk():
        target = member.linkname
        if target.startswith("/"):
            return "link to an absolute path"
        base = posixpath.dirname(name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if resolved == ".." or resolved.startswith("../"):
            return "link leaving the folder"
        return None
    if not (member.isfile() or member.isdir()):
        return "not a regular file or folder"
    return None


def safe_extract(archive: Path, dest: Path, label: str) -> list[str]:
    """Extract a tar(.gz) into dest after checking every member; raise before writing anything."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                reason = _unsafe_reason(member)
                if reason:
                    raise ClientError(
                        f"ClientError: The archive {label} contains an unsafe member "
                        f"{member.name!r} ({reason}); localcloud extracts only files inside the "
                        "target folder, so nothing was extracted."
                    )
            dest.mkdir(parents=True, exist_ok=True)
            # The data filter re-checks every member as it is written.
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ClientError(f"ClientError: Could not extract {label}: {exc}") from exc
    return [m.name for m in members]


def merged_files(roots: list[Path]) -> dict[str, Path]:
    """Relative name → file across several folders; a later folder wins on a clash."""
    files: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files[path.relative_to(root).as_posix()] = path
    return files


def write_tar_gz(files: dict[str, Path], dest: Path) -> Path:
    """A gzip tar of the given files at their relative names (an empty archive when none)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for name in sorted(files):
            tar.add(files[name], arcname=name, recursive=False)
    return dest


def merge_into_tar(roots: list[Path], dest: Path) -> tuple[Path, int]:
    """Merge the same folder of every host into one tar.gz (contract §3.1); returns file count."""
    files = merged_files(roots)
    return write_tar_gz(files, dest), len(files)
