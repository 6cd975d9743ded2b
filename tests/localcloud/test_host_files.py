"""Archives in and out of a host: sourcedir extraction refuses escaping members, hosts merge."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from localcloud.hosts.errors import ClientError
from localcloud.hosts.files import merge_into_tar, safe_extract


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "bad",
    [
        ("../evil.py", b"x"),
        ("/tmp/evil.py", b"x"),
        ("a/../../evil.py", b"x"),
        _link("up", "../../outside"),
        _link("abs", "/etc/passwd"),
        _link("hard", "../outside", tarfile.LNKTYPE),
    ],
)
def test_safe_extract_rejects_escaping_members(tmp_path: Path, bad) -> None:
    archive = tmp_path / "src.tar.gz"
    archive.write_bytes(_tar([("train.py", b"print(1)"), bad]))
    dest = tmp_path / "job" / "code"
    with pytest.raises(ClientError, match="^ClientError: .*unsafe member"):
        safe_extract(archive, dest, "s3://b/src.tar.gz")
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.tar.gz"]


def test_safe_extract_keeps_ordinary_trees(tmp_path: Path) -> None:
    archive = tmp_path / "src.tar.gz"
    archive.write_bytes(
        _tar([("train.py", b"print(1)"), ("pkg/util.py", b""), _link("pkg/alias.py", "util.py")])
    )
    names = safe_extract(archive, tmp_path / "code", "src")
    assert set(names) == {"train.py", "pkg/util.py", "pkg/alias.py"}
    assert (tmp_path / "code" / "train.py").read_bytes() == b"print(1)"


def test_model_dirs_merge_later_host_wins(tmp_path: Path) -> None:
    for host, files in (("algo-1", {"m.txt": "1", "a/x": "a1"}), ("algo-2", {"m.txt": "2"})):
        for name, text in files.items():
            (tmp_path / host / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / host / name).write_text(text)
    dest, count = merge_into_tar([tmp_path / "algo-1", tmp_path / "algo-2"], tmp_path / "m.tgz")
    with tarfile.open(dest) as tar:
        assert sorted(tar.getnames()) == ["a/x", "m.txt"] and count == 2
        assert tar.extractfile("m.txt").read() == b"2"
