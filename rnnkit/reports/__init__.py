"""Reports: one `Report` value per run, rendered to Markdown and to self-contained HTML.

    report.py     the `Report` value and its blocks (Text, Code, Table, Image, Figures, Section)
    markdown.py   a Report as `report.md`
    html.py       a Report as `report.html` (images embedded), and the page's building blocks
    figures.py    plots (training curves, confusion matrix) and `save_figure` (Agg, no pyplot)

Generic: nothing here names a task. A task builds its `Report` (its metrics, its sections) in
`rnnkit/tasks/<task>/report.py` and calls `write_report`.
"""

from __future__ import annotations

from pathlib import Path

from rnnkit.reports.html import write_html
from rnnkit.reports.markdown import write_markdown
from rnnkit.reports.report import Code, Figures, Image, Report, Section, Table, Text

__all__ = [
    "Code",
    "Figures",
    "Image",
    "Report",
    "Section",
    "Table",
    "Text",
    "write_report",
]


def write_report(run_dir: str | Path, report: Report) -> tuple[Path, Path]:
    """Write `report` as `run_dir/report.md` and `run_dir/report.html`; returns both paths."""
    return write_markdown(run_dir, report), write_html(run_dir, report)
