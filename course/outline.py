"""Read a lesson's outline (title, questions, objectives, minutes) from its header cells."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

_SECTION = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(questions|objectives|key points)"
    r"\s*:?\s*(?:\*\*|__)?\s*:?\s*$",
    re.IGNORECASE,
)
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*\S)\s*$")
_TITLE = re.compile(r"^\s*#\s+(.*\S)\s*$")
_TEACHING = re.compile(r"teaching\W*(\d+)\s*min", re.IGNORECASE)
_EXERCISES = re.compile(r"exercises?\W*(\d+)\s*min", re.IGNORECASE)


@dataclass
class Lesson:
    """What the index shows for one notebook, so learners know what each lesson is for."""

    stem: str
    title: str
    questions: list[str] = field(default_factory=list)
    objectives: list[str] = field(default_factory=list)
    teaching_min: int | None = None
    exercises_min: int | None = None


def header_markdown(nb: nbformat.NotebookNode) -> str:
    """Join the markdown cells before the first code cell: where a lesson states its aims."""
    parts: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            break
        if cell.cell_type == "markdown":
            parts.append(cell.source)
    return "\n\n".join(parts)


def parse_header(stem: str, text: str) -> Lesson:
    """Pick title, lists and minutes out of header markdown in the usual lesson style."""
    lesson = Lesson(stem=stem, title=_default_title(stem))
    section: list[str] | None = None
    titled = False
    for line in text.splitlines():
        if not titled and (m := _TITLE.match(line)):
            lesson.title, titled = m.group(1), True
            section = None
            continue
        if m := _SECTION.match(line):
            name = m.group(1).lower()
            section = {"questions": lesson.questions, "objectives": lesson.objectives}.get(name)
            continue
        if line.lstrip().startswith("#"):
            section = None
            continue
        if section is not None and (m := _ITEM.match(line)):
            section.append(m.group(1))
    if m := _TEACHING.search(text):
        lesson.teaching_min = int(m.group(1))
    if m := _EXERCISES.search(text):
        lesson.exercises_min = int(m.group(1))
    return lesson


def read_lesson(path: Path) -> Lesson:
    """Outline of one notebook file."""
    nb = nbformat.read(path, as_version=4)
    return parse_header(path.stem, header_markdown(nb))


def _default_title(stem: str) -> str:
    """A title when a notebook has no '# ' heading: '03_train_xgboost' -> 'Train xgboost'."""
    words = stem.split("_", 1)[-1].replace("_", " ")
    return words[:1].upper() + words[1:]
