"""The import graph of `rnnkit/` is a DAG, and `import rnnkit` stays light.

Every `import` and `from ... import` inside `rnnkit/` counts, at module level or inside a
function (a lazy import that closes a loop is still a loop: it only moves the failure to run
time), except those under `if TYPE_CHECKING:`, which never run. `from rnnkit.a import b` is an
edge to `rnnkit.a.b` when that is a module, else to `rnnkit.a`. Importing a submodule also runs
its parents' `__init__`, which Python handles for packages whose `__init__` imports only
downward, so those implicit edges are not counted.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rnnkit"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """The rnnkit modules `path` imports, anywhere but under `if TYPE_CHECKING:`."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return {name for name in found if name in modules and name != me}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in files}
    return {module_name(path): imports_of(path, modules) for path in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycle_inside_rnnkit() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walker found the package
    assert cycles(graph) == []


def test_the_walker_finds_a_cycle_when_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_function_level_and_relative_imports_count(tmp_path: Path) -> None:
    root = tmp_path / "rnnkit"
    root.mkdir()
    path = root / "a.py"
    path.write_text("def f():\n    from rnnkit.b import x\n    from . import c\n")
    modules = {"rnnkit.a", "rnnkit.b", "rnnkit.c"}
    assert imports_of(path, modules, root) == {"rnnkit.b", "rnnkit.c"}
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import rnnkit.b\n")
    assert imports_of(path, modules, root) == set()


def test_import_rnnkit_is_light() -> None:
    code = "import sys, rnnkit; print([m for m in ('torch', 'rnnkit.tasks') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
