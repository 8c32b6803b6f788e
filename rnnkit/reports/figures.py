"""Plots for reports: training curves, confusion matrices, and `save_figure` for any other chart.

Figures are built on `matplotlib.figure.Figure` with an explicit Agg canvas instead of pyplot:
pyplot keeps a global registry of open figures and a global backend, so it leaks figures, is not
thread-safe (the server may render plots from several threads) and may try to open a display.
Nothing here touches `matplotlib.rcParams`; sizes and fonts are passed explicitly.

Every file is written atomically (`rnnkit.io`): a PNG is rendered into memory first, so a crash
mid-render never leaves a truncated image behind.

Which validation metric a curve shows is the caller's choice (a task's `curve_metric`): this
module knows records and numbers, not tasks. Typical use, at the end of a run::

    plot_loss(records, run_dir / "loss.png", metric="val_accuracy")
    plot_confusion(m["confusion"], m["classes"], run_dir / "confusion.png")
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

from rnnkit.io import atomic_write_bytes

__all__ = ["plot_confusion", "plot_loss", "pretty_name", "save_figure"]

logger = logging.getLogger(__name__)

_DPI = 120  # crisp on a laptop screen, small files (~40-80 kB)
_TRAIN_COLOR = "#1f77b4"
_VAL_COLOR = "#d62728"
_METRIC_COLOR = "#2ca02c"
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


def _first_metric(records: Sequence[Mapping[str, Any]]) -> str | None:
    """The first numeric `val_*` key other than `val_loss`, in record order; None if none."""
    for record in records:
        for key, value in record.items():
            if (
                key.startswith("val_")
                and key != "val_loss"
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                return key
    return None


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
        metric: the validation metric for the second panel, e.g. a task's `curve_metric`; by
            default the first `val_*` key other than `val_loss`, else none.
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
        metric = _first_metric(records)
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
