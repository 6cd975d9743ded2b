"""Path proving and archive extraction: each crafted escape is refused beside a benign twin."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from localcloud.hosts import safepaths
from localcloud.hosts.errors import ClientError
from localcloud.hosts.files import merge_into_tar, safe_extract


def _member(entry: tuple) -> tuple[tarfile.TarInfo, bytes | None]:
    kind, name, *rest = entry
    info = tarfile.TarInfo(name)
    if kind == "file":
        data = rest[0] if rest else b"data"
        info.size = len(data)
        return info, data
    info.type = {
        "dir": tarfile.DIRTYPE,
        "sym": tarfile.SYMTYPE,
        "hard": tarfile.LNKTYPE,
        "fifo": tarfile.FIFOTYPE,
        "chr": tarfile.CHRTYPE,
    }[kind]
    if kind in ("sym", "hard"):
        info.linkname = rest[0]
    return info, None


def make_tar(path: Path, entries: list[tuple]) -> Path:
    """A tar.gz holding the entries in order (the order matters to the attacks)."""
    with tarfile.open(path, "w:gz") as tar:
        for entry in entries:
            info, data = _member(entry)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A folder with the destination's parent and an 'outside' folder holding a sentinel."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "sentinel").write_text("untouched")
    (tmp_path / "job").mkdir()
    return tmp_path


def snapshot(root: Path) -> dict[str, str | bytes]:
    """Every path under root (links not followed) with its kind or content."""
    seen = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            seen[str(path)] = "-> " + os.readlink(path)
        elif path.is_file():
            seen[str(path)] = path.read_bytes()
        else:
            seen[str(path)] = "dir"
    return seen


# (refused archive, benign twin, a file the twin must produce with its content)
CASES = {
    "symlink chain out through a link to '.'": (
        [("sym", "s1", "."), ("sym", "s2", "s1/s1"), ("sym", "s3", "s2/../outside/sentinel")],
        [("dir", "sub"), ("sym", "s1", "sub"), ("sym", "s2", "s1/.."), ("file", "f", b"1")],
        ("s2/f", "1"),
    ),
    "link changed by a later member": (
        [("dir", "e"), ("sym", "x", "d/e/../.."), ("sym", "d", ".")],  # x ends one level up
        [("sym", "x", "d/e/../.."), ("dir", "d/e"), ("file", "d/e/g", b"2")],
        ("x/d/e/g", "2"),
    ),
    "symlink to an absolute path": (
        [("sym", "passwd", "/etc/passwd")],
        [("file", "etc/passwd", b"3"), ("sym", "passwd", "etc/passwd")],
        ("passwd", "3"),
    ),
    "symlink with '..' leaving": (
        [("sym", "up", "../outside")],
        [("dir", "a"), ("sym", "a/up", "../b"), ("file", "b", b"4")],
        ("a/up", "4"),
    ),
    "hardlink to outside": (
        [("hard", "h", "../outside/sentinel")],
        [("file", "f", b"5"), ("hard", "h", "f")],
        ("h", "5"),
    ),
    "hardlink through a symlinked folder": (
        [("dir", "sub"), ("file", "sub/f"), ("sym", "s", "sub"), ("hard", "h", "s/f")],
        [("dir", "sub"), ("file", "sub/f", b"6"), ("hard", "h", "sub/f")],
        ("h", "6"),
    ),
    "hardlink to a symlink": (
        [("file", "f"), ("sym", "s", "f"), ("hard", "h", "s")],
        [("file", "f", b"7"), ("sym", "s", "f"), ("hard", "h", "f")],
        ("s", "7"),
    ),
    "file written through a symlinked folder": (
        [("dir", "sub"), ("sym", "s", "sub"), ("file", "s/evil")],
        [("dir", "sub"), ("file", "sub/evil", b"8")],
        ("sub/evil", "8"),
    ),
    "folder written through a symlink": (
        [("dir", "sub"), ("sym", "s", "sub"), ("dir", "s/x")],
        [("dir", "sub"), ("dir", "sub/x"), ("file", "sub/x/y", b"9")],
        ("sub/x/y", "9"),
    ),
    "file replacing a symlink": (
        [("sym", "s", "t"), ("file", "s", b"through")],
        [("file", "s", b"old"), ("file", "s", b"10")],
        ("s", "10"),
    ),
    "absolute name": (
        [("file", "/tmp/evil.py")],
        [("file", "tmp/evil.py", b"11")],
        ("tmp/evil.py", "11"),
    ),
    "'..' in the name": (
        [("file", "a/../../outside/evil")],
        [("file", "./a/c", b"12")],
        ("a/c", "12"),
    ),
    "character device": (
        [("chr", "dev")],
        [("file", "dev", b"13")],
        ("dev", "13"),
    ),
    "fifo": (
        [("fifo", "pipe")],
        [("file", "pipe", b"14")],
        ("pipe", "14"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_archive_is_refused_and_its_twin_extracts(box: Path, case: str) -> None:
    bad, good, (name, content) = CASES[case]
    bad_tar = make_tar(box / "bad.tar.gz", [("file", "train.py", b"print(1)"), *bad])
    before = snapshot(box)
    with pytest.raises(ClientError, match="^ClientError: The archive src contains an unsafe"):
        safe_extract(bad_tar, box / "job" / "code", "src")
    assert snapshot(box) == before  # refused before anything was written, here or outside

    good_tar = make_tar(box / "good.tar.gz", [("file", "train.py", b"print(1)"), *good])
    safe_extract(good_tar, box / "job" / "code", "src")
    assert (box / "job" / "code" / name).read_text() == content
    assert (box / "job" / "code" / "train.py").read_text() == "print(1)"
    assert (box / "outside" / "sentinel").read_text() == "untouched"
    assert sorted(p.name for p in (box / "outside").iterdir()) == ["sentinel"]


def test_extraction_never_goes_into_a_folder_already_holding_links(box: Path) -> None:
    archive = make_tar(box / "src.tar.gz", [("file", "s/x", b"1")])
    dest = box / "job" / "code"
    dest.mkdir()
    (dest / "s").symlink_to(box / "outside")
    with pytest.raises(ClientError, match="^ClientError: "):
        safe_extract(archive, dest, "src")
    (dest / "s").unlink()
    (dest / "t").mkdir()
    (dest / "s").symlink_to("t")  # inside, so only the emptiness rule stops it
    with pytest.raises(ClientError, match="is not empty"):
        safe_extract(archive, dest, "src")
    assert sorted(p.name for p in (box / "outside").iterdir()) == ["sentinel"]
    assert list((dest / "t").iterdir()) == []
    (dest / "s").unlink()
    (dest / "t").rmdir()
    safe_extract(archive, dest, "src")
    assert (dest / "s" / "x").read_text() == "1"


def test_extracted_modes_are_tamed(box: Path) -> None:
    with tarfile.open(box / "m.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("run.sh")
        info.mode, info.size = 0o4777, 2
        tar.addfile(info, io.BytesIO(b"ok"))
    safe_extract(box / "m.tar.gz", box / "job" / "code", "src")
    assert (box / "job" / "code" / "run.sh").stat().st_mode & 0o7777 == 0o755


# ------------------------------------------------------------------------- path helpers


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/x", "a/\0"])
def test_inside_refuses_names_that_leave(tmp_path: Path, bad: str) -> None:
    with pytest.raises(safepaths.UnsafePath):
        safepaths.inside(tmp_path, bad)
    assert safepaths.inside(tmp_path, "a/./b//c") == tmp_path / "a" / "b" / "c"


def test_inside_refuses_a_link_on_the_way(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(safepaths.UnsafePath, match="'link' is a symbolic link"):
        safepaths.inside(tmp_path, "link/x")
    assert safepaths.inside(tmp_path, "real/x") == tmp_path / "real" / "x"


def test_write_file_never_writes_through_links(box: Path) -> None:
    job = box / "job"
    (job / "output").symlink_to(box / "outside")
    with pytest.raises(safepaths.UnsafePath, match="'output' is a symbolic link"):
        safepaths.write_file(job, "output/sentinel", b"overwritten")
    (job / "output").unlink()
    (job / "output").mkdir()
    (job / "output" / "failure").symlink_to(box / "outside" / "sentinel")
    safepaths.write_file(job, "output/failure", b"text")  # the link is replaced, not followed
    assert not (job / "output" / "failure").is_symlink()
    assert (job / "output" / "failure").read_text() == "text"
    assert (box / "outside" / "sentinel").read_text() == "untouched"


def test_read_regular_refuses_links_and_fifos(box: Path) -> None:
    job = box / "job"
    (job / "link").symlink_to(box / "outside" / "sentinel")
    os.mkfifo(job / "fifo")
    with pytest.raises(safepaths.UnsafePath, match="symbolic link"):
        safepaths.read_regular(job, "link", 100)
    with pytest.raises(safepaths.UnsafePath, match="not a regular file"):
        safepaths.read_regular(job, "fifo", 100)  # O_NONBLOCK: no writer, no hang
    (job / "plain").write_text("0123456789")
    assert safepaths.read_regular(job, "plain", 4) == b"0123"
    assert safepaths.read_regular(job, "absent", 4) is None


def test_regular_files_follow_nothing(box: Path) -> None:
    model = box / "job" / "model"
    (model / "sub").mkdir(parents=True)
    (model / "sub" / "w.bin").write_text("w")
    (model / "secret").symlink_to(box / "outside" / "sentinel")
    (model / "dirlink").symlink_to(box / "outside")
    assert safepaths.regular_files(box / "job", "model") == (["sub/w.bin"], ["dirlink", "secret"])
    assert safepaths.regular_files(box / "job", "absent") == ([], [])
    (box / "job" / "model2").symlink_to(box / "outside")
    with pytest.raises(safepaths.UnsafePath, match="'model2' is a symbolic link"):
        safepaths.regular_files(box / "job", "model2")


def test_merge_into_tar_packs_no_link_and_no_linked_folder(box: Path) -> None:
    model = box / "job" / "model"
    model.mkdir()
    (model / "m.txt").write_text("model")
    (model / "secret").symlink_to(box / "outside" / "sentinel")
    dest, count = merge_into_tar([model], box / "m.tar.gz")
    with tarfile.open(dest) as tar:
        assert tar.getnames() == ["m.txt"] and count == 1
    linked = box / "job" / "linked"
    linked.symlink_to(box / "outside")
    with pytest.raises(safepaths.UnsafePath, match="symbolic link"):
        merge_into_tar([linked], box / "l.tar.gz")
