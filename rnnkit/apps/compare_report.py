"""What `rnnkit compare` writes: `compare.json`, `compare.md`, the terminal table and the charts.

Charts are built like `rnnkit.reports.figures`' plots: a `Figure` on an Agg canvas (no pyplot),
written atomically; `curves.png` holds every cell's learning curves, `summary.png` the headline
numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rnnkit.io import atomic_write_json, atomic_write_text
from rnnkit.reports.figures import pretty_name, save_figure
from rnnkit.run_folder import read_records

#: one colour per cell, fixed so RNN/LSTM/GRU look the same in every chart.
CELL_COLORS = {"rnn": "#1f77b4", "lstm": "#d62728", "gru": "#2ca02c"}
_OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

Curves = Mapping[str, Sequence[tuple[int, Sequence[Mapping[str, Any]]]]]


def _color(cell: str, index: int) -> str:
    return CELL_COLORS.get(cell, _OTHER_COLORS[index % len(_OTHER_COLORS)])


def plot_curves(curves: Curves, metric: str, path: str | Path, *, title: str = "") -> Path:
    """Validation loss and `metric` of every cell, by epoch (left) and by seconds (right).

    Args:
        curves: cell -> [(seed, metrics.jsonl records)]; several seeds of a cell share a colour.
        metric: the validation key of the lower row, e.g. "val_accuracy".
        path: where to write the PNG.
        title: the figure's title.

    Returns:
        `path` as a Path.
    """
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex="col")
    rows = (("val_loss", "validation loss"), (metric, pretty_name(metric)))
    for i, (cell, seeds) in enumerate(curves.items()):
        color = _color(cell, i)
        for j, (seed, records) in enumerate(seeds):
            label = cell if len(seeds) == 1 else f"{cell} (seed {seed})"
            for row, (key, _) in enumerate(rows):
                points = [r for r in records if isinstance(r.get(key), int | float)]
                for col, x_key in enumerate(("epoch", "seconds")):
                    axes[row][col].plot(
                        [r[x_key] for r in points],
                        [r[key] for r in points],
                        color=color,
                        marker="o" if len(points) <= 40 else None,
                        markersize=3,
                        linewidth=1.6,
                        alpha=1.0 if len(seeds) == 1 else 0.75,
                        linestyle=("-", "--", ":", "-.")[j % 4],
                        label=label if row == 0 and col == 0 else None,
                    )
    for row, (_, name) in enumerate(rows):
        axes[row][0].set_ylabel(name, fontsize=11)
    axes[1][0].set_xlabel("epoch", fontsize=11)
    axes[1][0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1][1].set_xlabel("seconds of training", fontsize=11)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=9)
    axes[0][0].legend(fontsize=9, frameon=False)
    fig.suptitle(title or "Learning curves", fontsize=13)
    return save_figure(fig, path)


def plot_summary(report: Mapping[str, Any], path: str | Path) -> Path:
    """Bars per cell: the primary test metric, training time and throughput (min–max whiskers).

    Args:
        report: the `compare.json` content.
        path: where to write the PNG.

    Returns:
        `path` as a Path.
    """
    primary = report["primary_metric"]
    panels = (
        (f"metrics.{primary}", report["metric_labels"][primary]),
        ("train_seconds", "training time (s)"),
        ("throughput", f"training {report['throughput_unit']}"),
    )
    cells = list(report["results"])
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels))
    for ax, (key, name) in zip(axes, panels, strict=True):
        stats = [report["results"][c]["summary"].get(key) for c in cells]
        means = [s["mean"] if s else 0.0 for s in stats]
        low = [s["mean"] - s["min"] if s else 0.0 for s in stats]
        high = [s["max"] - s["mean"] if s else 0.0 for s in stats]
        ax.bar(
            cells,
            means,
            yerr=[low, high],
            capsize=4,
            color=[_color(c, i) for i, c in enumerate(cells)],
        )
        for x, (m, up) in enumerate(zip(means, high, strict=True)):
            ax.annotate(
                f"{m:,.0f}" if abs(m) >= 1000 else f"{m:.4g}", (x, m + up), ha="center",
                va="bottom", fontsize=9, xytext=(0, 3), textcoords="offset points",
            )  # fmt: skip
        if key.startswith("metrics."):  # differences live near the top; do not start at 0
            top, bottom = max(s["max"] for s in stats if s), min(s["min"] for s in stats if s)
            pad = max((top - bottom) * 0.6, abs(top) * 0.01, 1e-6)
            ax.set_ylim(bottom - pad, top + pad)
        ax.set_title(name, fontsize=11)
        ax.grid(alpha=0.3, axis="y")
        ax.tick_params(labelsize=9)
    seeds = report["seeds"]
    fig.suptitle(
        f"{report['data']}: {len(seeds)} seed{'s' if len(seeds) > 1 else ''} per cell",
        fontsize=12,
    )
    return save_figure(fig, path)


def write_outputs(out: Path, report: Mapping[str, Any], *, curve_metric: str) -> None:
    """`compare.json`, `compare.md` and the charts into `out`.

    Args:
        out: the comparison's folder, holding each run's folder (`report`'s `run` keys).
        report: the `compare.json` content.
        curve_metric: the validation key drawn under the loss (the task's `curve_metric`).
    """
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "compare.json", report)
    curves = {
        cell: [(r["seed"], read_records(out / r["run"])) for r in entry["runs"]]
        for cell, entry in report["results"].items()
    }
    plot_curves(curves, curve_metric, out / "curves.png", title=_title(report))
    plot_summary(report, out / "summary.png")
    atomic_write_text(out / "compare.md", markdown(report))


def _title(report: Mapping[str, Any]) -> str:
    return f"{' vs '.join(c.upper() for c in report['cells'])} on {report['data']}"


def table_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the summary table; with several seeds `mean ± std (min–max)`."""
    labels = report["metric_labels"]
    header = [
        "cell",
        *labels.values(),
        "parameters",
        "train time (s)",
        "epochs",
        f"train {report['throughput_unit']}",
        "latency b=1 (ms)",
        "latency b=64 (ms)",
    ]
    keys = [
        *(f"metrics.{k}" for k in labels),
        "parameters",
        "train_seconds",
        "epochs",
        "throughput",
        "latency_ms.batch_1",
        "latency_ms.batch_64",
    ]
    rows = []
    for cell, entry in report["results"].items():
        summary = entry["summary"]
        rows.append([cell, *(_cell(summary.get(k), k) for k in keys)])
    return header, rows


def _cell(stats: Mapping[str, Any] | None, key: str) -> str:
    if stats is None:
        return "—"
    digits = 4 if key.startswith("metrics.") else 1
    if key in ("parameters", "epochs", "throughput"):
        fmt = "{:,.0f}"
    elif key.startswith("latency"):
        fmt = "{:.2f}"
    else:
        fmt = f"{{:,.{digits}f}}"
    text = fmt.format(stats["mean"])
    if stats.get("std") is not None and stats["max"] != stats["min"]:
        text += f" ± {fmt.format(stats['std'])} ({fmt.format(stats['min'])}–"
        text += f"{fmt.format(stats['max'])})"
    return text


def format_table(report: Mapping[str, Any]) -> str:
    """The summary table as aligned plain text for the terminal."""
    header, rows = table_rows(report)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def markdown(report: Mapping[str, Any]) -> str:
    """`compare.md`: the table, what was held equal, and the charts."""
    header, rows = table_rows(report)
    seeds = report["seeds"]
    spread = (
        f"Each number is the mean over seeds {', '.join(map(str, seeds))}, then ± the sample "
        "standard deviation and (min–max)."
        if len(seeds) > 1
        else f"One training seed ({seeds[0]})."
    )
    budget = report["budget_minutes"]
    better = "higher" if report["higher_is_better"] else "lower"
    lines = [
        f"# {_title(report)}",
        "",
        f"Task {report['task']}; every cell trained with the same data, split, seed(s), size, "
        + (f"and a {budget:g}-minute budget per run" if budget else "and the task's epochs")
        + f". {spread} Test metric: {better} is better.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        "Train time includes each epoch's validation pass; throughput is the training steps' "
        f"{report['throughput_unit']} (median over epochs); latency is the median of "
        f"{report['latency_note']}.",
        "",
        f"Machine: {report['machine']['cpu']}, {report['machine']['cpus']} CPUs, "
        f"{report['machine']['torch_threads']} torch threads "
        f"({report['machine']['cpu_capability']}); torch {report['versions']['torch']}.",
        "",
        f"Settings beyond the task defaults: `{json.dumps(report['overrides'])}`.",
        "",
        "![learning curves](curves.png)",
        "",
        "![summary](summary.png)",
        "",
        "## Runs",
        "",
    ]
    for cell, entry in report["results"].items():
        for r in entry["runs"]:
            metrics = ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items())
            lines.append(
                f"- [{r['run']}]({r['run']}/report.md): {cell}, seed {r['seed']}: "
                f"{metrics}; {r['epochs']} epochs, {r['train_seconds']:.1f} s"
            )
    return "\n".join(lines) + "\n"
