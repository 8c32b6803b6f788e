"""Task knowledge stays in `rnnkit/tasks/<task>/`; the layers below the tasks never reach up.

Outside the task folders, code reads a task's `TaskSpec` (`rnnkit.tasks.TASKS`) and never names a
task: no `if task == "forecasting"`, no table keyed by task names, no import of a task's modules.
The exceptions are listed in `NAMES_ALLOWED` with the reason for each.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rnnkit.tasks import TASKS

PACKAGE = Path(__file__).resolve().parents[1] / "rnnkit"
TASK_WORDS = {alias for spec in TASKS.values() for alias in spec.names}

#: files outside rnnkit/tasks/ that may spell a task's name, and why.
NAMES_ALLOWED = {
    # The quickstart's stage list names the tasks and datasets it runs (issue 13 allows apps to).
    "apps/quickstart.py",
    # A dataset says which task it serves (`rnnkit datasets list`), and `load_path(task=...)`
    # still accepts the task words users passed before data kinds had names.
    "data/registry.py",
    "data/types.py",
    "data/files.py",
}

#: modules below the tasks: they must not import the tasks, the run handle or what uses them.
LOW_LAYERS = ("data", "models", "text", "training", "reports", "export/hooks.py",
              "export/graphs.py", "config.py", "io.py", "errors.py", "model_file.py",
              "run_folder.py", "layout.py", "version.py", "serve/hooks.py")  # fmt: skip
UPPER = ("rnnkit.tasks", "rnnkit.run", "rnnkit.runs", "rnnkit.api", "rnnkit.apps", "rnnkit.cli")


def library_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "tasks" not in p.relative_to(PACKAGE).parts)


def docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def task_words_in(path: Path) -> list[tuple[int, str]]:
    """(line, word) of every string constant outside docstrings that is a task's name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = docstring_nodes(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and node.value in TASK_WORDS
    ]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("path", library_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_task_names_or_task_imports_outside_the_task_folders(path: Path) -> None:
    relative = path.relative_to(PACKAGE).as_posix()
    if relative not in NAMES_ALLOWED:
        assert task_words_in(path) == [], f"{relative} names a task; read its spec instead"
    reaching = [
        (line, name)
        for line, name in imported_modules(path)
        if name.startswith("rnnkit.tasks.") and name.split(".")[2] in _task_packages()
    ]
    assert reaching == [], f"{relative} imports a task's own modules"


@pytest.mark.parametrize(
    "path",
    [p for p in library_files() if p.relative_to(PACKAGE).as_posix().startswith(LOW_LAYERS)],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_low_layers_never_import_upward(path: Path) -> None:
    upward = [
        (line, name)
        for line, name in imported_modules(path)
        if any(name == top or name.startswith(top + ".") for top in UPPER)
    ]
    assert upward == [], f"{path.relative_to(PACKAGE)} imports {upward}"


def _task_packages() -> set[str]:
    return {p.name for p in (PACKAGE / "tasks").iterdir() if (p / "spec.py").is_file()}


def test_the_scan_sees_a_task_name_in_code_but_not_in_a_docstring(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text('"""Uses "forecasting" in prose."""\nif task == "forecasting":\n    pass\n')
    assert task_words_in(path) == [(2, "forecasting")]
