"""fewclick's packages stand in layers, and its modules import one another without a cycle.

Every import counts: at module level, in class bodies and inside functions (an import
inside a function that reaches up is the same dependency, only hidden). The one exception
is an import under ``if TYPE_CHECKING:``, which never runs.

A module may import the modules of its own package and of the packages in the layers below
its own; an import of a package in its own layer or above is named with its line. The
layers are the picture in ``docs/architecture.md``, which names every package below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "fewclick"
ARCHITECTURE = PACKAGE.parents[1] / "docs" / "architecture.md"

#: Lowest first. A package (or top-level module) imports only from the layers below its own.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("extras",),
    ("types",),
    ("io", "metrics", "crops", "brush", "outline"),
    ("draw", "data", "simulate", "quality"),
    ("models",),
    ("predict", "train"),
    ("protocols",),
    ("active", "batch", "demo"),
    ("wire",),
    ("server", "client"),
    ("cli",),
    ("__main__",),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def imports(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, imported name)`` for every import in ``source`` that can run: the module body,
    class bodies and function bodies, but not the body of an ``if TYPE_CHECKING:``.
    Relative imports are resolved against ``package`` (the module's own package)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for other in node.orelse:
                visit(other)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # ``from fewclick import train`` imports the subpackage itself
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def _modules() -> dict[str, Path]:
    """fewclick's module names -> their files (the database migrations aside: alembic's)."""
    return {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
        if "migrations" not in p.parts
    }


def _graph() -> dict[str, dict[str, int]]:
    """module -> {fewclick module it imports: the first line}, its own package's
    ``__init__`` modules left out (importing a submodule runs them anyway)."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        edges: dict[str, int] = {}
        for line, name in imports(path.read_text(), package):
            while name and name not in modules:  # fewclick.server.store.StoreError -> ...store
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                edges.setdefault(name, line)
        graph[module] = edges
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as one
    cycle through its first module: ``[a, b, ..., a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_cycle_through(sorted(component), graph))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _cycle_through(component: list[str], graph: dict[str, dict[str, int]]) -> list[str]:
    """A shortest path from the component's first module back to itself."""
    inside, start = set(component), component[0]
    parent: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if w in inside and w not in parent:
                    parent[w] = v
                    following.append(w)
        frontier = following
    return component


def test_every_package_has_a_layer() -> None:
    tops = {_top(m) for m in _modules()} - {""}
    missing = sorted(tops - set(LAYER_OF))
    assert not missing, f"{missing} belong to no layer: add them to LAYERS and docs/architecture.md"


def test_no_module_imports_its_own_layer_or_above() -> None:
    bad = []
    graph = _graph()
    for module, edges in sorted(graph.items()):
        here = _top(module)
        for other, line in sorted(edges.items()):
            there = _top(other)
            if there and there != here and here in LAYER_OF and LAYER_OF[there] >= LAYER_OF[here]:
                where = "above" if LAYER_OF[there] > LAYER_OF[here] else "in the same layer as"
                bad.append(f"{module} line {line} imports {other} ({there}/ is {where} {here}/)")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_import_cycle() -> None:
    found = cycles(_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_architecture_page_names_every_layer() -> None:
    if not ARCHITECTURE.is_file():
        pytest.fail(f"{ARCHITECTURE} is missing: it draws the layers this test checks")
    text = ARCHITECTURE.read_text()
    missing = [name for name in LAYER_OF if f"`{name}`" not in text]
    assert not missing, f"docs/architecture.md does not name {missing} (as `name`)"


def test_the_check_sees_every_import() -> None:
    """Module level, relative, inside functions and class bodies; not under TYPE_CHECKING."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import fewclick.train.cpr\n"
        "from ..train.segment import x\n"
        "if TYPE_CHECKING:\n    from fewclick.server import store\nelse:\n    import fewclick.io\n"
        "def f():\n    from fewclick.protocols import detect\n"
        "class A:\n    from . import sam\n"
    )
    assert imports(source, "fewclick.predict") == [
        (1, "typing.TYPE_CHECKING"),
        (2, "fewclick.train.cpr"),
        (3, "fewclick.train.segment.x"),
        (7, "fewclick.io"),
        (9, "fewclick.protocols.detect"),
        (11, "fewclick.predict.sam"),
    ]


def test_the_check_finds_a_cycle() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []
