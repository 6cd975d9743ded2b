"""Imports go one way: no cycle between the project's modules or packages, bench/ never uses tests/.

Every import counts, also those inside functions or `if TYPE_CHECKING:`: deferring an import to
call time hides a cycle between two layers, it does not remove it.
"""

from __future__ import annotations

import ast
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("localcloud", "helpers", "course")
# Run as `python bench/x.py`: top-level scripts that could import each other by stem.
SCRIPT_FOLDERS = ("bench",)
# localcloud's layers, top to bottom: each imports only from layers below it. Modules directly in
# localcloud/ (config, errors, credentials, environ, offline, ...) are the floor every layer uses,
# except the client side (client, control, kernel, the CLI), which stands above the server.
LOCALCLOUD_LAYERS = ["server", "jobs", "hosts", "algorithms"]
CLIENT_SIDE = {"client", "control", "kernel", "__main__", "testing", "_boot", "sdk_patches"}

Graph = dict[str, set[str]]


@dataclass(frozen=True)
class Module:
    """One .py file as Python imports it, and the package (or script folder) it belongs to."""

    name: str
    path: Path
    package: str
    is_package: bool = False


def discover(
    root: Path, packages: Iterable[str], script_folders: Iterable[str] = ()
) -> dict[str, Module]:
    """{dotted name: Module} for every .py under the packages and the script folders."""
    found: dict[str, Module] = {}
    for top in packages:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            package = name if is_package else ".".join(parts[:-1])
            found[name] = Module(name, path, package, is_package)
    for folder in script_folders:
        for path in sorted((root / folder).glob("*.py")):
            found[path.stem] = Module(path.stem, path, folder)
    return found


def imported_names(module: Module) -> set[str]:
    """What the module imports, as absolute names (relative imports resolved).

    `from a.b import c` gives `a.b.c`, which import_graph resolves to module c or, when c is a
    name defined in a.b, to a.b.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.path.read_text(), str(module.path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.name.split(".")
                here = here if module.is_package else here[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join([*here, *([node.module] if node.module else [])])
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Module]) -> Graph:
    """Module -> the project modules it imports (for each name, the deepest module it names)."""
    graph: Graph = {}
    for name, module in modules.items():
        targets = set()
        for imported in imported_names(module):
            parts = imported.split(".")
            prefixes = (".".join(parts[:i]) for i in range(len(parts), 0, -1))
            target = next((p for p in prefixes if p in modules), None)
            if target is not None and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def package_graph(modules: dict[str, Module], graph: Graph) -> Graph:
    """Package -> the packages its modules import; edges between a package and its own
    subpackages don't count (a subpackage using its parent's config is no layer cycle)."""
    packages: Graph = {m.package: set() for m in modules.values()}
    for name, targets in graph.items():
        source = modules[name].package
        for target in targets:
            dest = modules[target].package
            if not (_within(source, dest) or _within(dest, source)):
                packages[source].add(dest)
    return packages


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer + ".")


def cycle_through(graph: Graph, node: str) -> list[str] | None:
    """The shortest import path node -> ... -> node, or None when node is on no cycle."""
    came_from: dict[str, str] = {}
    queue = deque([node])
    while queue:
        current = queue.popleft()
        for nxt in sorted(graph.get(current, ())):
            if nxt == node:
                path = [current]
                while path[-1] != node:
                    path.append(came_from[path[-1]])
                return [*reversed(path), node]
            if nxt not in came_from:
                came_from[nxt] = current
                queue.append(nxt)
    return None


def cycles_through(graph: Graph, nodes: Iterable[str]) -> list[str]:
    """Each distinct cycle through one of the nodes, as 'a -> b -> a'."""
    seen: set[frozenset[str]] = set()
    found = []
    for node in sorted(nodes):
        cycle = cycle_through(graph, node)
        if cycle and frozenset(cycle) not in seen:
            seen.add(frozenset(cycle))
            found.append(" -> ".join(cycle))
    return found


def imports_from_tests(path: Path, tests_dir: Path) -> set[str]:
    """The names a script imports that resolve into tests/ (the package, or a module by stem
    as it would be found with a tests/ folder on sys.path)."""
    stems = {p.stem for p in tests_dir.rglob("*.py")} | {"tests"}
    names = imported_names(Module(path.stem, path, path.parent.name))
    return {n for n in names if n.split(".")[0] in stems}


_LIST_EDITS = {"insert", "append", "extend", "remove", "pop", "clear"}


def sys_path_edits(path: Path) -> list[int]:
    """Lines that change sys.path: a call of a method that changes a list, or an assignment."""

    def is_sys_path(node: ast.AST) -> bool:
        if isinstance(node, ast.Subscript):
            node = node.value
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        )

    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _LIST_EDITS and is_sys_path(node.func.value):
                lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(is_sys_path(t) for t in targets):
                lines.append(node.lineno)
    return sorted(lines)


def project_sources(root: Path) -> Iterator[Path]:
    """Every .py of the repository but the venv, build outputs and hidden folders."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in {"build", "__pycache__"}
        )
        yield from (Path(folder, f) for f in sorted(files) if f.endswith(".py"))


@pytest.fixture(scope="module")
def project() -> tuple[dict[str, Module], Graph]:
    modules = discover(ROOT, PACKAGES, SCRIPT_FOLDERS)
    return modules, import_graph(modules)


CASES = ["helpers", "course", "bench", "localcloud"]


# localcloud's modules have no cycle today (its packages do, below): it must stay that way.
@pytest.mark.parametrize("prefix", CASES)
def test_no_module_import_cycle(project: tuple[dict[str, Module], Graph], prefix: str) -> None:
    modules, graph = project
    scope = [n for n, m in modules.items() if _within(m.package, prefix)]
    assert scope, f"no modules found for {prefix}"
    assert cycles_through(graph, scope) == []


@pytest.mark.parametrize("prefix", CASES)
def test_no_package_import_cycle(project: tuple[dict[str, Module], Graph], prefix: str) -> None:
    modules, graph = project
    packages = package_graph(modules, graph)
    assert cycles_through(packages, [p for p in packages if _within(p, prefix)]) == []


def _layer(name: str) -> int:
    """Rank of a localcloud module: 0 for the floor, 1 + (4 - index) for a layer, 6 client side."""
    parts = name.split(".")
    if len(parts) < 2:
        return 6  # the package itself: connect(), the public face
    if parts[1] in CLIENT_SIDE:
        return 6
    if parts[1] in LOCALCLOUD_LAYERS:
        return 1 + len(LOCALCLOUD_LAYERS) - LOCALCLOUD_LAYERS.index(parts[1])
    return 0


def upward_imports(graph: Graph) -> list[tuple[str, str]]:
    """(importer, imported) pairs in localcloud where a module imports from a higher layer."""
    return sorted(
        (source, target)
        for source, targets in graph.items()
        if source.startswith("localcloud")
        for target in targets
        if target.startswith("localcloud") and _layer(target) > _layer(source)
    )


def test_localcloud_layers_import_only_downward(project: tuple[dict[str, Module], Graph]) -> None:
    _, graph = project
    assert upward_imports(graph) == []
    # the checker itself: an upward import is found, a downward one is not
    assert upward_imports({"localcloud.hosts.x": {"localcloud.jobs.y"}}) == [
        ("localcloud.hosts.x", "localcloud.jobs.y")
    ]
    assert upward_imports({"localcloud.jobs.y": {"localcloud.hosts.x", "localcloud.config"}}) == []
    assert upward_imports({"localcloud.config": {"localcloud.client"}}) == [
        ("localcloud.config", "localcloud.client")
    ]


def test_bench_does_not_import_tests() -> None:
    scripts = sorted((ROOT / "bench").glob("*.py"))
    assert scripts
    assert {p.name: imports_from_tests(p, ROOT / "tests") for p in scripts} == {
        p.name: set() for p in scripts
    }


def test_no_sys_path_edits_outside_notebooks() -> None:
    sources = list(project_sources(ROOT))
    assert ROOT / "course" / "jobs.py" in sources
    assert not any(".venv" in p.parts for p in sources)
    edits = {str(p.relative_to(ROOT)): lines for p in sources if (lines := sys_path_edits(p))}
    assert edits == {}


# ---- the checker itself: it finds what it should, on small trees made here


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_checker_finds_a_cycle_hidden_in_a_function_and_a_relative_import(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "def later():\n    from . import a\n",
        "pkg/c.py": "import pkg.a\n",
    }
    graph = import_graph(discover(_tree(tmp_path / "cyclic", files), ["pkg"]))
    assert cycles_through(graph, graph) == ["pkg.a -> pkg.b -> pkg.a"]
    assert cycle_through(graph, "pkg.c") is None
    # control: the same tree with b no longer importing a has no cycle
    files["pkg/b.py"] = "def later():\n    return 1\n"
    graph = import_graph(discover(_tree(tmp_path / "acyclic", files), ["pkg"]))
    assert graph["pkg.c"] == {"pkg.a"} and graph["pkg.a"] == {"pkg.b"}
    assert cycles_through(graph, graph) == []


def test_checker_finds_package_cycles_but_not_parent_and_child(tmp_path: Path) -> None:
    files = {
        "top/__init__.py": "",
        "top/config.py": "",
        "top/cli.py": "from top.jobs import runner\n",
        "top/jobs/__init__.py": "",
        "top/jobs/runner.py": "from top import config\nfrom top.server.errors import Oops\n",
        "top/server/__init__.py": "",
        "top/server/errors.py": "class Oops(Exception): ...\n",
        "top/server/app.py": "from ..jobs import runner\n",
    }
    modules = discover(_tree(tmp_path / "layers", files), ["top"])
    graph = import_graph(modules)
    assert cycles_through(graph, graph) == []  # no module cycle...
    packages = package_graph(modules, graph)
    assert cycles_through(packages, ["top.jobs"]) == ["top.jobs -> top.server -> top.jobs"]
    # control: server no longer importing jobs leaves parent <-> child edges only
    files["top/server/app.py"] = "from top import config\n"
    modules = discover(_tree(tmp_path / "layered", files), ["top"])
    packages = package_graph(modules, import_graph(modules))
    assert cycles_through(packages, packages) == []


def test_checker_sees_a_bench_importing_tests(tmp_path: Path) -> None:
    tests_dir = _tree(tmp_path / "tests", {"localcloud/test_cluster.py": "", "conftest.py": ""})
    bad = _tree(tmp_path / "bench", {"bad.py": "from test_cluster import FakeS3\n"}) / "bad.py"
    good = _tree(tmp_path / "bench", {"good.py": "from localcloud.testing import FolderS3\n"})
    assert imports_from_tests(bad, tests_dir) == {"test_cluster.FakeS3"}
    assert imports_from_tests(good / "good.py", tests_dir) == set()


def test_checker_sees_sys_path_edits_not_mentions(tmp_path: Path) -> None:
    source = _tree(
        tmp_path,
        {
            "edits.py": (
                "import sys\n"
                "print('sys.path.insert(0, x)')\n"
                "sys.path.insert(0, '.')\n"
                "sys.path[:0] = ['.']\n"
                "sys.path += ['.']\n"
                "found = sys.path.index('.')\n"
            )
        },
    )
    assert sys_path_edits(source / "edits.py") == [3, 4, 5]
