"""Which built-in algorithm an image runs: each algorithm registers itself here.

The job state machine asks for an algorithm's metric definitions, the host runner for the module
to start; neither knows any algorithm by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BuiltinAlgorithm:
    """A SageMaker built-in algorithm localcloud runs as `python -m <module>` on each host."""

    image_kind: str  # what image_kind() calls its image, e.g. "xgboost"
    module: str
    metric_definitions: Callable[[], list[dict[str, str]]]
    ports: int = 0  # loopback ports the job's hosts share (e.g. a rendezvous tracker)
    ports_env: str = ""  # the variable that carries them, comma-separated


_ALGORITHMS: dict[str, BuiltinAlgorithm] = {}


def register(algorithm: BuiltinAlgorithm) -> None:
    """Make an algorithm known under its image kind (called by the algorithm's package)."""
    _ALGORITHMS[algorithm.image_kind] = algorithm


def builtin(kind: str) -> BuiltinAlgorithm | None:
    """The built-in algorithm of an image kind, if localcloud has one."""
    return _ALGORITHMS.get(kind)


def image_kind(training_image: str) -> str:
    """Which container an image URI names, from its repository (…/<repo>:<tag>)."""
    repo = training_image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    if repo == "sagemaker-xgboost":
        return "xgboost"
    if repo.startswith("pytorch-training"):
        return "pytorch"
    if repo.startswith("sagemaker-scikit-learn"):
        return "sklearn"
    if repo.startswith("tensorflow-training"):
        return "tensorflow"
    return "other"
