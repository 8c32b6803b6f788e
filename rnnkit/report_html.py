"""Self-contained HTML reports: `report.html` beside every run's `report.md`, and the pieces the
quickstart's summary page is built from.

One file that opens from disk anywhere: PNG plots are embedded as base64 `data:` URIs, the CSS is
inline, there are no external URLs and no JavaScript (`<details>` folds the long tables). Every
string that comes from data or config goes through `html.escape`, so a review text or a column
name holding `<script>` is shown, never run. Built with the standard library only (`html`,
`base64`): the pages are a few tables and images, which a template engine would not make clearer.

Typical use, at the end of a run (the same arguments as `rnnkit.report.write_report`)::

    write_html_report(run_dir, title="LSTM on rotten-tomatoes", summary={...}, metrics=m,
                      records=records, images={"loss": "loss.png", "confusion": "confusion.png"})
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.io import atomic_write_text

__all__ = [
    "backtest_table",
    "details",
    "esc",
    "figures",
    "flatten",
    "image",
    "page",
    "pre",
    "render_run",
    "section",
    "table",
    "write_html_report",
]

logger = logging.getLogger(__name__)

_MISSING = "—"
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


def _text(value: Any) -> str:
    """One cell's text: numbers compact (4 significant digits), containers flattened."""
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return _MISSING if math.isnan(value) else f"{float(value):.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _cell(value: Any, tag: str = "td") -> str:
    numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    cls = ' class="num"' if numeric and tag == "td" else ""
    return f"<{tag}{cls}>{esc(_text(value))}</{tag}>"


def table(
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    *,
    row_classes: Sequence[str | None] | None = None,
) -> str:
    """An HTML table; every cell is escaped.

    Args:
        header: the column names.
        rows: the cells, row by row; numbers get 4 significant digits, None shows as "—".
        row_classes: a CSS class per row ("good", "bad" or None).
    """
    head = "<tr>" + "".join(_cell(h, "th") for h in header) + "</tr>"
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes is not None else None
        cells = "".join(_cell(value) for value in row)
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


# ------------------------------------------------------------------------------ metric sections


def _classification(metrics: Mapping[str, Any]) -> str:
    shown = {"per_class", "confusion", "classes"}
    labels = {
        "accuracy": "accuracy",
        "macro_f1": "macro-F1",
        "ece": "expected calibration error",
        "n": "test samples",
    }
    rows = [(labels.get(k, k), v) for k, v in metrics.items() if k not in shown]
    out = [table(["metric", "value"], rows)] if rows else []
    per_class = metrics.get("per_class")
    if per_class:
        rows = [
            [name, m.get("precision"), m.get("recall"), m.get("f1"), m.get("support")]
            for name, m in per_class.items()
        ]
        out.append(
            section("Per class", table(["class", "precision", "recall", "F1", "support"], rows), 3)
        )
    confusion = metrics.get("confusion")
    if confusion:
        classes = list(metrics.get("classes") or per_class or range(len(confusion)))
        rows = [[name, *row] for name, row in zip(classes, confusion, strict=False)]
        out.append(
            section(
                "Confusion (rows = true, columns = predicted)",
                table(["true \\ predicted", *classes], rows),
                3,
            )
        )
    return "\n".join(out)


def backtest_table(backtest: Mapping[str, Any]) -> str:
    """A forecaster backtest's methods side by side: one row per method, one column per metric.

    Args:
        backtest: `run_backtest`'s result (`{"model": {"mae": ...}, "seasonal_naive": {...}}`).
    """
    methods = [m for m in ("model", "streaming", "naive", "seasonal_naive") if m in backtest]
    columns = [
        c
        for c in ("mae", "rmse", "smape", "mase", "coverage", "pinball")
        if any(c in backtest[m] for m in methods)
    ]
    rows = [[m, *(backtest[m].get(c) for c in columns)] for m in methods]
    header = ["method", *(c.upper() if c != "smape" else "sMAPE %" for c in columns)]
    return table(header, rows)


def _records(records: Sequence[Mapping[str, Any]]) -> str:
    columns: list[str] = ["epoch"] if any("epoch" in r for r in records) else []
    for record in records:
        columns += [k for k in record if k not in columns]
    return table(columns, [[r.get(c) for c in columns] for r in records])


def _read_config(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


# ------------------------------------------------------------------------------------ run pages


def render_run(
    run_dir: str | Path,
    *,
    title: str,
    summary: Mapping[str, object],
    metrics: Mapping[str, Any] | None,
    records: Sequence[Mapping[str, Any]],
    images: Mapping[str, str],
    sections: Sequence[tuple[str, str]] = (),
) -> str:
    """The HTML of a run's report; see `write_html_report`."""
    run_dir = Path(run_dir)
    body = []
    if summary:
        body.append(section("Run", table(["key", "value"], list(summary.items()))))
    if metrics is not None:
        body.append(section("Test metrics", _classification(metrics) or "<p>None.</p>"))
    body += [section(heading, html_body) for heading, html_body in sections]
    if images:
        parts = []
        for alt, target in images.items():
            path = Path(target)
            parts.append(image(path if path.is_absolute() else run_dir / path, alt, alt))
        body.append(section("Plots", figures(*parts)))
    if records:
        epochs = details(
            f"per-epoch table ({len(records)} epochs)", _records(records), open=len(records) <= 20
        )
    else:
        epochs = "<p>No epochs recorded.</p>"
    body.append(section("Training", epochs))
    config = _read_config(run_dir)
    if config is not None:
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
        body.append(section("Config", "\n".join(parts)))
    return page(title, body)


def write_html_report(
    run_dir: str | Path,
    *,
    title: str,
    summary: Mapping[str, object],
    metrics: Mapping[str, Any] | None,
    records: Sequence[Mapping[str, Any]],
    images: Mapping[str, str],
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write `run_dir/report.html`: the run, its metrics, extra sections, plots, epochs, config.

    Takes `rnnkit.report.write_report`'s arguments so a task writes both reports from the same
    values. The images are embedded, so the file can be mailed or opened from anywhere; the config
    comes from the run's `config.json` as dotted keys (folded).

    Args:
        run_dir: the run folder (holds the images and `config.json`).
        title: the page's heading.
        summary: facts about the run (key -> value).
        metrics: test metrics (classification metrics get per-class and confusion tables), or
            None to leave the section out.
        records: `metrics.jsonl` lines, one per epoch (folded table).
        images: alt text -> image path relative to `run_dir` (or absolute).
        sections: (heading, HTML) pairs placed after the metrics, e.g. a backtest table built
            with `backtest_table` or a sample wrapped in `pre`; the HTML is not escaped again.

    Returns:
        The path of `report.html`.
    """
    path = Path(run_dir) / "report.html"
    atomic_write_text(
        path,
        render_run(
            run_dir,
            title=title,
            summary=summary,
            metrics=metrics,
            records=records,
            images=images,
            sections=sections,
        ),
    )
    return path
