"""Darts' LSTM forecasters (`RNNModel`, `BlockRNNModel`) on rnnkit's forecasting protocol.

    benchmarks/peers/.venvs/darts/bin/python benchmarks/peers/darts_models.py \\
        --data airline-passengers [--models RNNModel,BlockRNNModel] [--epochs 100] \\
        [--max-minutes 10] [--max-origins N] [--splits runs/peers/splits]

Protocol (the one `rnnkit train forecaster` scores, read from `export_splits.py`'s
`protocol.json`; see `protocol.py`), done the Darts way:

- data: each series as a `TimeSeries` of its target(s), scaled with Darts' default `Scaler`
  (min-max) fitted on the training part only; all series of a dataset train one global model
  (retail's 5 countries), as rnnkit does. Past covariates are not used (rnnkit uses retail's by
  default: its `--covariates ''` is the like-for-like row).
- training: on rnnkit's training part; rnnkit's validation part is Darts' `val_series` (its last
  `input_length` training steps in front, so every validation window has a full input); early
  stopping on `val_loss` (patience 5 epochs) and the best checkpoint reloaded, as rnnkit restores
  its best epoch. `--epochs` (Darts' default 100) and `--max-minutes` (Lightning's `max_time`)
  bound it.
- models: `RNNModel(model="LSTM")` (one-step-ahead, rolled out autoregressively over the
  horizon; `training_length` = input + horizon) and `BlockRNNModel(model="LSTM")` (the whole
  horizon at once), input chunk = rnnkit's input length for the series (4 seasons), everything
  else Darts' defaults (hidden 25, one layer, Adam 1e-3, batch 32), seed 0.
- forecasting: `historical_forecasts(retrain=False, last_points_only=False)` from the first
  exported origin, every `stride` steps: each origin's forecast sees the series up to it and the
  model is not refitted, as in rnnkit's backtest. Forecasts are matched to the exported origins by
  time and unscaled; MASE uses the exported scales.

Writes `results/darts-<data>.json`: per model the metrics and the wall seconds of training and of
forecasting at every origin.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
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

MODELS = ("RNNModel", "BlockRNNModel")
PATIENCE = 5  # epochs without a better val_loss before stopping


def build_model(
    name: str,
    input_length: int,
    horizon: int,
    epochs: int,
    minutes: float,
    work_dir: str,
    patience: int = PATIENCE,
) -> Any:
    """A Darts LSTM model with Darts' defaults but rnnkit's input length and horizon."""
    from darts.models import BlockRNNModel, RNNModel
    from pytorch_lightning.callbacks import EarlyStopping

    trainer = {
        "accelerator": "cpu",
        "max_time": timedelta(minutes=minutes),
        "callbacks": [EarlyStopping("val_loss", patience=patience, mode="min")] if patience else [],
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
    }
    common = {
        "model": "LSTM",
        "input_chunk_length": input_length,
        "n_epochs": epochs,
        "random_state": 0,
        "pl_trainer_kwargs": trainer,
        "save_checkpoints": True,
        "work_dir": work_dir,
        "model_name": name,
        "force_reset": True,
    }
    if name == "RNNModel":
        return RNNModel(training_length=input_length + horizon, **common)
    if name == "BlockRNNModel":
        return BlockRNNModel(output_chunk_length=horizon, **common)
    raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def run_model(
    name: str, protocol: dict[str, Any], table: Any, args: argparse.Namespace
) -> dict[str, Any]:
    """Train `name` on every series' training part, forecast at every origin, score."""
    import pandas as pd
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler

    targets, horizon = protocol["targets"], protocol["horizon"]
    length = protocol["input_length"]
    keys = list(protocol["series"])
    full, train, val = [], [], []
    for key in keys:
        info = protocol["series"][key]
        frame = table[table["series"] == key].sort_values("time")
        series = TimeSeries.from_dataframe(
            frame, time_col="time", value_cols=targets, freq=protocol["freq"]
        ).astype(np.float32)
        full.append(series)
        train.append(series[: info["train_end"]])
        val.append(series[info["train_end"] - length : info["validation_end"]])
    scaler = Scaler(global_fit=False).fit(train)
    watch = Stopwatch()
    with tempfile.TemporaryDirectory() as work_dir:
        model = build_model(
            name, length, horizon, args.epochs, args.max_minutes, work_dir, args.patience
        )
        with watch("train"):
            model.fit(scaler.transform(train), val_series=scaler.transform(val))
            epochs_run = model.epochs_trained
            model = type(model).load_from_checkpoint(name, work_dir=work_dir, best=True)
        with watch("forecast"):
            forecasts: dict[str, np.ndarray] = {}
            scaled = scaler.transform(full)
            for i, key in enumerate(keys):
                info = protocol["series"][key]
                index = full[i].time_index
                last_origin = info["origins"][-1]
                series = scaled[i][: last_origin + horizon + 1]
                windows = model.historical_forecasts(
                    series,
                    forecast_horizon=horizon,
                    start=info["origins"][0] + 1,  # the first forecast step, as a position
                    start_format="position",
                    stride=protocol["stride"],
                    retrain=False,
                    last_points_only=False,
                    overlap_end=False,
                    verbose=False,
                    show_warnings=False,
                )
                by_start = {
                    w.start_time(): scaler.inverse_transform(w, series_idx=i).values()
                    for w in windows
                }
                wanted = [index[o + 1] for o in info["origins"]]
                missing = [t for t in wanted if t not in by_start]
                if missing:
                    raise RuntimeError(f"{key}: no forecast starting at {missing[0]}")
                forecasts[key] = np.stack([by_start[pd.Timestamp(t)] for t in wanted])
    values = series_values(protocol, table)
    row = {
        "name": f"Darts {name} (LSTM)",
        "seconds": watch.total,
        "phases": watch.seconds,
        "epochs": epochs_run,
    }
    return row | score_forecasts(protocol, values, forecasts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a series exported by export_splits.py")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=100, help="Darts' default n_epochs")
    parser.add_argument(
        "--patience",
        type=int,
        default=PATIENCE,
        help="early-stopping patience in epochs (0: train all --epochs, as Darts' own examples do)",
    )
    parser.add_argument("--max-minutes", type=float, default=10.0, help="training budget per model")
    parser.add_argument("--max-origins", type=int, help="first N origins per series (smoke)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--splits", type=Path, default=SPLITS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", help="result file name (default darts-<data>)")
    args = parser.parse_args(argv)
    quiet_lightning()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    protocol, table = read_forecasting(args.splits, args.data)
    protocol = limit_origins(protocol, args.max_origins)
    rows = []
    for name in (m for m in args.models.split(",") if m):
        row = run_model(name, protocol, table, args)
        print(f"{row['name']}: MASE {row['mase']}, {row['seconds']:.1f} s", flush=True)
        rows.append(row)
    record = {
        "task": "forecasting",
        "data": args.data,
        "tool": "darts",
        "rows": rows,
        "settings": {
            "horizon": protocol["horizon"],
            "input_chunk_length": protocol["input_length"],
            "origins": protocol["origins"],
            "max_origins": args.max_origins,
            "epochs": args.epochs,
            "max_minutes": args.max_minutes,
            "early_stopping_patience": args.patience,
            "threads": torch.get_num_threads(),
            "defaults": "Darts' (hidden_dim 25, 1 layer, Adam 1e-3, batch 32, min-max Scaler)",
        },
        "versions": versions("darts", "torch", "pytorch-lightning", "numpy", "pandas"),
        "script_seconds": time.perf_counter() - started,
    }
    write_result(args.results, args.name or f"darts-{args.data}", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
