"""Paths a request or a training script decides, proven to stay inside their folder before use.

Every name here is relative to a trusted root (a job folder, a host's code folder). Folders are
opened one component at a time relative to the previous one with O_NOFOLLOW, so neither a `..`,
an absolute name, nor a symbolic link placed on the way (even while we work) can lead outside.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINK_HOPS = 40  # what Linux allows when resolving a path


class UnsafePath(Exception):
    """A path that would leave its folder, pass through a link, or is not what was expected."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path!r} {why}")
        self.path = path
        self.why = why


def components(relative: str) -> list[str]:
    """The plain names of a relative path ('.' and empty ones dropped); refuse '/…' and '..'."""
    text = str(relative)
    if text.startswith("/"):
        raise UnsafePath(text, "is an absolute path")
    if "\0" in text:
        raise UnsafePath(text, "contains a NUL character")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(text, "has a '..' component")
    return parts


def inside(root: Path, relative: str) -> Path:
    """root/relative, proven inside root: no '..', not absolute, no link among what exists."""
    parts = components(relative)
    path = Path(root)
    for depth, part in enumerate(parts, 1):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            break  # nothing further exists yet, so nothing further can be a link
        if stat.S_ISLNK(mode):
            raise UnsafePath("/".join(parts[:depth]), "is a symbolic link")
        if depth < len(parts) and not stat.S_ISDIR(mode):
            raise UnsafePath("/".join(parts[:depth]), "is not a folder")
    return Path(root, *parts)


def _refusal(dir_fd: int, name: str, shown: str, exc: OSError) -> UnsafePath | OSError:
    """Why opening `name` with O_NOFOLLOW failed: a link, a non-folder, or the OS error itself."""
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
        return exc
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return exc
    if stat.S_ISLNK(mode):
        return UnsafePath(shown, "is a symbolic link")
    return UnsafePath(shown, "is not a folder")


@contextlib.contextmanager
def open_dir(root: Path, relative: str = "", *, create: bool = False) -> Iterator[int]:
    """A descriptor of the folder root/relative reached without following any link."""
    parts = components(relative)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root is trusted
    try:
        for depth, part in enumerate(parts, 1):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _refusal(fd, part, "/".join(parts[:depth]), exc) from exc
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def make_dirs(root: Path, relative: str) -> None:
    """mkdir -p root/relative, refusing to pass through a link on the way."""
    with open_dir(root, relative, create=True):
        pass


def _split_last(relative: str) -> tuple[str, str]:
    parts = components(relative)
    if not parts:
        raise UnsafePath(relative, "names the folder itself, not an entry in it")
    return "/".join(parts[:-1]), parts[-1]


def open_no_follow(
    root: Path, relative: str, flags: int, mode: int = 0o644, *, create_parents: bool = False
) -> int:
    """os.open of root/relative where no component, the last included, may be a link."""
    parent, name = _split_last(relative)
    with open_dir(root, parent, create=create_parents) as dir_fd:
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        except OSError as exc:
            raise _refusal(dir_fd, name, relative, exc) from exc


def read_regular(root: Path, relative: str, limit: int) -> bytes | None:
    """Up to `limit` bytes of a regular file (None when absent); a link or fifo is refused."""
    try:
        fd = open_no_follow(root, relative, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(relative, "is not a regular file")
        return handle.read(limit)


def write_file(root: Path, relative: str, data: bytes, *, create_parents: bool = False) -> None:
    """Write a regular file; a link already at that name is replaced, never written through."""
    parent, name = _split_last(relative)
    with open_dir(root, parent, create=create_parents) as dir_fd:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=dir_fd)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
        except OSError as exc:
            raise _refusal(dir_fd, name, relative, exc) from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def copy_file(source: Path, root: Path, relative: str) -> None:
    """Copy a file we own to root/relative, creating the folders on the way inside root."""
    fd = open_no_follow(root, relative, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, create_parents=True)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out)


def remove(root: Path, relative: str) -> None:
    """Unlink root/relative if it is there, without following a link on the way."""
    parent, name = _split_last(relative)
    with contextlib.suppress(FileNotFoundError), open_dir(root, parent) as dir_fd:
        os.unlink(name, dir_fd=dir_fd)


def list_entries(root: Path, relative: str = "") -> list[str]:
    """Names in the folder root/relative (reached without following links)."""
    with open_dir(root, relative) as dir_fd:
        return os.listdir(dir_fd)


def regular_files(root: Path, relative: str) -> tuple[list[str], list[str]]:
    """(regular files, everything else) under root/relative, as names relative to that folder.

    Nothing is followed: a link (to a file or a folder), a fifo or a device lands in the second
    list. An absent folder has neither; a link or file in the folder's place raises UnsafePath.
    """
    files: list[str] = []
    skipped: list[str] = []
    with contextlib.ExitStack() as stack:
        try:
            top = stack.enter_context(open_dir(root, relative))
        except FileNotFoundError:
            return [], []
        for folder, dirs, names, dir_fd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
            for name in (*dirs, *names):
                try:
                    mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
                except FileNotFoundError:
                    continue  # gone while we looked
                rel = os.path.normpath(os.path.join(folder, name))
                if stat.S_ISREG(mode):
                    files.append(rel)
                elif not stat.S_ISDIR(mode):
                    skipped.append(rel)
    return sorted(files), sorted(skipped)


# ---------------------------------------------------------------------- archive extraction


class UnsafeMember(UnsafePath):
    """An archive member that would be written, or would point, outside the destination."""


class _Tree:
    """What the destination holds once the members so far are written (names as tuples)."""

    def __init__(self) -> None:
        self.kinds: dict[tuple[str, ...], str] = {(): "dir"}  # "dir", "file" or "link"
        self.links: dict[tuple[str, ...], str] = {}

    def resolve(self, start: tuple[str, ...], target: str) -> tuple[str, ...] | None:
        """Where `target`, read in folder `start`, really leads (realpath); None: outside."""
        resolved = list(start)
        todo = target.split("/")
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    return None
                resolved.pop()
                continue
            here = (*resolved, part)
            if here in self.links:
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    return None
                link = self.links[here]
                if link.startswith("/"):
                    return None
                todo = link.split("/") + todo  # relative to the link's own folder: `resolved`
                continue
            resolved.append(part)
        return tuple(resolved)

    def add(self, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        """Record one member, refusing anything that writes through or replaces a link."""
        for depth in range(1, len(parts)):
            above = parts[:depth]
            kind = self.kinds.get(above)
            if kind == "link":
                raise UnsafeMember(member.name, f"would be written through the link {above[-1]!r}")
            if kind == "file":
                raise UnsafeMember(member.name, f"would be written inside the file {above[-1]!r}")
            self.kinds.setdefault(above, "dir")
        kind = "dir" if member.isdir() else "file" if member.isreg() else "link"
        if member.islnk():
            try:
                source = tuple(components(member.linkname))
            except UnsafePath as exc:
                raise UnsafeMember(member.name, f"is a hard link whose target {exc.why}") from None
            if self.kinds.get(source) != "file":
                raise UnsafeMember(member.name, "is a hard link to no earlier file of the archive")
            kind = "file"
        earlier = self.kinds.get(parts)
        if earlier is not None and (earlier != kind or kind == "link"):
            raise UnsafeMember(member.name, f"replaces an earlier {earlier} of the same name")
        if member.issym():
            if self.resolve(parts[:-1], member.linkname) is None:
                raise UnsafeMember(member.name, "is a link that leads outside the folder")
            self.links[parts] = member.linkname
        self.kinds[parts] = kind

    def check_links(self) -> None:
        """Every link, read in the finished tree (later members can change where it leads)."""
        for parts, target in self.links.items():
            if self.resolve(parts[:-1], target) is None:
                raise UnsafeMember("/".join(parts), "is a link that leads outside the folder")


def _plan(members: list[tarfile.TarInfo], dest: Path) -> list[tuple[tarfile.TarInfo, list[str]]]:
    """Each member as it will be written (data filter applied) with its plain path; or raise."""
    tree = _Tree()
    plan = []
    for member in members:
        if member.name.startswith("/"):
            raise UnsafeMember(member.name, "has an absolute path")
        if member.issym() and member.linkname.startswith("/"):
            raise UnsafeMember(member.name, "is a link to an absolute path")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise UnsafeMember(member.name, "is a device, fifo or other special file")
        try:
            parts = components(member.name)
            filtered = tarfile.data_filter(member, str(dest))
        except UnsafePath as exc:
            raise UnsafeMember(member.name, exc.why) from None
        except tarfile.FilterError as exc:
            raise UnsafeMember(member.name, str(exc)) from None
        if not parts:
            if member.isdir():
                continue  # "./": the destination itself
            raise UnsafeMember(member.name, "names the destination folder itself")
        tree.add(member, tuple(parts))
        plan.append((filtered, parts))
    tree.check_links()
    return plan


def extract_tar(archive: Path, dest: Path) -> list[str]:
    """Extract a tar(.gz) into an empty or absent dest; raise UnsafeMember before any write."""
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        plan = _plan(members, dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open_dir(dest.parent, dest.name, create=True) as root_fd:
            if os.listdir(root_fd):
                raise UnsafePath(str(dest), "is not empty")
        for member, parts in plan:
            _write_member(tar, member, parts, dest)
    return [m.name for m in members]


def _write_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str], dest: Path
) -> None:
    """Write one planned member with descriptors only: nothing on the way is followed."""
    parent, name = "/".join(parts[:-1]), parts[-1]
    with open_dir(dest, parent, create=True) as dir_fd:
        if member.isdir():
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=dir_fd)
            return
        if member.issym():
            os.symlink(member.linkname, name, dir_fd=dir_fd)
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)  # a repeated name: the later member wins, as in tar
        if member.islnk():
            src_parent, src_name = _split_last(member.linkname)
            with open_dir(dest, src_parent) as src_fd:
                os.link(src_name, name, src_dir_fd=src_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as out:
            source = tar.extractfile(member)
            if source is not None:
                shutil.copyfileobj(source, out)
            os.fchmod(fd, member.mode if member.mode is not None else 0o644)
            os.utime(fd, (member.mtime, member.mtime))
