"""A `Report` as one self-contained HTML page: `report.html` beside every run's `report.md`, and
the building blocks other pages (the quickstart's summary) are made of.

One file that opens from disk anywhere: PNG plots are embedded as base64 `data:` URIs, the CSS is
inline, there are no external URLs and no JavaScript (`<details>` folds the long tables). Every
string that comes from data or config goes through `html.escape`, so a review text or a column
name holding `<script>` is shown, never run. Built with the standard library only (`html`,
`base64`): the pages are a few tables and images, which a template engine would not make clearer.

Typical use, at the end of a run (the same `Report` that `rnnkit.reports.markdown` writes)::

    write_html(run_dir, Report(title="LSTM on rotten-tomatoes", summary={...}, metrics={...},
                               records=records, images={"loss": "loss.png"}))
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Mapping, Sequence
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
    is_number,
    records_table,
)

__all__ = [
    "details",
    "esc",
    "figures",
    "flatten",
    "image",
    "page",
    "pre",
    "render_blocks",
    "render_html",
    "section",
    "table",
    "write_html",
]

logger = logging.getLogger(__name__)

#: the page's name in a run folder.
REPORT_FILE = Files.REPORT_HTML
#: the run's config, shown folded at the end of its page.
CONFIG_FILE = Files.CONFIG

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
       max-width: 1040px; margin: 2em auto; padding: 0 1em; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-top: 1.2em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .93em; }
th, td { border: 1px solid #d0d0d0; padding: .3em .7em; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.good td { background: #eefbea; }
tr.bad td { background: #fdf0ee; }
figure { margin: 1em 0; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figures figure { flex: 1 1 440px; margin: .5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
pre { background: #f6f8fa; padding: .8em 1em; overflow-x: auto; white-space: pre-wrap;
      border-radius: 4px; font-size: .9em; }
details > summary { cursor: pointer; color: #0b5cad; margin: .5em 0; }
.muted { color: #666; }
a { color: #0b5cad; }
"""


# ---------------------------------------------------------------------------------- building blocks


def esc(value: Any) -> str:
    """`value` as text, HTML-escaped (quotes too, so it is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def _cell(value: Any, tag: str = "td") -> str:
    cls = ' class="num"' if is_number(value) and tag == "td" else ""
    return f"<{tag}{cls}>{esc(cell_text(value))}</{tag}>"


def table(
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    *,
    row_classes: Sequence[str | None] | None = None,
    row_headers: bool = False,
) -> str:
    """An HTML table; every cell is escaped.

    Args:
        header: the column names.
        rows: the cells, row by row; numbers get 4 significant digits, None shows as "—".
        row_classes: a CSS class per row ("good", "bad" or None).
        row_headers: the first cell of each row names the row (`<th>`).
    """
    head = "<tr>" + "".join(_cell(h, "th") for h in header) + "</tr>"
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes is not None else None
        cells = "".join(
            _cell(value, "th" if row_headers and j == 0 else "td") for j, value in enumerate(row)
        )
        body.append(f'<tr class="{esc(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table>"


def pre(text: str) -> str:
    """Preformatted, escaped text (generated samples, aligned tables)."""
    return f"<pre>{esc(text)}</pre>"


def section(heading: str, body: str, level: int = 2) -> str:
    """A heading (escaped) followed by already-built HTML."""
    return f"<h{level}>{esc(heading)}</h{level}>\n{body}"


def details(summary: str, body: str, *, open: bool = False) -> str:
    """A folded block (no JavaScript needed); `summary` is escaped."""
    return (
        f"<details{' open' if open else ''}><summary>{esc(summary)}</summary>\n{body}\n</details>"
    )


def image(path: str | Path, alt: str, caption: str | None = None) -> str:
    """`path` embedded as a data URI inside a <figure>; a note instead when the file is missing.

    Args:
        path: a PNG (or JPEG/SVG) file.
        alt: the alt text (escaped).
        caption: shown under the image (escaped); none by default.
    """
    path = Path(path)
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(
            f"{path}: cannot embed a {path.suffix or 'suffix-less'} file; give "
            f"one of {', '.join(sorted(_MIME))}"
        )
    if not path.is_file():
        logger.warning("report image %s does not exist (left out)", path)
        return f'<p class="muted">({esc(alt)}: image {esc(path.name)} is missing)</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption_html = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:{mime};base64,{data}" alt="{esc(alt)}">{caption_html}</figure>'


def figures(*parts: str) -> str:
    """Figures side by side where the page is wide enough, stacked where it is not."""
    return '<div class="figures">\n' + "\n".join(parts) + "\n</div>"


def page(title: str, body: Sequence[str]) -> str:
    """A whole HTML document: `title` (escaped) as <title> and <h1>, then the `body` parts."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def flatten(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested config -> (dotted key, value) pairs, the keys `--set` accepts."""
    out: list[tuple[str, Any]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out += flatten(value, f"{name}.")
        else:
            out.append((name, value))
    return out


# ------------------------------------------------------------------------------------ report pages


def _image(image_block: Image, base: Path | None) -> str:
    path = Path(image_block.path)
    if base is not None and not path.is_absolute():
        path = base / path
    return image(path, image_block.alt, image_block.caption)


def render_blocks(blocks: Sequence[Block], base: str | Path | None = None, level: int = 3) -> str:
    """The HTML of report blocks (`rnnkit.reports.report`); every string from them is escaped.

    Args:
        blocks: the blocks, in order.
        base: the folder relative image paths start from (a run folder); None: as they are.
        level: the heading level of a `Section` among `blocks` (its subsections go one deeper).
    """
    base = Path(base) if base is not None else None
    parts = []
    for block in blocks:
        if isinstance(block, Section):
            parts.append(
                section(block.heading, render_blocks(block.blocks, base, level + 1), level)
            )
        elif isinstance(block, Text):
            parts.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Code):
            parts.append(pre(block.text))
        elif isinstance(block, Table):
            parts.append(
                table(
                    block.header,
                    block.rows,
                    row_classes=block.row_classes,
                    row_headers=block.row_headers,
                )
            )
        elif isinstance(block, Image):
            parts.append(_image(block, base))
        elif isinstance(block, Figures):
            parts.append(figures(*(_image(b, base) for b in block.images)))
        else:
            raise TypeError(f"not a report block: {type(block).__name__}")
    return "\n".join(parts)


def _read_config(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def _config_section(config: Mapping[str, Any]) -> str:
    """The run config and resolved model as dotted `--set` keys, and the other facts, folded."""
    parts = []
    for key, heading in (("config", "run config"), ("model", "resolved model")):
        if isinstance(config.get(key), Mapping):
            rows = flatten(config[key])
            parts.append(details(heading, table(["key", "value"], rows), open=key == "config"))
    facts = [
        (k, v)
        for k, v in config.items()
        if k not in ("config", "model", "layout", "scaler", "series")
    ]
    parts.append(details("run facts", table(["key", "value"], flatten(dict(facts)))))
    return section("Config", "\n".join(parts))


def render_html(report: Report, run_dir: str | Path) -> str:
    """The page of `report`: the run, its test metrics, the task's sections, plots, epochs, config.

    Args:
        report: the run's report.
        run_dir: the run folder: relative image paths start there, and its `config.json` (when
            readable) is shown at the end as dotted keys (folded).
    """
    run_dir = Path(run_dir)
    body = []
    if report.summary:
        body.append(section("Run", table(["key", "value"], list(report.summary.items()))))
    if report.metrics is not None:
        rows = list(report.metrics.items())
        body.append(
            section("Test metrics", table(["metric", "value"], rows) if rows else "<p>None.</p>")
        )
    if report.sections:
        body.append(render_blocks(report.sections, run_dir, level=2))
    if report.images:
        pictures = [Image(target, alt, alt) for alt, target in report.images.items()]
        body.append(section("Plots", render_blocks([Figures(pictures)], run_dir)))
    if report.records:
        epochs = details(
            f"per-epoch table ({len(report.records)} epochs)",
            render_blocks([records_table(report.records)]),
            open=len(report.records) <= 20,
        )
    else:
        epochs = "<p>No epochs recorded.</p>"
    body.append(section("Training", epochs))
    config = _read_config(run_dir)
    if config is not None:
        body.append(_config_section(config))
    return page(report.title, body)


def write_html(run_dir: str | Path, report: Report) -> Path:
    """Write `run_dir/report.html` (see `render_html`); returns its path.

    The images are embedded, so the file can be mailed or opened from anywhere.
    """
    path = Path(run_dir) / REPORT_FILE
    atomic_write_text(path, render_html(report, run_dir))
    return path
