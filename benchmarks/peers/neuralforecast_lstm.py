"""NeuralForecast's `LSTM` on rnnkit's forecasting protocol.

    benchmarks/peers/.venvs/neuralforecast/bin/python benchmarks/peers/neuralforecast_lstm.py \\
        --data airline-passengers [--max-steps 1000] [--max-minutes 10] [--patience 5] \\
        [--max-origins N] [--splits runs/peers/splits]

Protocol (the one `rnnkit train forecaster` scores, read from `export_splits.py`'s
`protocol.json`; see `protocol.py`), done the NeuralForecast way:

- `NeuralForecast.cross_validation(refit=False)`: one model trained once on the history before
  the first test window, whose last `val_size` steps validate; then a forecast at every window
  cutoff from the series up to it. With `val_size` = rnnkit's validation part and the windows
  placed on the exported origins (the series cut after the last origin's horizon, `test_size`
  spanning the first origin's horizon to the last's, `step_size` = the exported stride), the
  model trains on rnnkit's training part, validates on its validation part and forecasts at
  exactly rnnkit's origins, never refitted, as in rnnkit's backtest. The forecasts are matched to
  the exported origins by cutoff time (every one must be there); MASE uses the exported scales.
- model: `LSTM(h=horizon, input_size=rnnkit's input length)` and NeuralForecast's defaults
  otherwise (2 x 128 encoder, MLP decoder, MAE loss, robust scaler per window, Adam 1e-3,
  `max_steps` 1000, batch 32 series x 128 windows), seed 0, with early stopping on the validation
  loss after `--patience` checks without improvement (checks every 100 steps, its default) and
  Lightning's `max_time` as the `--max-minutes` budget. One global model for all series of a
  dataset (retail's 5), the target only (no covariates; rnnkit uses retail's by default).

Writes `results/neuralforecast-<data>.json` with the metrics and the wall seconds of training and
forecasting at every origin (one `cross_validation` call: training plus prediction).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol import (
    RESULTS,
    SPLITS,
    Stopwatch,
    limit_origins,
    quiet_lightning,
    read_forecasting,
    score_forecasts,
    series_values,
    versions,
    write_result,
)


def windows_for(protocol: dict[str, Any]) -> tuple[int, int, int, int]:
    """(steps after the last origin's horizon to drop, test_size, val_size, step_size).

    Every series must place its origins at the same distances from its end and from its
    validation part (true of the exported datasets), since `cross_validation` counts windows
    back from each series' end.
    """
    horizon, stride = protocol["horizon"], protocol["stride"]
    shapes = set()
    for key, info in protocol["series"].items():
        origins = info["origins"]
        if origins[0] != info["validation_end"] - 1:
            raise SystemExit(f"{key}: the first origin is not the end of the validation part")
        if any(b - a != stride for a, b in itertools.pairwise(origins)):
            raise SystemExit(f"{key}: origins are not every {stride} steps")
        drop = info["length"] - (origins[-1] + horizon + 1)
        test_size = origins[-1] - origins[0] + horizon
        val_size = info["validation_end"] - info["train_end"]
        shapes.add((drop, test_size, val_size))
    if len(shapes) != 1:
        raise SystemExit(f"series place their origins differently ({shapes}); run them one by one")
    drop, test_size, val_size = shapes.pop()
    return drop, test_size, val_size, stride


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train once and forecast at every origin; the result record."""
    import pandas as pd
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    protocol, table = read_forecasting(args.splits, args.data)
    protocol = limit_origins(protocol, args.max_origins)
    targets, horizon = protocol["targets"], protocol["horizon"]
    if len(targets) != 1:
        raise SystemExit(f"{args.data} has {len(targets)} targets; NeuralForecast takes one")
    drop, test_size, val_size, stride = windows_for(protocol)
    parts = []
    for key, info in protocol["series"].items():
        frame = table[table["series"] == key].sort_values("time")
        frame = frame.iloc[: info["length"] - drop]
        parts.append(pd.DataFrame({"unique_id": key, "ds": frame["time"], "y": frame[targets[0]]}))
    df = pd.concat(parts, ignore_index=True)
    model = LSTM(
        h=horizon,
        input_size=protocol["input_length"],
        max_steps=args.max_steps,
        early_stop_patience_steps=args.patience,
        random_seed=0,
        accelerator="cpu",
        max_time=timedelta(minutes=args.max_minutes),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    nf = NeuralForecast(models=[model], freq=protocol["freq"])
    watch = Stopwatch()
    with watch("train_and_forecast"):
        cv = nf.cross_validation(
            df=df,
            n_windows=None,
            test_size=test_size,
            val_size=val_size,
            step_size=stride,
            refit=False,
        )
    forecasts: dict[str, np.ndarray] = {}
    for key, info in protocol["series"].items():
        rows = cv[cv["unique_id"] == key]
        by_cutoff = {c: g.sort_values("ds")["LSTM"].to_numpy() for c, g in rows.groupby("cutoff")}
        wanted = [pd.Timestamp(t) for t in info["origin_times"]]
        missing = [t for t in wanted if t not in by_cutoff]
        if missing:
            raise RuntimeError(f"{key}: no forecast from cutoff {missing[0]}")
        forecasts[key] = np.stack([by_cutoff[t] for t in wanted])[:, :, None]  # (N, H, 1)
    values = series_values(protocol, table)
    steps = int(getattr(model, "global_step", 0) or 0) or None
    row = {
        "name": "NeuralForecast LSTM",
        "seconds": watch.total,
        "phases": watch.seconds,
        "steps": steps,
    }
    return {
        "task": "forecasting",
        "data": args.data,
        "tool": "neuralforecast",
        "rows": [row | score_forecasts(protocol, values, forecasts)],
        "settings": {
            "horizon": horizon,
            "input_size": protocol["input_length"],
            "origins": protocol["origins"],
            "max_origins": args.max_origins,
            "val_size": val_size,
            "test_size": test_size,
            "max_steps": args.max_steps,
            "max_minutes": args.max_minutes,
            "early_stop_patience_steps": args.patience,
            "defaults": "NeuralForecast's LSTM defaults otherwise (robust scaler, MAE loss)",
        },
        "versions": versions(
            "neuralforecast", "torch", "pytorch-lightning", "numpy", "pandas", "utilsforecast"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a series exported by export_splits.py")
    parser.add_argument("--max-steps", type=int, default=1000, help="NeuralForecast's default")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="training budget")
    parser.add_argument(
        "--patience", type=int, default=5, help="validation checks without improvement; -1 off"
    )
    parser.add_argument("--max-origins", type=int, help="first N origins per series (smoke)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--splits", type=Path, default=SPLITS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", help="result file name (default neuralforecast-<data>)")
    args = parser.parse_args(argv)
    quiet_lightning()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    record = run(args)
    record["settings"]["threads"] = torch.get_num_threads()
    record["script_seconds"] = time.perf_counter() - started
    row = record["rows"][0]
    print(f"{row['name']}: MASE {row['mase']}, {row['seconds']:.1f} s", flush=True)
    write_result(args.results, args.name or f"neuralforecast-{args.data}", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
