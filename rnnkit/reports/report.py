"""`Report`: what a run's report says, as one value that renders to Markdown and to HTML.

A task builds one `Report` at the end of a run; `rnnkit.reports.markdown` writes it as
`report.md` and `rnnkit.reports.html` as `report.html`, so the two files cannot drift apart (a
sample, a table or a heading is written once). The blocks are plain values, not markup: a
renderer decides how a `Code` block looks (a fenced block in Markdown, `<pre>` in HTML) and
escapes every string that came from data.

    Report(
        title="LSTM on rotten-tomatoes",
        summary={"data": "rotten-tomatoes", "epochs run": 3},
        metrics={"accuracy": 0.81},
        sections=[Section("Sample (temperature 0.8)", [Code(text)])],
        images={"loss": "loss.png"},
        records=records,
    )
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

#: how a missing value (None, NaN) reads in a table.
MISSING = "—"


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text (escaped in HTML)."""

    text: str


@dataclass(frozen=True)
class Code:
    """Preformatted text shown as it is: a generated sample, an aligned table."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of values; numbers get 4 significant digits and None shows as "—".

    Attributes:
        header: the column names.
        rows: the cells, row by row.
        row_classes: a mark per row ("good", "bad" or None): a colour in HTML, nothing in
            Markdown.
        row_headers: the first cell of each row names the row (bold in Markdown, `<th>` in HTML).
    """

    header: Sequence[Any]
    rows: Sequence[Sequence[Any]]
    row_classes: Sequence[str | None] | None = None
    row_headers: bool = False


@dataclass(frozen=True)
class Image:
    """A picture: embedded in HTML, linked in Markdown.

    Attributes:
        path: a PNG (or JPEG/SVG); relative to the run folder the report is rendered for, or
            absolute.
        alt: the alt text.
        caption: a line under the picture (HTML); none by default.
    """

    path: str | Path
    alt: str
    caption: str | None = None


@dataclass(frozen=True)
class Figures:
    """Pictures side by side where the page is wide enough, stacked where it is not."""

    images: Sequence[Image]


@dataclass(frozen=True)
class Section:
    """A heading and its blocks; a `Section` among the blocks is a subsection one level down."""

    heading: str
    blocks: Sequence[Block] = ()


Block: TypeAlias = "Text | Code | Table | Image | Figures | Section"


@dataclass(frozen=True)
class Report:
    """One run's report, in the order a reader wants it.

    Attributes:
        title: the heading (and the HTML page's title).
        summary: facts about the run, key -> value (task, data, model, epochs, time).
        metrics: headline test metrics, label -> value, shown as a key | value table under
            "Test metrics"; None when there was nothing held out to score.
        sections: what the task adds after the metrics (per-class tables, a backtest, a sample).
        images: alt text -> image path relative to the run folder (or absolute), under "Plots".
        records: `metrics.jsonl` lines, one per epoch, under "Training".
    """

    title: str
    summary: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] | None = None
    sections: Sequence[Section] = ()
    images: Mapping[str, str] = field(default_factory=dict)
    records: Sequence[Mapping[str, Any]] = ()


def cell_text(value: Any) -> str:
    """One table cell as text: numbers with 4 significant digits, containers flattened.

    Both renderers use it, so a number reads the same in `report.md` and `report.html`; each
    escapes the result for its own syntax.
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return MISSING if math.isnan(value) else f"{float(value):.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value)
    return str(value)


def is_number(value: Any) -> bool:
    """A number a table aligns right (not a bool)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def records_table(records: Sequence[Mapping[str, Any]]) -> Table:
    """The per-epoch records as one table: `epoch` first, then every key in order of appearance."""
    columns: list[str] = ["epoch"] if any("epoch" in r for r in records) else []
    for record in records:
        columns += [k for k in record if k not in columns]
    return Table(columns, [[r.get(c) for c in columns] for r in records])
