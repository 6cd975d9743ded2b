"""Which Python and packages each training image ships, with where that was read.

A job runs with the server's interpreter unless an image environment (envs.py) was built from
an entry here. Facts were read from the AWS Deep Learning Containers repository
(github.com/aws/deep-learning-containers) on the date each entry carries.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

# The image's `xgboost` wheel pulls NVIDIA's NCCL (~300 MB); xgboost-cpu is the same library
# built without it.
SUBSTITUTES = {"xgboost": "xgboost-cpu"}
# What a course script imports: the versions a job's log line compares.
COMPARED = ("xgboost", "pandas", "numpy", "scikit-learn")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class ImageError(RuntimeError):
    """An image localcloud cannot build an environment for, or a build that failed."""


@dataclass(frozen=True)
class Image:
    """One training image: its repository and tag, its Python and the pins it installs."""

    repository: str  # as in the image URI, e.g. "sagemaker-xgboost"
    tag: str
    python: str  # major.minor
    pins: tuple[str, ...]  # requirement lines as the image's files state them
    source: str
    read_on: str  # the date the source was read
    optional: tuple[str, ...] = ()  # tried after the pins; left out (and said so) if they fail

    @property
    def name(self) -> str:
        """repository:tag, as a log line names the image."""
        return f"{self.repository}:{self.tag}"

    @property
    def short(self) -> str:
        """The name `images pull` takes, e.g. xgboost:3.2-0."""
        return f"{self.repository.removeprefix('sagemaker-')}:{self.tag}"

    @property
    def folder(self) -> str:
        """The environment's folder name in the cache."""
        return f"{self.repository}-{self.tag}"

    def install_lines(self, lines: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The pins (or other lines) as pip installs them here (SUBSTITUTES applied)."""
        return tuple(substitute(line) for line in (self.pins if lines is None else lines))

    def digest(self) -> str:
        """What an environment must have been built from to count as this entry's."""
        spec = [self.name, self.python, self.install_lines(), self.install_lines(self.optional)]
        return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def substitute(line: str) -> str:
    """A requirement line with the distribution pip installs here in place of the image's."""
    match = _NAME.match(line)
    if not match or match.group(1).lower() not in SUBSTITUTES:
        return line
    return SUBSTITUTES[match.group(1).lower()] + line[match.end() :]


_SAGEMAKER_CONTAINERS = "sagemaker-containers==2.8.6.post2"

IMAGES: tuple[Image, ...] = (
    Image(
        repository="sagemaker-xgboost",
        tag="3.2-0",
        python="3.12",  # requires-python = ">=3.12,<3.13" in the same file
        pins=(
            "xgboost==3.2.0",
            "pandas==2.2.3",
            "numpy==2.1.0",
            "scikit-learn==1.8.0",
            "scipy==1.15.0",
            "matplotlib==3.10.9",
            "PyYAML==6.0.1",
            "psutil==7.0.0",
            "boto3==1.38.0",
            "botocore==1.38.0",
            "requests==2.33.0",
            "python-dateutil==2.9.0",
            "protobuf>=3.20.0,<=3.20.3",
        ),
        optional=(_SAGEMAKER_CONTAINERS,),
        source="aws/deep-learning-containers docker/xgboost/pyproject.toml @0004682f",
        read_on="2026-12-02",
    ),
    Image(
        repository="sagemaker-xgboost",
        tag="3.0-5",
        python="3.10",  # the Dockerfile's PYTHON_VERSION=3.10 (and XGBOOST_VERSION=3.0.5)
        pins=(
            "xgboost==3.0.5",
            "pandas==2.2.3",
            "numpy==2.1.0",
            "scikit-learn==1.5.2",
            "scipy==1.15.0",
            "matplotlib==3.9.2",
            "PyYAML==6.0.1",
            "psutil==5.8.0",
            "boto3==1.17.52",
            "botocore==1.20.52",
            "requests==2.34.2",
            "python-dateutil==2.8.2",
            # the Dockerfile's "Security patches" step (@11849ede, read 2026-12-02)
            "protobuf>=3.20.0,<=3.20.3",
        ),
        optional=(_SAGEMAKER_CONTAINERS,),
        source="aws/deep-learning-containers docker/xgboost/3.0-5/requirements.txt @0df46d82",
        read_on="2026-12-02",
    ),
)

_PYTORCH_TAG = re.compile(r"^(\d+\.\d+)(?:\.\d+)?-(?:cpu|gpu)(?:-py(\d)(\d+))?")


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag) of an image URI, a repository:tag or a short name; tag "" if none."""
    last = image.strip().rsplit("/", 1)[-1]
    last = last.split("@", 1)[0]  # a digest names no tag
    repository, _, tag = last.partition(":")
    return repository, tag


def entry_for(image: str) -> Image | None:
    """The catalog entry an image names, or None when localcloud knows none for it."""
    repository, tag = split_image(image)
    for entry in IMAGES:
        if tag == entry.tag and repository in (entry.repository, entry.short.split(":")[0]):
            return entry
    return None


def lookup(image: str) -> Image:
    """The catalog entry an image names; ImageError naming the known ones when there is none."""
    entry = entry_for(image)
    if entry is None:
        known = ", ".join(e.short for e in IMAGES)
        raise ImageError(
            f"no environment is known for the image {image!r}; localcloud builds these: {known} "
            "(PyTorch images run with this machine's torch)"
        )
    return entry


def pytorch_versions(image: str) -> tuple[str, str | None] | None:
    """(torch X.Y, Python X.Y or None) of a pytorch-training image, as its tag tells them."""
    repository, tag = split_image(image)
    match = _PYTORCH_TAG.match(tag) if repository.startswith("pytorch-training") else None
    if match is None:
        return None
    python = f"{match.group(2)}.{match.group(3)}" if match.group(2) else None
    return match.group(1), python
