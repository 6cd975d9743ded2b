"""Packages a framework image ships that localcloud's job interpreter lacks, and what to say.

localcloud runs a script-mode job with its own Python (the course venv), not the image's. A
script that imports a package only the image has then dies with a bare ModuleNotFoundError; this
table turns that into one FailureReason line naming the container's package and what to do.
Kinds are those of localcloud.algorithms.image_kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class ShippedPackage:
    """One package of an image: its import name, what the image installs, what to do here."""

    module: str
    shipped: str
    advice: str


_TORCH_BUILD = "install the {module} release built for {torch} into it, or remove the import"

IMAGE_NAMES = {
    "xgboost": "XGBoost framework image",
    "pytorch": "PyTorch training image",
}

IMAGE_PACKAGES: dict[str, tuple[ShippedPackage, ...]] = {
    # sagemaker-xgboost-container's requirements.txt (1.x images)
    "xgboost": (
        ShippedPackage(
            "sagemaker_containers",
            "sagemaker-containers 2.8.6.post2 (the legacy training toolkit)",
            "read the SM_* environment variables localcloud sets (e.g. "
            "os.environ['SM_MODEL_DIR']) instead, or remove the import",
        ),
        ShippedPackage(
            "sagemaker_xgboost_container",
            "its own sagemaker_xgboost_container package (not on PyPI)",
            "use xgboost's own API instead (xgboost.DMatrix for data_utils.get_dmatrix), "
            "or remove the import",
        ),
    ),
    # the DLC's core packages (pytorch/training/docker/<version>/py3/*core_packages.json)
    "pytorch": (
        ShippedPackage("torchvision", "the torchvision built for its torch", _TORCH_BUILD),
        ShippedPackage("torchaudio", "the torchaudio built for its torch", _TORCH_BUILD),
    ),
}

# the import error as Python prints it; ImportError's form is what older code raises by hand
_NO_MODULE = re.compile(
    r"\b(?:ModuleNotFoundError|ImportError): No module named '?([A-Za-z_][\w.]*)'?"
)


def _torch_release() -> str:
    """The job interpreter's torch, as the advice names it (jobs run with this interpreter)."""
    try:
        return f"torch {metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        return "the torch you install"


def missing_package_reason(kind: str | None, error_message: str) -> str | None:
    """One line for an import of a package the image ships but localcloud lacks; else None."""
    packages = {p.module: p for p in IMAGE_PACKAGES.get(kind or "", ())}
    if not packages:
        return None
    for match in _NO_MODULE.finditer(error_message):
        # 'torchvision.ops' missing means torchvision itself is there: not this case
        package = packages.get(match.group(1))
        if package is None:
            continue
        advice = package.advice.format(module=package.module, torch=_torch_release())
        return (
            f"{match.group(0)}: the {IMAGE_NAMES[kind or '']} ships {package.shipped}; "
            f"localcloud runs jobs with the course's Python, which has no "
            f"{package.module}: {advice}."
        )
    return None
