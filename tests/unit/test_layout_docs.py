"""localcloud/README.md's layout table names every module in the tree, and only those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "localcloud"
ROW = re.compile(r"^\| `([^`]+)` \| *(\d*) *\|", re.MULTILINE)


def documented() -> dict[str, str]:
    """{path in the table: its line count as written}."""
    text = (PACKAGE / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return dict(ROW.findall(section))


def modules() -> set[str]:
    """Every module file of localcloud that a reader should find in the table."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" or relative.startswith("_boot/"):
            continue
        found.add(relative)
    return found


def covered(path: str, rows: dict[str, str]) -> bool:
    return path in rows or any(row.endswith("/") and path.startswith(row) for row in rows)


def test_every_module_is_in_the_layout_table_and_every_row_exists():
    rows = documented()
    assert [m for m in sorted(modules()) if not covered(m, rows)] == []
    assert [r for r in rows if not (PACKAGE / r).exists()] == []


def test_line_counts_in_the_table_are_roughly_right():
    for row, count in documented().items():
        if count:
            actual = len((PACKAGE / row).read_text().splitlines())
            assert abs(actual - int(count)) <= max(25, actual // 5), (row, count, actual)


def test_the_checker_sees_a_missing_module():
    assert not covered("hosts/new.py", {"hosts/cluster.py": "1"})
    assert covered("algorithms/xgboost/data.py", {"algorithms/xgboost/": ""})
