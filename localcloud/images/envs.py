"""Image environments on disk: a venv per catalog entry, built once, shared by all state folders.

`pull` builds in a `.building-*` folder of the cache, pip-installs the pins, writes the manifest
(what the env's own python reports as installed) last, then renames the folder into place: a
half-built env never has the final name, and `find` trusts only a final folder whose manifest
matches its catalog entry. A lock per image makes a second pull wait and then find the first's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from localcloud.images import build as builder
from localcloud.images.catalog import Image, ImageError, lookup
from localcloud.images.pythons import find_python

MANIFEST = "localcloud-image.json"
MANIFEST_FORMAT = 1  # raise when the manifest's fields change: older envs are then rebuilt
BUILDING = ".building-"


def cache_root() -> Path:
    """$LOCALCLOUD_IMAGE_CACHE, else $XDG_CACHE_HOME/localcloud/images, else ~/.cache/…."""
    explicit = os.environ.get("LOCALCLOUD_IMAGE_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: absolute
    return (base / "localcloud" / "images").resolve()


@dataclass(frozen=True)
class Env:
    """A built image environment: its folder, its catalog entry and its manifest."""

    root: Path
    image: Image
    manifest: Mapping[str, Any]

    @property
    def python(self) -> str:
        """The env's interpreter (the venv's, not the base one it links to)."""
        return str(self.root / "bin" / "python")

    @property
    def packages(self) -> Mapping[str, str]:
        """{normalized distribution name: version}, as the env's python reported them."""
        return self.manifest["packages"]

    @property
    def modules(self) -> Mapping[str, list[str]]:
        """{import name: distributions providing it}."""
        return self.manifest["modules"]

    @property
    def markers(self) -> Mapping[str, str]:
        """The env's marker environment, for requirement lines with `; python_version …`."""
        return self.manifest["markers"]

    @property
    def left_out(self) -> Mapping[str, str]:
        """{optional requirement: why it is not installed}."""
        return self.manifest.get("left_out") or {}


def _entry(image: Image | str) -> Image:
    return image if isinstance(image, Image) else lookup(image)


def normalize(name: str) -> str:
    """A distribution name as the manifest keys it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def unmet_pins(image: Image, packages: Mapping[str, str]) -> list[str]:
    """The entry's pins that the installed packages do not satisfy."""
    unmet = []
    for line in image.install_lines():
        try:
            req = Requirement(line)
        except InvalidRequirement:
            unmet.append(line)
            continue
        version = packages.get(normalize(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            unmet.append(line)
    return unmet


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _matches(image: Image, root: Path, manifest: Mapping[str, Any] | None) -> bool:
    if manifest is None or not (root / "bin" / "python").exists():
        return False
    try:
        python = str(manifest["python"])
        same = manifest["image"] == image.name and manifest["spec"] == image.digest()
        same = same and manifest.get("format") == MANIFEST_FORMAT
        return (
            same
            and python.startswith(image.python + ".")
            and not unmet_pins(image, manifest["packages"])
        )
    except (KeyError, TypeError, AttributeError):
        return False


def find(image: Image | str, root: Path | None = None) -> Env | None:
    """The built env of an image, only if its manifest is there and matches the catalog entry."""
    entry = _entry(image)
    folder = (root or cache_root()) / entry.folder
    manifest = _read_manifest(folder)
    return Env(folder, entry, manifest) if manifest and _matches(entry, folder, manifest) else None


def status(image: Image | str, root: Path | None = None) -> str:
    """'present', 'outdated' (a folder whose manifest does not match) or 'absent'."""
    entry = _entry(image)
    if find(entry, root) is not None:
        return "present"
    return "outdated" if ((root or cache_root()) / entry.folder).exists() else "absent"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on path while the block runs (none where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows; the rename still keeps pulls apart
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _into_place(build: Path, final: Path) -> None:
    """Rename build to final; an outdated final folder is moved aside first, then removed."""
    stale = None
    if final.exists():
        stale = Path(tempfile.mkdtemp(prefix=f".stale-{final.name}-", dir=final.parent))
        os.rename(final, stale / final.name)
    os.rename(build, final)
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)


def _stderr(line: str) -> None:
    print(f"localcloud: {line}", file=sys.stderr, flush=True)


def pull(
    image: Image | str,
    root: Path | None = None,
    *,
    log: builder.Log = _stderr,
    installer: Callable[[Path, Image, str, builder.Log], dict[str, str]] = builder.install,
) -> Env:
    """The image's env, built now unless a matching one is present; ImageError if it can't be."""
    entry = _entry(image)
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / entry.folder
    with _locked(root / f".{entry.folder}.lock"):
        found = find(entry, root)
        if found is not None:
            return found
        # what a killed pull left; we hold the lock, so no pull is using it
        for prefix in (BUILDING, ".stale-"):
            for leftover in root.glob(f"{prefix}{entry.folder}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        base_python = find_python(entry.python)
        started = time.monotonic()
        log(f"building {entry.name} (Python {entry.python}: {base_python}) in {final}")
        build = Path(tempfile.mkdtemp(prefix=f"{BUILDING}{entry.folder}-", dir=root))
        build.chmod(0o755)  # as readable as any venv (mkdtemp makes it 0700)
        try:
            left_out = installer(build, entry, base_python, log)
            builder.retarget_scripts(build, final)
            installed = builder.report(str(build / "bin" / "python"))
            manifest = {
                "format": MANIFEST_FORMAT,
                "image": entry.name,
                "spec": entry.digest(),
                "source": f"{entry.source} (read {entry.read_on})",
                "base_python": base_python,
                **installed,
                "left_out": left_out,
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.monotonic() - started, 1),
            }
            unmet = unmet_pins(entry, manifest["packages"])
            if unmet:
                raise ImageError(f"{entry.name}: installed, yet not as pinned: {', '.join(unmet)}")
            text = json.dumps(manifest, indent=1, sort_keys=True)
            (build / (MANIFEST + ".tmp")).write_text(text)
            os.replace(build / (MANIFEST + ".tmp"), build / MANIFEST)  # last: the env is whole
            _into_place(build, final)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
    found = find(entry, root)
    if found is None:  # pragma: no cover - only if someone changed the folder meanwhile
        raise ImageError(f"{entry.name} was built in {final} but does not match its catalog entry")
    log(f"{entry.name} ready in {final} ({manifest['build_seconds']:.0f} s)")
    return found
