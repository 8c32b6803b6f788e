"""The shared protocol of the peer scripts: read the exported splits, score, write one result.

Imported by every peer script, in every peer environment, so it needs only the standard library
and NumPy (pandas where a forecasting peer already has it). It imports nothing of rnnkit: the
splits, origins and MASE denominators come from `export_splits.py`, computed by rnnkit's code, and
the metrics below repeat rnnkit's definitions (`rnnkit.tasks.forecasting.backtest.point_metrics`,
`rnnkit.tasks.classification.metrics`) so the numbers are comparable:

- forecasting, per series and target over every origin and horizon step: MAE, RMSE,
  sMAPE = 200 * mean(|y - f| / (|y| + |f|)) (0 where both are 0), MASE = MAE / the exported
  in-sample seasonal-naive MAE of the history before the test span; the table's figure is the
  mean over series (and targets) where defined, as rnnkit's `summarize` averages them.
- classification: accuracy and macro-F1 (per-class F1 is 0 when precision + recall is 0).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: where `export_splits.py` writes and the peer scripts read, relative to the repository root.
SPLITS = Path("runs/peers/splits")
#: where every script writes its one JSON result.
RESULTS = Path("runs/peers/results")

csv.field_size_limit(sys.maxsize)  # long reviews


# --- reading the exported splits ---------------------------------------------------------------


def read_classification(splits: Path, data: str) -> dict[str, Any]:
    """{"classes": [...], "train"/"validation"/"test": (texts, label ids)} of one dataset."""
    folder = splits / "classification" / data
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: run export_splits.py first (see README.md)")
    info = json.loads((folder / "classes.json").read_text(encoding="utf-8"))
    index = {c: i for i, c in enumerate(info["classes"])}
    out: dict[str, Any] = {"classes": info["classes"]}
    for part in ("train", "validation", "test"):
        with open(folder / f"{part}.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        out[part] = ([r["text"] for r in rows], np.array([index[r["label"]] for r in rows]))
    return out


def read_glove(splits: Path) -> tuple[list[str], np.ndarray]:
    """(words, (V, 50) float32 vectors) of GloVe 6B 50d as rnnkit reads it."""
    folder = splits / "glove-6b-50d"
    words = (folder / "words.txt").read_text(encoding="utf-8").split("\n")[:-1]
    vectors = np.load(folder / "vectors.npy")
    assert len(words) == len(vectors), (len(words), vectors.shape)
    return words, vectors


def read_forecasting(splits: Path, data: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """(protocol, long table with columns series, time, targets, covariates) of one dataset."""
    import pandas as pd

    folder = splits / "forecasting" / data
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: run export_splits.py first (see README.md)")
    protocol = json.loads((folder / "protocol.json").read_text(encoding="utf-8"))
    table = pd.read_csv(folder / "series.csv", dtype={"series": str})
    table["time"] = pd.to_datetime(table["time"])
    return protocol, table


def series_values(protocol: Mapping[str, Any], table: pd.DataFrame) -> dict[str, np.ndarray]:
    """series id -> (N, K) float64 target values, in the protocol's series order."""
    targets = protocol["targets"]
    out = {}
    for key in protocol["series"]:
        frame = table[table["series"] == key].sort_values("time")
        out[key] = frame[targets].to_numpy(dtype=np.float64)
        assert len(frame) == protocol["series"][key]["length"], key
    return out


def limit_origins(protocol: dict[str, Any], max_origins: int | None) -> dict[str, Any]:
    """The protocol with each series' first `max_origins` origins only (smoke runs)."""
    if not max_origins:
        return protocol
    series = {
        key: {
            **info,
            "origins": info["origins"][:max_origins],
            "origin_times": info["origin_times"][:max_origins],
        }
        for key, info in protocol["series"].items()
    }
    return {
        **protocol,
        "series": series,
        "origins": sum(len(s["origins"]) for s in series.values()),
    }


# --- scoring -----------------------------------------------------------------------------------


def point_metrics(actual: np.ndarray, point: np.ndarray, scale: float | None) -> dict[str, Any]:
    """MAE, RMSE, sMAPE and MASE of (N, H) forecasts of one series' target (rnnkit's formulas)."""
    err = point - actual
    denom = np.abs(actual) + np.abs(point)
    ratio = np.divide(np.abs(err), denom, out=np.zeros_like(denom), where=denom > 0)
    mae = float(np.abs(err).mean())
    defined = scale is not None and np.isfinite(scale) and scale > 0
    return {
        "mae": mae,
        "rmse": float(np.sqrt((err**2).mean())),
        "smape": float(200 * ratio.mean()),
        "mase": mae / float(scale) if defined else None,
    }


def actual_windows(values: np.ndarray, origins: Iterable[int], horizon: int) -> np.ndarray:
    """(N, H, K) actual values after each origin."""
    idx = np.asarray(list(origins))[:, None] + np.arange(1, horizon + 1)
    return values[idx]


def score_forecasts(
    protocol: Mapping[str, Any],
    values: Mapping[str, np.ndarray],
    forecasts: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    """Metrics of one method: per series (and target), and their mean.

    Args:
        protocol: the exported `protocol.json` (possibly cut by `limit_origins`).
        values: series id -> (N, K) actual values (`series_values`).
        forecasts: series id -> (n_origins, H, K) point forecasts at the protocol's origins, in
            its order.

    Returns:
        {"mae", "rmse", "smape", "mase", "per_series": {name: {...}}}.
    """
    horizon, targets = protocol["horizon"], protocol["targets"]
    per_series: dict[str, dict[str, Any]] = {}
    for key, info in protocol["series"].items():
        actual = actual_windows(values[key], info["origins"], horizon)
        point = np.asarray(forecasts[key], dtype=np.float64)
        if point.shape != actual.shape:
            raise ValueError(f"series {key}: forecasts {point.shape}, expected {actual.shape}")
        for k, target in enumerate(targets):
            name = key if len(targets) == 1 else f"{key}/{target}"
            scale = info["mase_scale"][target]
            per_series[name] = point_metrics(actual[:, :, k], point[:, :, k], scale)
    summary: dict[str, Any] = {}
    for metric in ("mae", "rmse", "smape", "mase"):
        defined = [m[metric] for m in per_series.values() if m[metric] is not None]
        summary[metric] = float(np.mean(defined)) if defined else None
    return {**summary, "per_series": per_series}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> dict[str, Any]:
    """Accuracy and macro-F1 as rnnkit computes them."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    f1s = []
    for c in range(classes):
        tp = int(((y_pred == c) & (y_true == c)).sum())
        predicted, support = int((y_pred == c).sum()), int((y_true == c).sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        total = precision + recall
        f1s.append(2 * precision * recall / total if total else 0.0)
    return {"accuracy": float((y_true == y_pred).mean()), "macro_f1": float(np.mean(f1s))}


# --- results -----------------------------------------------------------------------------------


def versions(*packages: str) -> dict[str, str | None]:
    """Installed versions of `packages` (None where missing), plus Python's."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    """CPU model, cores, load average: what the wall times were measured on."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                model,
            )
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": model, "cpus": os.cpu_count(), "load_1min": load, "host": platform.node()}


def write_result(results: Path, name: str, record: dict[str, Any]) -> Path:
    """Write `record` (with machine, time and command line added) as `results/<name>.json`."""
    results.mkdir(parents=True, exist_ok=True)
    record = {
        **record,
        "machine": machine(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.executable).as_posix(), *sys.argv]),
    }
    path = results / f"{name}.json"
    path.write_text(json.dumps(record, indent=1, default=_jsonable) + "\n", encoding="utf-8")
    print(f"wrote {path}", flush=True)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def quiet_lightning() -> None:
    """Keep Lightning's banners and deprecation notes out of the benchmark's output."""
    import logging
    import warnings

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


class Stopwatch:
    """Wall seconds of named phases (`with watch("train"): ...`), summed per name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str) -> Stopwatch:
        self._name = name
        return self

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        spent = time.perf_counter() - self._start
        self.seconds[self._name] = self.seconds.get(self._name, 0.0) + spent

    @property
    def total(self) -> float:
        return sum(self.seconds.values())
