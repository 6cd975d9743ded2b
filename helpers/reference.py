"""AWS reference figures and image support dates, from the dated file helpers/aws_reference.json.

Every time, speed-up or cost the course measures offline is shown beside its AWS figure, so a
learner never mistakes a laptop's numbers for what SageMaker does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from helpers.session import HelperError, read_table

REFERENCE_FILE = Path(__file__).with_name("aws_reference.json")
OFFLINE = "offline (localcloud, this machine)"
FIGURE_FIELDS = ("value", "unit", "what", "source", "measured", "date")
# What notebooks call the frameworks, and the key of each in the file's "images".
FRAMEWORKS = {"xgboost": "xgboost", "pytorch": "pytorch-training"}
DATED = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Figure:
    """One AWS figure with where and when it was measured, ready to print beside an offline one."""

    key: str
    value: float | tuple[float, float]
    unit: str
    what: str
    source: str
    measured: str
    date: str

    @property
    def where(self) -> str:
        """'AWS (seed lesson run, 2024-11-03)': the basis, with the figure's date if it has none."""
        basis = self.measured
        if basis.startswith("AWS (") and basis.endswith(")"):
            basis = basis[5:-1]
        return f"AWS ({basis})" if DATED.search(basis) else f"AWS ({basis}, {self.date})"

    @property
    def text(self) -> str:
        """The value with its unit: '130 s billed', '2–4 min', '$0.10–0.20'."""
        return _with_unit(self.value, self.unit)

    @property
    def label(self) -> str:
        """'on AWS (seed lesson run, 2024-11-03): 130 s billed'."""
        return f"on {self.where}: {self.text}"


def _number(value: float, spec: str = "") -> str:
    """A figure's number as written in the file (130, 0.0042), or with a format spec."""
    return format(value, spec or "g")


def _with_unit(value: float | tuple[float, float], unit: str, spec: str = "") -> str:
    """A value or a (low, high) range with its unit; USD as '$'."""
    if isinstance(value, tuple):
        low, high = value
        if unit == "USD":
            return f"${format(low, spec or '.2f')}–{format(high, spec or '.2f')}"
        number = f"{_number(low, spec)}–{_number(high, spec)}"
    else:
        number = _number(value, spec)
    return f"${number}" if unit == "USD" else f"{number} {unit}"


def load_reference(path: str | Path | None = None) -> dict[str, Any]:
    """Read the dated reference file, refusing one that lacks a part the course relies on."""
    path = Path(path) if path else REFERENCE_FILE
    parts = ("as_of", "figures", "images", "chosen")
    return read_table(path, parts, "", "helpers/aws_reference.json")


def as_of(path: str | Path | None = None) -> date:
    """The date the file's figures and support windows were checked."""
    return date.fromisoformat(load_reference(path)["as_of"])


def aws_figure(key: str, path: str | Path | None = None) -> Figure:
    """The AWS figure called key, with its source and date."""
    figures = load_reference(path)["figures"]
    if key not in figures:
        raise HelperError(
            f"no AWS reference figure {key!r} in helpers/aws_reference.json;"
            f" known: {', '.join(sorted(figures))}"
        )
    entry = figures[key]
    missing = [field for field in FIGURE_FIELDS if field not in entry]
    if missing:
        raise HelperError(f"figure {key!r} lacks {missing}: fix helpers/aws_reference.json")
    value = entry["value"]
    value = (float(value[0]), float(value[1])) if isinstance(value, list) else float(value)
    return Figure(key, value, *(str(entry[field]) for field in FIGURE_FIELDS[1:]))


def side_by_side(offline_value: float, key: str, fmt: str = "g") -> str:
    """'offline (localcloud, this machine): 4 s billed · on AWS (…, 2024-11-03): 130 s billed'.

    fmt is a format spec ('.1f', '.4f') for the offline value, in the AWS figure's unit.
    """
    figure = aws_figure(key)
    return f"{OFFLINE}: {_with_unit(offline_value, figure.unit, fmt)} · {figure.label}"


def image_entry(framework: str, version: str, path: str | Path | None = None) -> dict[str, Any]:
    """The file's entry for an image version ('2.10.0' finds '2.10'), with its support window."""
    images = load_reference(path)["images"]
    family = images.get(FRAMEWORKS.get(framework, framework))
    if family is None:
        raise HelperError(f"no images for {framework!r}; known: {', '.join(sorted(FRAMEWORKS))}")
    for candidate in (version, ".".join(version.split(".")[:2])):
        if candidate in family:
            return family[candidate]
    raise HelperError(
        f"no support date for {framework} {version!r} in helpers/aws_reference.json;"
        f" known: {', '.join(family)}"
    )


def image_support(framework: str, version: str, path: str | Path | None = None) -> date:
    """The day AWS stops patching this image version (its end of patch)."""
    return date.fromisoformat(image_entry(framework, version, path)["end_of_patch"])


def in_support(framework: str, version: str, on: date | None = None) -> bool:
    """Whether the image still gets patches on a day (the file's as_of when none is given)."""
    return (on or as_of()) <= image_support(framework, version)
