"""The layers stay apart: ``predict/`` never imports ``train/`` and ``train/`` never imports
``predict/`` at module level (what both need lives in ``models/`` or ``fewclick.crops``).

A training loop may still import a predictor inside a function where it genuinely needs
one (the detector's validation does); only module-level imports are checked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "fewclick"
FORBIDDEN = {"predict": "fewclick.train", "train": "fewclick.predict"}


def module_level_imports(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, imported name)`` for every import that runs when module ``source`` is imported:
    the module body and the blocks and class bodies in it, not function bodies. Relative
    imports are resolved against ``package`` (the module's own package)."""
    found: list[tuple[int, str]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                # ``from fewclick import train`` imports the subpackage itself
                found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit([n for n in getattr(node, field, []) if isinstance(n, ast.AST)])

    visit(ast.parse(source).body)
    return found


def _modules() -> list[Path]:
    return sorted(p for layer in FORBIDDEN for p in (PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_predict_and_train_do_not_import_each_other(path: Path) -> None:
    layer = path.relative_to(PACKAGE).parts[0]
    package = ".".join(("fewclick",) + path.relative_to(PACKAGE).parent.parts)
    forbidden = FORBIDDEN[layer]
    bad = [
        f"line {line}: imports {name}"
        for line, name in module_level_imports(path.read_text(), package)
        if name == forbidden or name.startswith(forbidden + ".")
    ]
    module = ".".join(("fewclick",) + path.relative_to(PACKAGE).with_suffix("").parts)
    assert not bad, f"{module} ({layer}/) must not import {forbidden} at module level: " + "; ".join(bad)


def test_the_check_sees_imports() -> None:
    """The parser finds module-level imports of every form and skips function bodies."""
    source = (
        "import fewclick.train.cpr\n"
        "from fewclick.train import detect\n"
        "from ..train.segment import x\n"
        "try:\n    from fewclick import train\nexcept ImportError:\n    pass\n"
        "def f():\n    from fewclick.train import cpr\n"
    )
    assert module_level_imports(source, "fewclick.predict") == [
        (1, "fewclick.train.cpr"),
        (2, "fewclick.train.detect"),
        (3, "fewclick.train.segment.x"),
        (5, "fewclick.train"),
    ]


def _server_graph() -> dict[str, set[str]]:
    """fewclick.server's modules -> the server modules each imports at module level."""
    root = PACKAGE / "server"
    names = {
        ".".join(("fewclick",) + p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__"): p
        for p in root.rglob("*.py")
        if "migrations" not in p.parts
    }
    graph: dict[str, set[str]] = {}
    for module, path in names.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        found = set()
        for _, name in module_level_imports(path.read_text(), package):
            while name and name not in names:  # fewclick.server.store.StoreError -> fewclick.server.store
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
        graph[module] = found
    return graph


def test_the_server_modules_import_one_another_without_a_cycle():
    """A cycle at module level breaks ``fewclick serve`` when the wrong module comes first
    (app -> store -> accounts -> store: "partially initialized module"), though tests that
    happen to import another module first pass."""
    graph = _server_graph()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                cycle = path[path.index(other) :] + [other]
                raise AssertionError("module-level import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, path + [other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
