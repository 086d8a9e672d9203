"""Every SQL statement of ``src/fewclick`` is written in ``fewclick/server/storage/`` (one module
per resource), ``fewclick/server/db.py`` (the tables, the engine, the local user) or
``fewclick/server/migrations/``. Everywhere else names a storage function; each statement found
elsewhere is named with its file and line.

What counts as a statement (the rule, read from each module's AST):

- a call of a SQL construct imported from sqlalchemy: ``select``, ``update``, ``delete``,
  ``insert``, ``func.<anything>``, ``text``, ``exists``, ``case``, ``union``, ``union_all``,
  ``and_``, ``or_``, ``not_``, ``literal``. The names are resolved from the module's own imports
  (``from sqlalchemy import select as s``, ``import sqlalchemy as sa`` and ``sa.select``), so
  numpy's ``np.where`` or a method that happens to be called ``select`` or ``update`` (a dict's,
  a model's) does not count;
- a call of ``.execute(``, ``.scalars(`` or ``.scalar(`` on anything (a Session's or a
  Connection's statements; nothing else in fewclick has methods of those names);
- a call of ``.query(``, ``.get(``, ``.add(``, ``.add_all(``, ``.delete(``, ``.merge(`` or
  ``.flush(`` on a session: a name or attribute called ``session``, ``s``, ``db`` or ending in
  ``_session``; a name annotated ``Session``; a name bound by ``with <...Session...>(...) as
  name`` or ``with <...session...>() as name``; or ``object_session(...)`` itself. So
  ``dict.get``, ``set.add`` and shapely's ``STRtree.query`` do not count.

Transaction control (``commit``, ``rollback``, ``begin_nested``, ``refresh``, ``expire``) is the
caller's and is not a statement; nor is reading or setting attributes of rows already loaded.

The storage modules themselves import only what lies below them (:data:`STORAGE_IMPORTS`).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "fewclick"
#: where SQL may be written, relative to ``src/fewclick``
PLACES = ("server/storage/", "server/db.py", "server/migrations/")
#: what the storage modules may import of fewclick besides one another: the tables, the errors
#: they raise, a class's colour and the job status words
STORAGE_IMPORTS = (
    "fewclick.server.db",
    "fewclick.server.errors",
    "fewclick.server.convert",
    "fewclick.server.jobs.status",
    "fewclick.server.storage",
)
CONSTRUCTS = {
    "select",
    "update",
    "delete",
    "insert",
    "func",
    "text",
    "exists",
    "case",
    "union",
    "union_all",
    "and_",
    "or_",
    "not_",
    "literal",
}
ANY_RECEIVER = {"execute", "scalars", "scalar"}
SESSION_METHODS = {"query", "get", "add", "add_all", "delete", "merge", "flush"}
SESSION_NAMES = {"session", "s", "db"}


def _sqlalchemy_names(tree: ast.AST) -> tuple[dict[str, str], set[str]]:
    """``(local name -> construct, module aliases)`` the module imported from sqlalchemy."""
    constructs: dict[str, str] = {}
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in CONSTRUCTS:
                    constructs[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    modules.add(alias.asname or alias.name.split(".")[0])
    return constructs, modules


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a chain of names and attributes, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _session_names(tree: ast.AST) -> set[str]:
    """Names the module gives a session: annotated ``Session``, or bound by a ``with`` on a
    callable whose name says session."""
    names = set(SESSION_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            if "Session" in ast.unparse(node.annotation):
                target = node.arg if isinstance(node, ast.arg) else _dotted(node.target)
                names.add(target)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                call, var = item.context_expr, item.optional_vars
                if isinstance(call, ast.Call) and isinstance(var, ast.Name):
                    if "session" in _dotted(call.func).lower():
                        names.add(var.id)
    return names


def _is_session(node: ast.AST, names: set[str]) -> bool:
    if isinstance(node, ast.Call):
        return _dotted(node.func).split(".")[-1] == "object_session"
    if isinstance(node, ast.Name):
        return node.id in names or node.id.endswith("_session")
    if isinstance(node, ast.Attribute):
        return node.attr in SESSION_NAMES or node.attr.endswith("_session")
    return False


def statements(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for every SQL statement in ``source``, by the rule above."""
    tree = ast.parse(source)
    constructs, modules = _sqlalchemy_names(tree)
    sessions = _session_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = _dotted(f)
        head, _, rest = name.partition(".")
        if head in constructs and (not rest or constructs[head] == "func"):
            found.append((node.lineno, f"{constructs[head]}{'.' + rest if rest else ''}(...)"))
        elif head in modules and rest.split(".")[-1] in CONSTRUCTS | {"func"}:
            found.append((node.lineno, f"{name}(...)"))
        elif head in modules and ".func." in f".{rest}.":
            found.append((node.lineno, f"{name}(...)"))
        elif isinstance(f, ast.Attribute) and f.attr in ANY_RECEIVER:
            found.append((node.lineno, f".{f.attr}(...)"))
        elif isinstance(f, ast.Attribute) and f.attr in SESSION_METHODS and _is_session(f.value, sessions):
            found.append((node.lineno, f"{ast.unparse(f.value)}.{f.attr}(...)"))
    return sorted(found)


def _outside() -> dict[str, list[tuple[int, str]]]:
    """``file -> statements`` for every module of ``src/fewclick`` outside :data:`PLACES`."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(PLACES):
            continue
        found = statements(path.read_text())
        if found:
            out[rel] = found
    return out


def test_sql_is_written_only_in_storage() -> None:
    found = [f"src/fewclick/{rel}:{line}: {what}" for rel, hits in _outside().items() for line, what in hits]
    assert not found, (
        f"{len(found)} SQL statement(s) outside fewclick/server/storage/ (call a storage function):\n"
        + "\n".join(found)
    )


def test_storage_imports_only_what_lies_below_it() -> None:
    """The storage modules hold statements, not rules: they import no module that calls them
    (store, accounts, the jobs, the routes), so no import cycle can run through them."""
    bad = []
    for path in sorted((PACKAGE / "server" / "storage").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):  # relative: from . (storage) or from .. (above)
                names = [node.module or ""] if node.level < 2 else [f"fewclick.server.{node.module}"]
            else:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("fewclick") and not name.startswith(STORAGE_IMPORTS):
                    bad.append(f"{path.name}:{node.lineno} imports {name}")
    assert not bad, "storage imports above itself:\n" + "\n".join(bad)


def test_the_check_finds_a_planted_statement() -> None:
    """Each kind of statement is caught; numpy's ``where``, ``dict.get``, ``set.add``, a
    model's ``select`` and shapely's ``STRtree.query`` are not."""
    source = (
        "import numpy as np\n"
        "import sqlalchemy as sa\n"
        "from sqlalchemy import func, select as pick, update\n"
        "from sqlalchemy.orm import Session, object_session\n"
        "def f(session, rows: dict, seen: set, net, tree, conn, other: Session, image):\n"
        "    np.where(rows)\n"  # 6: not SQL
        "    rows.get(1)\n"  # 7: not SQL
        "    seen.add(2)\n"  # 8: not SQL
        "    net.select(3)\n"  # 9: not SQL
        "    tree.query(4)\n"  # 10: not SQL
        "    session.scalar(pick(Image).where(Image.id == 1))\n"  # 11: two
        "    conn.execute(update(Image))\n"  # 12: two
        "    func.count()\n"  # 13
        "    sa.select(Image)\n"  # 14
        "    session.get(Image, 1)\n"  # 15
        "    other.add(image)\n"  # 16
        "    object_session(image).flush()\n"  # 17
        "    with Session(bind) as own:\n"
        "        own.delete(image)\n"  # 19
        "    self.session.query(Image)\n"  # 20
    )
    lines = [line for line, _ in statements(source)]
    assert lines == [11, 11, 12, 12, 13, 14, 15, 16, 17, 19, 20], statements(source)


def test_the_check_reads_the_whole_package() -> None:
    """It sees fewclick's modules (not a vacuous pass over no files), and the storage package
    it allows holds statements."""
    files = list(PACKAGE.rglob("*.py"))
    assert len(files) > 100
    storage = PACKAGE / "server" / "storage"
    assert any(statements(p.read_text()) for p in storage.glob("*.py"))
