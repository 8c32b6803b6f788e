"""README.md's Python examples run as written.

Every fenced ```python block with an `import rnnkit` line is run, in order, each in a fresh
namespace, in an empty folder (so `runs/` lands there). Blocks that only show the API on data
that must be fetched or a run folder that must exist (no `import rnnkit` line) are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rnnkit.tasks import TASKS

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def runnable_blocks(text: str) -> list[tuple[int, str]]:
    """(line of the fence, code) of each ```python block that has an `import rnnkit` line."""
    blocks = []
    for match in FENCE.finditer(text):
        code = match.group(1)
        if "import rnnkit" in code.splitlines():
            blocks.append((text.count("\n", 0, match.start()) + 1, code))
    return blocks


BLOCKS = runnable_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_shows_training_from_python_for_every_task() -> None:
    trained = " ".join(code for _, code in BLOCKS)
    for task in TASKS:
        assert re.search(rf'rnnkit\.train\(\s*"{re.escape(task)}"', trained), task


def test_blocks_are_found_only_where_rnnkit_is_imported() -> None:
    text = "```python\nimport rnnkit\nx = 1\n```\n\n```python\nfrom rnnkit import load\n```\n"
    assert runnable_blocks(text) == [(1, "import rnnkit\nx = 1\n")]


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"line-{line}" for line, _ in BLOCKS])
def test_readme_block_runs(line: int, code: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{README}:{line}", "exec"), {"__name__": "readme"})
    assert list((tmp_path / "runs").iterdir())  # each example trains a run
