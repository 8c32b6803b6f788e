"""A `Report` as Markdown: `report.md` in the run folder, readable as plain text and on GitHub.

Sections, in order: the title; the run's facts as a key | value table; the test metrics (or "No
test metrics."); the task's own sections; the plots (before the per-epoch table, which can run to
hundreds of rows); the per-epoch table. Numbers have 4 significant digits; missing values are
"—". Written atomically (`rnnkit.io`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnkit.io import atomic_write_text
from rnnkit.layout import Files
from rnnkit.reports.report import (
    Block,
    Code,
    Figures,
    Image,
    Report,
    Section,
    Table,
    Text,
    cell_text,
    records_table,
)

__all__ = ["render_blocks", "render_markdown", "write_markdown"]

logger = logging.getLogger(__name__)

REPORT_FILE = Files.REPORT_MD


def _fmt(value: Any) -> str:
    """One table cell: `cell_text`, with Markdown table syntax escaped."""
    # A pipe ends a cell and a newline ends the row.
    return cell_text(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_fmt(h) for h in table.header) + " |"]
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    for row in table.rows:
        cells = [_fmt(v) for v in row]
        if table.row_headers and cells:
            cells[0] = f"**{cells[0]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _fence(text: str) -> str:
    """Three backticks, or one more than the longest run of backticks inside `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _image_target(run_dir: Path, target: str | Path) -> str:
    """A link target relative to the report; `<...>` keeps paths with spaces intact."""
    p = Path(target)
    if p.is_absolute():
        for base in (run_dir.absolute(), run_dir.resolve()):
            if p.is_relative_to(base):
                p = p.relative_to(base)
                break  # else: outside the run folder, keep the absolute path
    if not (run_dir / p).exists():
        logger.warning("report image %s does not exist (linked anyway)", run_dir / p)
    text = p.as_posix()
    return f"<{text}>" if " " in text else text


def _image(run_dir: Path, image: Image) -> list[str]:
    alt = str(image.alt).replace("[", "(").replace("]", ")")
    lines = [f"![{alt}]({_image_target(run_dir, image.path)})", ""]
    return lines + ([f"*{image.caption}*", ""] if image.caption else [])


def render_blocks(blocks: Sequence[Block], run_dir: str | Path, level: int = 3) -> list[str]:
    """Markdown lines of `blocks`; a `Section` gets a heading of `level` `#`s.

    Args:
        blocks: the report blocks (`rnnkit.reports.report`).
        run_dir: the folder the report is written to; image paths are made relative to it.
        level: the heading level of a section among `blocks`.
    """
    run_dir = Path(run_dir)
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Section):
            lines += [f"{'#' * level} {block.heading}", ""]
            lines += render_blocks(block.blocks, run_dir, level + 1)
        elif isinstance(block, Text):
            lines += [block.text, ""]
        elif isinstance(block, Code):
            fence = _fence(block.text)
            lines += [fence, block.text, fence, ""]
        elif isinstance(block, Table):
            lines += [*_table(block), ""]
        elif isinstance(block, Image):
            lines += _image(run_dir, block)
        elif isinstance(block, Figures):
            for image in block.images:
                lines += _image(run_dir, image)
        else:
            raise TypeError(f"not a report block: {type(block).__name__}")
    return lines


def render_markdown(report: Report, run_dir: str | Path) -> str:
    """The text of `report.md` for `report`, with image links relative to `run_dir`."""
    run_dir = Path(run_dir)
    lines = [f"# {report.title}", ""]
    if report.summary:
        lines += ["## Run", "", *_table(Table(["key", "value"], list(report.summary.items()))), ""]
    lines += ["## Test metrics", ""]
    if report.metrics:
        lines += [*_table(Table(["metric", "value"], list(report.metrics.items()))), ""]
    else:
        lines += ["No test metrics.", ""]
    lines += render_blocks(report.sections, run_dir, level=2)
    if report.images:
        lines += ["## Plots", ""]
        for alt, target in report.images.items():
            lines += _image(run_dir, Image(target, alt))
    lines += ["## Training", ""]
    if report.records:
        lines += [*_table(records_table(report.records)), ""]
    else:
        lines += ["No epochs recorded.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_markdown(run_dir: str | Path, report: Report) -> Path:
    """Write `run_dir/report.md` (the folder is created if missing); returns its path."""
    path = Path(run_dir) / REPORT_FILE
    atomic_write_text(path, render_markdown(report, run_dir))
    return path
