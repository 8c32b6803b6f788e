"""Export exactly what rnnkit trains and scores on, so every peer reads the same bytes.

    .venv/bin/python benchmarks/peers/export_splits.py [--out runs/peers/splits]
        [--stride 1] [--only NAME,NAME]

Runs in rnnkit's own environment and computes everything with rnnkit's own code (nothing is
re-derived in the peer scripts, which import no rnnkit):

- classification (rotten-tomatoes, clothing-reviews): `load_splits(TextDataConfig(data=...))`,
  the stratified split `rnnkit train classifier` makes with its default split seed 0 (80/10/10):
  `classification/<data>/{train,validation,test}.csv` (columns text,label) and `classes.json`.
  GloVe 6B 50d as rnnkit reads it (`load_word_vectors("glove-6b-50d")`):
  `glove-6b-50d/{vectors.npy,words.txt}` (row i of the matrix is the vector of line i).
- forecasting (airline-passengers, sunspots, electricity, retail): `prepare()` with the
  `rnnkit train forecaster` settings of docs/benchmarks.md (`FORECASTING`: horizon one season,
  electricity's last 8,760 hours), then the test origins of its rolling-origin backtest
  (`origins_for(..., "test")`, every `--stride`-th), the split points
  and the MASE denominators (`mase_scale` of each series' history before the test span, as
  `run_backtest` computes them): `forecasting/<data>/series.csv` (long: series, time, targets,
  covariates) and `protocol.json`. The protocol also carries rnnkit's own naive and
  seasonal-naive backtest scores (`baseline_values` + `summarize`, the rows `rnnkit train
  forecaster` prints), so a peer's SeasonalNaive can be checked against them (to float32
  rounding: rnnkit scales the series in float32).
- language model (shakespeare): `load_text(LMDataConfig())`, the contiguous split of `rnnkit train
  lm` (the last 10% of characters validate): `language_model/shakespeare/{train,validation}.txt`,
  written byte for byte (UTF-8, no newline translation).

`manifest.json` lists every file with its sha256 and size, rnnkit's version and commit, and the
settings used. Origins are 0-based positions in each series of the last observed step: a forecast
at origin o sees steps 0..o and predicts o+1..o+horizon.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

CLASSIFICATION = ("rotten-tomatoes", "clothing-reviews")
#: `rnnkit train forecaster` settings per series, as docs/benchmarks.md ("Forecasting") records
#: them: horizon one season (sunspots: its 11-year cycle), electricity's last year held out.
FORECASTING: dict[str, dict[str, int]] = {
    "airline-passengers": {"horizon": 12},
    "sunspots": {"horizon": 11, "season": 11},
    "electricity": {"horizon": 24, "test_steps": 8760},
    "retail": {"horizon": 7},
}
LANGUAGE_MODEL = ("shakespeare",)
VECTORS = "glove-6b-50d"

logger = logging.getLogger("export_splits")


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")


def export_classification(name: str, out: Path) -> dict[str, Any]:
    """Train/validation/test CSVs of `name`, split as `rnnkit train classifier` splits it."""
    from rnnkit.tasks.classification.config import TextDataConfig
    from rnnkit.tasks.classification.data import load_splits, load_texts

    cfg = TextDataConfig(data=name)
    classes = load_texts(cfg).classes
    splits = load_splits(cfg)
    folder = out / "classification" / name
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for part in ("train", "validation", "test"):
        texts = getattr(splits, part)
        frame = pd.DataFrame({"text": texts.texts, "label": texts.labels})
        frame.to_csv(folder / f"{part}.csv", index=False)
        sizes[part] = len(frame)
    info = {
        "data": name,
        "classes": classes,
        "sizes": sizes,
        "split_seed": cfg.split_seed,
        "validation": cfg.validation,
        "test": cfg.test,
        "rnnkit_command": f"rnnkit train classifier --data {name}",
    }
    write_json(folder / "classes.json", info)
    return info


def export_vectors(out: Path) -> dict[str, Any]:
    """GloVe 6B 50d as rnnkit reads it: a float32 (V, 50) matrix and its words, one a line."""
    from rnnkit.data.vectors import load_word_vectors

    vectors = load_word_vectors(VECTORS)
    folder = out / VECTORS
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "vectors.npy", np.asarray(vectors.vectors, dtype=np.float32))
    words = list(vectors.words)
    if any("\n" in w or "\r" in w for w in words):
        raise ValueError("a GloVe word holds a line break; words.txt could not keep the rows")
    (folder / "words.txt").write_text("\n".join(words) + "\n", encoding="utf-8", newline="\n")
    return {"words": len(words), "dim": int(vectors.vectors.shape[1])}


def export_forecasting(name: str, out: Path, stride: int) -> dict[str, Any]:
    """The series, split points, backtest origins and MASE scales of `rnnkit train forecaster`."""
    from rnnkit.tasks.forecasting.backtest import BacktestForecasts, mase_scale, summarize
    from rnnkit.tasks.forecasting.config import ForecastingRunConfig, SeriesDataConfig
    from rnnkit.tasks.forecasting.data import origins_for, prepare
    from rnnkit.tasks.forecasting.windows import Scaler, base_offsets, baseline_values

    flags = FORECASTING[name]
    data = SeriesDataConfig(data=name, test_steps=flags.get("test_steps"))
    base = ForecastingRunConfig(data=data)
    window = replace(
        base.window, horizon=flags["horizon"], season=flags.get("season"), backtest_stride=stride
    )
    config = replace(base, window=window)  # exactly `rnnkit train forecaster` with `flags`
    prep = prepare(config)
    w, targets = config.window, list(prep.layout.targets)
    origins, series = origins_for(
        prep.stacked,
        prep.points,
        "test",
        input_length=prep.input_length,
        horizon=w.horizon,
        season=prep.season,
        stride=w.backtest_stride,
    )
    # the MASE denominators, as `run_backtest` computes them (S, K)
    frames = list(prep.dataset.series.values())
    scales = np.stack(
        [
            mase_scale(frame[targets].to_numpy()[:end], prep.season)
            for frame, end in zip(frames, prep.points.validation_end, strict=True)
        ]
    )
    # rnnkit's own naive and seasonal-naive backtest rows, computed as `backtest_forecasts` does
    pairs = [Scaler.shift_scale(stats, targets) for stats in prep.stacked.stats]
    shift, scale = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    sh, sc = shift[series][:, None, :], scale[series][:, None, :]
    idx = torch.as_tensor(origins)
    values = prep.stacked.values
    ahead = idx[:, None] + torch.arange(1, w.horizon + 1)

    def raw(t: torch.Tensor) -> np.ndarray:
        return Scaler.inverse(np.asarray(t, dtype=np.float64), sh, sc)

    methods = {
        method: {
            "point": raw(
                baseline_values(
                    values, idx, base_offsets(w.horizon, prep.season, baseline), w.horizon
                )
            )
        }
        for method, baseline in (("naive", "last"), ("seasonal_naive", "seasonal_naive"))
    }
    reference = summarize(
        BacktestForecasts(origins, series, raw(values[ahead]), methods),
        scales,
        prep.stacked.ids,
        targets,
    )

    folder = out / "forecasting" / name
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for key, frame in prep.dataset.series.items():
        part = frame.rename_axis("time").reset_index()
        part.insert(0, "series", key)
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table["time"] = pd.to_datetime(table["time"]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    table.to_csv(folder / "series.csv", index=False)  # shortest round-trip floats

    per_series: dict[str, Any] = {}
    starts = prep.stacked.starts
    for s, (key, frame) in enumerate(prep.dataset.series.items()):
        local = (origins[series == s] - int(starts[s])).astype(int)
        per_series[key] = {
            "length": len(frame),
            "train_end": int(prep.points.train[s]),
            "validation_end": int(prep.points.validation_end[s]),
            "test_steps": int(prep.points.test[s]),
            "origins": local.tolist(),
            "origin_times": [frame.index[o].strftime("%Y-%m-%dT%H:%M:%S") for o in local],
            "mase_scale": {t: _finite(scales[s, k]) for k, t in enumerate(targets)},
        }
    protocol = {
        "data": name,
        "freq": prep.dataset.freq,
        "season": prep.season,
        "horizon": w.horizon,
        "input_length": prep.input_length,
        "stride": w.backtest_stride,
        "targets": targets,
        "covariates": list(prep.layout.covariates),
        "future_covariates": list(prep.layout.future_covariates),
        "origins": len(origins),
        "series": per_series,
        "rnnkit_reference": {
            m: {k: v for k, v in reference[m].items() if k != "per_series"}
            | {"per_series": {n: _clean(v) for n, v in reference[m]["per_series"].items()}}
            for m in reference
        },
        "rnnkit_command": rnnkit_forecaster_command(name, stride),
        "metric": (
            "per series and target: MAE over every origin and horizon step / mase_scale; the "
            "mean over series (and targets) is the MASE of the table"
        ),
    }
    write_json(folder / "protocol.json", protocol)
    return {
        "data": name,
        "series": len(per_series),
        "origins": len(origins),
        "season": prep.season,
        "input_length": prep.input_length,
        "seasonal_naive_mase": reference["seasonal_naive"]["mase"],
    }


def rnnkit_forecaster_command(name: str, stride: int = 1) -> str:
    """The `rnnkit train forecaster` command whose backtest these origins are."""
    options = [f"--{k.replace('_', '-')} {v}" for k, v in FORECASTING[name].items()]
    if stride > 1:  # no flag of its own: a config key
        options.append(f"--set window.backtest_stride={stride}")
    return f"rnnkit train forecaster --data {name} " + " ".join(options)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _clean(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k in ("mae", "rmse", "smape", "mase")}


def export_language_model(name: str, out: Path) -> dict[str, Any]:
    """The training and validation text of `rnnkit train lm --data NAME`, byte for byte."""
    from rnnkit.tasks.language_model.config import LMDataConfig
    from rnnkit.tasks.language_model.data import load_text

    cfg = LMDataConfig(data=name)
    text = load_text(cfg)
    folder = out / "language_model" / name
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "validation"):
        with open(folder / f"{part}.txt", "w", encoding="utf-8", newline="") as f:
            f.write(getattr(text, part))
    return {
        "data": name,
        "train_chars": len(text.train),
        "validation_chars": len(text.validation),
        "validation": cfg.validation,
        "rnnkit_command": f"rnnkit train lm --data {name}",
    }


def _commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:  # read-only: names the commit; the tree may hold uncommitted edits
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/peers/splits"))
    parser.add_argument("--stride", type=int, default=1, help="steps between backtest origins")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated dataset names to export (default: all); the manifest lists all",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from rnnkit.version import __version__

    only = {n for n in args.only.split(",") if n}
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"classification": {}, "forecasting": {}, "language_model": {}}
    started = time.perf_counter()
    for name in CLASSIFICATION:
        if not only or name in only:
            logger.info("classification: %s", name)
            summary["classification"][name] = export_classification(name, out)
    if not only or VECTORS in only or only & set(CLASSIFICATION):
        logger.info("vectors: %s", VECTORS)
        summary["vectors"] = {VECTORS: export_vectors(out)}
    for name in FORECASTING:
        if not only or name in only:
            logger.info("forecasting: %s", name)
            summary["forecasting"][name] = export_forecasting(name, out, args.stride)
    for name in LANGUAGE_MODEL:
        if not only or name in only:
            logger.info("language model: %s", name)
            summary["language_model"][name] = export_language_model(name, out)
    files = {
        str(p.relative_to(out)): {"sha256": sha256(p), "bytes": p.stat().st_size}
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }
    manifest = {
        "rnnkit_version": __version__,
        "rnnkit_commit": _commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"forecasting": FORECASTING, "stride": args.stride, "split_seed": 0},
        "summary": summary,
        "files": files,
    }
    write_json(out / "manifest.json", manifest)
    logger.info("wrote %d files to %s in %.0f s", len(files), out, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
