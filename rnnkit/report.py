"""Plots and the Markdown run report: loss curves, confusion matrices, `report.md`.

Figures are built on `matplotlib.figure.Figure` with an explicit Agg canvas instead of pyplot:
pyplot keeps a global registry of open figures and a global backend, so it leaks figures, is not
thread-safe (the server may render plots from several threads) and may try to open a display.
Nothing here touches `matplotlib.rcParams`; sizes and fonts are passed explicitly.

Every file is written atomically (`rnnkit.io`): a PNG is rendered into memory first, so a crash
mid-render never leaves a truncated image behind.

Typical use, at the end of a run::

    plot_loss(records, run_dir / "loss.png")
    plot_confusion(m["confusion"], m["classes"], run_dir / "confusion.png")
    write_report(run_dir, title="LSTM on rotten-tomatoes", summary={...}, metrics=m,
                 records=records, images={"loss": "loss.png", "confusion": "confusion.png"})
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rnnkit.io import atomic_write_bytes, atomic_write_text

__all__ = ["plot_confusion", "plot_loss", "write_report"]

logger = logging.getLogger(__name__)

_DPI = 120  # crisp on a laptop screen, small files (~40-80 kB)
_TRAIN_COLOR = "#1f77b4"
_VAL_COLOR = "#d62728"
_METRIC_COLOR = "#2ca02c"
# Validation metrics people look at first, in order; otherwise the first val_* key seen wins.
_PREFERRED_METRICS = ("val_accuracy", "val_macro_f1", "val_f1", "val_mase", "val_perplexity")
_MISSING = "—"


# --------------------------------------------------------------------------------------- helpers


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Render `fig` to PNG in memory, then write it atomically; the figure is released after."""
    path = Path(path)
    buf = io.BytesIO()
    try:
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas
        fig.savefig(buf, format="png", dpi=_DPI)
    finally:
        # A Figure made without pyplot is not registered anywhere; clearing drops its artists now
        # rather than at the next garbage collection.
        fig.clear()
    atomic_write_bytes(path, buf.getvalue())
    return path


def _number(value: Any, *, epoch: Any, key: str) -> float | None:
    """A record value as a float, None when missing (None or NaN)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        where = f"{epoch:g}" if isinstance(epoch, float) else epoch
        raise ValueError(f"record for epoch {where}: {key!r} must be a number, got {value!r}")
    value = float(value)
    return None if math.isnan(value) else value


def _series(
    records: Sequence[Mapping[str, Any]], epochs: list[float], key: str
) -> tuple[list[float], list[float]]:
    """(epochs, values) where `key` has a value; missing entries are dropped, not plotted as 0."""
    xs, ys = [], []
    for x, record in zip(epochs, records, strict=True):
        y = _number(record.get(key), epoch=x, key=key)
        if y is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys


def _pick_metric(records: Sequence[Mapping[str, Any]]) -> str | None:
    seen: list[str] = []
    for record in records:
        for key, value in record.items():
            if (
                key.startswith("val_")
                and key != "val_loss"
                and key not in seen
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                seen.append(key)
    for key in _PREFERRED_METRICS:
        if key in seen:
            return key
    return seen[0] if seen else None


def pretty_name(key: str) -> str:
    """'val_macro_f1' -> 'validation macro F1'."""
    words = key.split("_")
    if words and words[0] == "val":
        words[0] = "validation"
    return " ".join(
        {"f1": "F1", "mase": "MASE", "mae": "MAE", "rmse": "RMSE"}.get(w, w) for w in words
    )


# ------------------------------------------------------------------------------------ loss plot


def plot_loss(
    records: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    metric: str | None = None,
    title: str | None = None,
) -> Path:
    """Plot training and validation loss per epoch, and the main validation metric below.

    Epochs missing a value (None or NaN, e.g. validation run every few epochs) are skipped and the
    line joins the epochs that have one. With few epochs every point gets a marker, so a one-epoch
    run still shows its values. The epoch with the lowest validation loss is marked. When the
    loss spans more than two orders of magnitude the loss axis becomes logarithmic.

    Args:
        records: `metrics.jsonl` lines, one per epoch, e.g. `{"epoch": 1, "train_loss": 0.6,
            "val_loss": 0.5, "val_accuracy": 0.7, "lr": 1e-3}`. `epoch` defaults to the 1-based
            position.
        path: where to write the PNG.
        metric: the validation metric for the second panel; by default the first of
            val_accuracy, val_macro_f1, ... present, else the first other `val_*` key, else none.
        title: figure title; default "Training curves".

    Returns:
        `path` as a Path.

    Raises:
        ValueError: no records, neither `train_loss` nor `val_loss` in any record, a value that is
            not a number, or a `metric` no record has.
    """
    if not records:
        raise ValueError("records is empty: nothing to plot")
    epochs = []
    for i, record in enumerate(records):
        e = _number(record.get("epoch"), epoch=i + 1, key="epoch")
        epochs.append(float(i + 1) if e is None else e)
    train = _series(records, epochs, "train_loss")
    val = _series(records, epochs, "val_loss")
    if not train[0] and not val[0]:
        keys = sorted({k for r in records for k in r})
        raise ValueError(
            f"records have no 'train_loss' or 'val_loss' values to plot (keys: {keys})"
        )
    if metric is None:
        metric = _pick_metric(records)
    elif not any(metric in r for r in records):
        raise ValueError(f"metric {metric!r} is in no record")
    extra = _series(records, epochs, metric) if metric else ([], [])
    has_metric = bool(extra[0])

    few = len(records) <= 40
    style = {"marker": "o" if few else None, "markersize": 4, "linewidth": 1.8}

    fig = Figure(figsize=(7.5, 6.2 if has_metric else 4.2), layout="constrained")
    if has_metric:
        ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    else:
        ax, ax2 = fig.subplots(1, 1), None

    if train[0]:
        ax.plot(*train, color=_TRAIN_COLOR, label="train", **style)
    if val[0]:
        ax.plot(*val, color=_VAL_COLOR, label="validation", **style)
        best = int(np.argmin(val[1]))
        ax.plot(
            val[0][best], val[1][best], marker="*", markersize=14, color=_VAL_COLOR,
            markeredgecolor="black", linestyle="none",
            label=f"best validation {val[1][best]:.4g} (epoch {val[0][best]:g})",
        )  # fmt: skip
    losses = np.array(train[1] + val[1])
    if losses.min() > 0 and losses.max() / losses.min() > 100:
        ax.set_yscale("log")
        ax.set_ylabel("loss (log scale)", fontsize=11)
    else:
        ax.set_ylabel("loss", fontsize=11)
    ax.legend(fontsize=9, frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title(title or "Training curves", fontsize=13)

    bottom = ax
    if ax2 is not None:
        ax2.plot(*extra, color=_METRIC_COLOR, **style)
        ax2.set_ylabel(pretty_name(metric or ""), fontsize=11)
        ax2.grid(alpha=0.3)
        bottom = ax2
    bottom.set_xlabel("epoch", fontsize=11)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(set(epochs)) == 1:
        # A single epoch would otherwise get a zero-width x range centred on a fractional tick.
        bottom.set_xlim(epochs[0] - 1, epochs[0] + 1)
    for a in (ax, ax2):
        if a is not None:
            a.tick_params(labelsize=9)
    return save_figure(fig, path)


# ------------------------------------------------------------------------------- confusion plot


def _axis_labels(classes: Sequence[str], limit: int = 20) -> list[str]:
    """Class names short enough for an axis; the middle goes, since names often differ at the end.

    If shortening makes two labels equal, every label gets its index in front.
    """
    head = (limit - 1) // 2
    tail = limit - 1 - head
    names = [str(c) for c in classes]
    short = [n if len(n) <= limit else f"{n[:head]}…{n[-tail:]}" for n in names]
    if len(set(short)) < len(set(names)):
        short = [f"{i}: {s}" for i, s in enumerate(short)]
    return short


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    classes: Sequence[str],
    path: str | Path,
    normalize: bool = True,
    *,
    title: str | None = None,
) -> Path:
    """Draw a confusion matrix as a heat map with the numbers written in each cell.

    Args:
        confusion: (K, K) counts, rows = true class, columns = predicted class.
        classes: the K class names in index order (names over 20 characters lose their middle
            on the axes).
        path: where to write the PNG.
        normalize: colour by row-normalised fraction (recall per true class) and print the row
            percentage under each count; otherwise colour by raw count and print counts only.
            Normalising keeps a rare class readable next to a frequent one.
        title: figure title; default "Confusion matrix (n = N, accuracy A%)".

    Returns:
        `path` as a Path.

    Raises:
        ValueError: not square, size not matching `classes`, or negative / non-integer counts.
    """
    cm = np.asarray(confusion)
    k = len(classes)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion must be a square (K, K) matrix, got shape {cm.shape}")
    if cm.shape[0] != k:
        raise ValueError(f"confusion is {cm.shape[0]}x{cm.shape[1]} but there are {k} classes")
    if k == 0:
        raise ValueError("classes is empty: nothing to plot")
    if cm.dtype.kind not in "iu" and not (
        cm.dtype.kind == "f" and np.isfinite(cm).all() and (cm == np.round(cm)).all()
    ):
        raise ValueError(f"confusion must hold whole-number counts, got dtype {cm.dtype}")
    cm = cm.astype(np.int64)
    if (cm < 0).any():
        raise ValueError("confusion holds a negative count")

    support = cm.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(support > 0, cm / support, 0.0)
    shade = fraction if normalize else cm.astype(np.float64)
    vmax = 1.0 if normalize else max(float(cm.max()), 1.0)

    # Grow with K so cells keep room for two lines of text; shrink the text past ~6 classes.
    side = min(max(4.8, 0.75 * k + 3.0), 12.0)
    cell_font = 12 if k <= 4 else 10 if k <= 7 else 8
    tick_font = 10 if k <= 7 else 9
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shade, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    cbar = fig.colorbar(image, ax=ax, shrink=0.8)
    cbar.set_label("fraction of true class" if normalize else "count", fontsize=10)
    cbar.ax.tick_params(labelsize=9)

    for i in range(k):
        for j in range(k):
            if normalize:
                pct = f"{100 * fraction[i, j]:.0f}%" if support[i, 0] else _MISSING
                text = f"{cm[i, j]}\n{pct}"
            else:
                text = str(cm[i, j])
            # Dark cells get white text: the Blues map passes mid-grey around 0.5 of its range.
            dark = shade[i, j] / vmax > 0.55
            ax.text(
                j, i, text, ha="center", va="center", fontsize=cell_font,
                color="white" if dark else "#1a1a1a",
            )  # fmt: skip

    labels = _axis_labels(classes)
    ax.set_xticks(range(k), labels, fontsize=tick_font)
    ax.set_yticks(range(k), labels, fontsize=tick_font)
    if k > 4 or max(len(s) for s in labels) > 8:
        ax.tick_params(axis="x", labelrotation=40)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    ax.set_xlabel("predicted", fontsize=11)
    ax.set_ylabel("true", fontsize=11)
    n = int(cm.sum())
    if title is None:
        acc = f", accuracy {100 * np.trace(cm) / n:.1f}%" if n else ""
        title = f"Confusion matrix (n = {n}{acc})"
    ax.set_title(title, fontsize=12)
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------- report.md


def _fmt(value: Any) -> str:
    """One table cell: numbers compact, containers flattened, Markdown table syntax escaped."""
    if value is None:
        text = _MISSING
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int | np.integer):
        text = str(int(value))
    elif isinstance(value, float | np.floating):
        text = _MISSING if math.isnan(value) else f"{float(value):.4g}"
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(_fmt(v) for v in value)
    else:
        text = str(value)
    # A pipe ends a cell and a newline ends the row.
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_fmt(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines.extend("| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows)
    return lines


def _classification_section(metrics: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    headline = [
        (label, metrics[key])
        for key, label in (
            ("accuracy", "accuracy"),
            ("macro_f1", "macro-F1"),
            ("ece", "expected calibration error"),
            ("n", "test samples"),
        )
        if key in metrics
    ]
    shown = {"accuracy", "macro_f1", "ece", "n", "per_class", "confusion", "classes"}
    headline += [(k, v) for k, v in metrics.items() if k not in shown]
    if headline:
        out += [*_table(["metric", "value"], headline), ""]
    per_class = metrics.get("per_class")
    if per_class:
        out += ["### Per class", ""]
        rows = [
            [name, m.get("precision"), m.get("recall"), m.get("f1"), m.get("support")]
            for name, m in per_class.items()
        ]
        out += [*_table(["class", "precision", "recall", "F1", "support"], rows), ""]
    confusion = metrics.get("confusion")
    if confusion:
        classes = (
            metrics.get("classes")
            or list(per_class or [])
            or [str(i) for i in range(len(confusion))]
        )
        out += ["### Confusion (rows = true, columns = predicted)", ""]
        rows = [[f"**{name}**", *row] for name, row in zip(classes, confusion, strict=False)]
        out += [*_table(["true \\ predicted", *classes], rows), ""]
    return out


def _records_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    columns: list[str] = ["epoch"] if any("epoch" in r for r in records) else []
    for record in records:
        columns += [k for k in record if k not in columns]
    return _table(columns, [[r.get(c) for c in columns] for r in records])


def _image_target(run_dir: Path, target: str) -> str:
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


def write_report(
    run_dir: str | Path,
    *,
    title: str,
    summary: Mapping[str, object],
    metrics: Mapping[str, Any] | None,
    records: Sequence[Mapping[str, Any]],
    images: Mapping[str, str],
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write `run_dir/report.md`: what ran, how it scored, how training went, and the plots.

    Sections, in order: the title; a key | value table of `summary`; the test metrics (headline
    numbers, per-class precision/recall/F1/support and the confusion matrix when `metrics` comes
    from `rnnkit.tasks.classification.metrics.classification_metrics`, any other scalar metrics
    as key | value); the
    images (before the per-epoch table, which can run to hundreds of rows); the per-epoch table.
    Numbers are written with 4 significant digits; missing values as "—".

    Args:
        run_dir: the run folder; created if missing.
        title: the report's heading.
        summary: facts about the run, e.g. `{"task": "classifier", "data": "rotten-tomatoes",
            "model": "BiLSTM 2x128", "epochs": 10, "time": "3m 12s"}`.
        metrics: test metrics, or None when there was no test split.
        records: `metrics.jsonl` lines, one per epoch (may be empty).
        images: alt text -> image path relative to `run_dir`, e.g. `{"loss": "loss.png"}`.
        sections: (heading, Markdown) pairs added at the end, e.g. a language model's sample.

    Returns:
        The path of `report.md`.
    """
    run_dir = Path(run_dir)
    lines = [f"# {title}", ""]
    if summary:
        lines += ["## Run", "", *_table(["key", "value"], list(summary.items())), ""]
    lines += ["## Test metrics", ""]
    lines += _classification_section(metrics) if metrics else ["No test metrics.", ""]
    if images:
        lines += ["## Plots", ""]
        for alt, target in images.items():
            alt_text = str(alt).replace("[", "(").replace("]", ")")
            lines += [f"![{alt_text}]({_image_target(run_dir, target)})", ""]
    lines += ["## Training", ""]
    lines += [*_records_table(records), ""] if records else ["No epochs recorded.", ""]
    for heading, body in sections:
        lines += [f"## {heading}", "", body, ""]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(lines).rstrip("\n") + "\n")
    return path
