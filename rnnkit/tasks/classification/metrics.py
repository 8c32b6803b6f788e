"""Classification metrics in NumPy: accuracy, precision/recall/F1, macro-F1, confusion, ECE.

We write these by hand instead of depending on scikit-learn: they are a few lines of counting each,
small and specific enough to check completely, and the tests check them against examples computed
by hand. Every function returns plain Python ints, floats and lists, so results go straight into
JSON (`metrics.json`) and the report.

Inputs are integer class indices, `y_true` and `y_pred` of shape (N,), indexing into `classes`.

Zero-division conventions (the same as scikit-learn's `zero_division=0`):

- precision of a class that is never predicted is 0.0;
- recall of a class with no support (absent from `y_true`) is 0.0;
- F1 is 0.0 whenever precision + recall is 0;
- every class in `classes` counts in the macro average, present in the data or not. A test split
  that misses a class therefore lowers macro-F1; that is deliberate, since a model cannot be
  credited for a class it was never tested on.

Typical use::

    m = classification_metrics(y_true, y_pred, ["negative", "positive"], probs=probs)
    m["accuracy"], m["macro_f1"], m["per_class"]["positive"]["recall"], m["confusion"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "accuracy",
    "classification_metrics",
    "confusion_matrix",
    "expected_calibration_error",
    "macro_f1",
]

# Softmax rows sum to 1 up to rounding; float16/bfloat16 outputs carry ~1e-3 relative error.
_PROB_SUM_TOLERANCE = 1e-2


def _indices(name: str, values: ArrayLike) -> np.ndarray:
    """`values` as a 1-D int64 array, or a ValueError naming `name` and the offending entry."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        # Labels often arrive as floats (pandas columns with NaN elsewhere); accept whole numbers.
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size == 0:
            return arr.astype(np.int64)
        i = int(bad[0])
        raise ValueError(f"{name}[{i}] = {arr[i].item()!r} is not a whole-number class index")
    raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")


def _same_length(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both as int64 index arrays, checked to be non-empty and of equal length."""
    t = _indices("y_true", y_true)
    p = _indices("y_pred", y_pred)
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]}")
    if t.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty: metrics need at least one sample")
    return t, p


def _pair(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (y_true, y_pred) pair against `num_classes`; return them as int64 arrays."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"num_classes must be an int, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    t, p = _same_length(y_true, y_pred)
    for name, arr in (("y_true", t), ("y_pred", p)):
        bad = np.flatnonzero((arr < 0) | (arr >= num_classes))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{name}[{i}] = {int(arr[i])} is out of range: expected a class index in "
                f"0..{num_classes - 1} ({num_classes} classes)"
            )
    return t, p


def _check_classes(classes: Sequence[str]) -> list[str]:
    names = [str(c) for c in classes]
    if not names:
        raise ValueError("classes is empty: expected the list of class names, index order")
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"classes[{i}] = {name!r} repeats an earlier class name")
        seen.add(name)
    return names


def _confusion(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    # One bincount over the pair code true * k + pred: (k, k), rows = true, cols = predicted.
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1, support per class from a confusion matrix (zero-division -> 0.0)."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        # 2TP / (2TP + FP + FN) is the harmonic mean of precision and recall, computed exactly
        # from counts; predicted + support = 2TP + FP + FN.
        denom = predicted + support
        f1 = np.where(denom > 0, 2.0 * tp / denom, 0.0)
    return precision, recall, f1, support


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> list[list[int]]:
    """Count (true, predicted) pairs.

    Args:
        y_true: (N,) true class indices.
        y_pred: (N,) predicted class indices.
        num_classes: K; indices must lie in 0..K-1.

    Returns:
        (K, K) nested list of ints: `cm[i][j]` is the number of samples of true class i predicted
        as class j (rows = true, columns = predicted).

    Raises:
        ValueError: lengths differ, no samples, or an index outside 0..K-1.
    """
    t, p = _pair(y_true, y_pred, num_classes)
    return _confusion(t, p, int(num_classes)).tolist()


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of samples whose predicted class equals the true class.

    Args:
        y_true: (N,) true class indices.
        y_pred: (N,) predicted class indices.

    Raises:
        ValueError: lengths differ, no samples, or non-integer entries.
    """
    t, p = _same_length(y_true, y_pred)
    return float(np.mean(t == p))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over all `num_classes` classes.

    Classes absent from both `y_true` and `y_pred` count with F1 = 0.0 (see the module docstring),
    which is why the number of classes is an argument rather than inferred from the data.

    Args:
        y_true: (N,) true class indices.
        y_pred: (N,) predicted class indices.
        num_classes: K; indices must lie in 0..K-1.

    Raises:
        ValueError: lengths differ, no samples, or an index outside 0..K-1.
    """
    t, p = _pair(y_true, y_pred, num_classes)
    _, _, f1, _ = _per_class(_confusion(t, p, int(num_classes)))
    return float(f1.mean())


def expected_calibration_error(probs: ArrayLike, y_true: ArrayLike, bins: int = 10) -> float:
    """Expected calibration error of the top-class confidence (Guo et al., 2017).

    Samples are grouped by confidence (the largest probability) into `bins` equal-width bins
    (lo, hi] over [0, 1]; ECE is the sample-weighted mean over bins of
    |accuracy in the bin - mean confidence in the bin|. 0.0 is perfectly calibrated.

    Args:
        probs: (N, K) class probabilities (softmax outputs, rows summing to 1), not logits.
        y_true: (N,) true class indices in 0..K-1.
        bins: number of confidence bins, at least 1.

    Raises:
        ValueError: wrong shapes, lengths differ, probabilities outside [0, 1] or rows not
            summing to 1 (logits passed by mistake), or a bad `bins`.
    """
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    pr = np.asarray(probs, dtype=np.float64)
    if pr.ndim != 2 or pr.shape[1] < 1:
        raise ValueError(f"probs must have shape (N, K) with K >= 1, got shape {pr.shape}")
    t = _indices("y_true", y_true)
    if t.shape[0] != pr.shape[0]:
        raise ValueError(f"probs and y_true differ in length: {pr.shape[0]} vs {t.shape[0]}")
    if t.shape[0] == 0:
        raise ValueError("probs and y_true are empty: ECE needs at least one sample")
    k = pr.shape[1]
    bad = np.flatnonzero((t < 0) | (t >= k))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"y_true[{i}] = {int(t[i])} is out of range: expected a class index in 0..{k - 1} "
            f"(probs has {k} columns)"
        )
    bad_rows = np.flatnonzero(~np.isfinite(pr).all(axis=1) | (pr < 0).any(axis=1))
    if bad_rows.size:
        i = int(bad_rows[0])
        raise ValueError(f"probs row {i} has a negative or non-finite entry: {pr[i].tolist()}")
    sums = pr.sum(axis=1)
    bad_rows = np.flatnonzero(np.abs(sums - 1.0) > _PROB_SUM_TOLERANCE)
    if bad_rows.size:
        i = int(bad_rows[0])
        raise ValueError(
            f"probs row {i} sums to {sums[i]:.4g}, expected 1: pass softmax probabilities, "
            "not logits"
        )
    confidence = pr.max(axis=1)
    correct = (pr.argmax(axis=1) == t).astype(np.float64)
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    # searchsorted(side="left") puts a confidence equal to an edge into the bin that edge closes,
    # giving (lo, hi] bins; confidence 0 (only possible with K = 1 rows of 0) joins the first bin.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, int(bins) - 1)
    count = np.bincount(which, minlength=int(bins)).astype(np.float64)
    conf_sum = np.bincount(which, weights=confidence, minlength=int(bins))
    correct_sum = np.bincount(which, weights=correct, minlength=int(bins))
    # Sum over bins of (n_b / N) * |acc_b - conf_b| = sum |correct_b - conf_b| / N.
    return float(np.abs(correct_sum - conf_sum).sum() / count.sum())


def classification_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    classes: Sequence[str],
    *,
    probs: ArrayLike | None = None,
    bins: int = 10,
) -> dict[str, Any]:
    """Everything a classifier report shows, as a JSON-able dict.

    Args:
        y_true: (N,) true class indices into `classes`.
        y_pred: (N,) predicted class indices into `classes`.
        classes: the K class names, in index order (names must be distinct).
        probs: optional (N, K) class probabilities; when given, the result adds `"ece"`.
        bins: confidence bins for the ECE.

    Returns:
        `{"accuracy": float, "macro_f1": float,
        "per_class": {name: {"precision": float, "recall": float, "f1": float, "support": int}},
        "confusion": [[int]] (K, K) rows = true, cols = predicted, "classes": [str], "n": int}`
        plus `"ece": float` when `probs` is given.

    Raises:
        ValueError: lengths differ, no samples, an index outside 0..K-1, repeated or no class
            names, or bad `probs` (see `expected_calibration_error`).
    """
    names = _check_classes(classes)
    k = len(names)
    t, p = _pair(y_true, y_pred, k)
    cm = _confusion(t, p, k)
    precision, recall, f1, support = _per_class(cm)
    result: dict[str, Any] = {
        "accuracy": float(np.trace(cm) / t.shape[0]),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion": cm.tolist(),
        "classes": names,
        "n": int(t.shape[0]),
    }
    if probs is not None:
        pr = np.asarray(probs)
        if pr.ndim == 2 and pr.shape[1] != k:
            raise ValueError(f"probs has {pr.shape[1]} columns but there are {k} classes")
        result["ece"] = expected_calibration_error(pr, t, bins=bins)
    return result
