"""A reader can hold each piece of ``src/fewclick`` in mind: no function over ``MAX_FUNCTION``
lines and no module over ``MAX_MODULE`` (the database migrations aside: alembic writes them).
Each one over is named with its length."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "fewclick"
MAX_FUNCTION, MAX_MODULE = 80, 500


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function (nested ones too) longer than ``limit`` lines."""
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_is_over_80_lines() -> None:
    found = [
        f"{p.relative_to(PACKAGE)}: {name} ({n} lines)"
        for p in _sources()
        for name, n in long_functions(p.read_text(), MAX_FUNCTION)
    ]
    assert not found, f"functions over {MAX_FUNCTION} lines: " + "; ".join(found)


def test_no_module_is_over_500_lines() -> None:
    found = [
        f"{p.relative_to(PACKAGE)} ({n} lines)"
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE
    ]
    assert not found, f"modules over {MAX_MODULE} lines: " + "; ".join(found)


def test_the_check_sees_a_long_function() -> None:
    source = "def short():\n    pass\n\n\ndef long():\n" + "    x = 1\n" * 81
    assert long_functions(source, MAX_FUNCTION) == [("long", 82)]
