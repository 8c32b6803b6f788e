"""Forecasting speed: rnnkit's training and streaming against the tutorial loop, tiny model.

    python benchmarks/bench_forecast.py [--epochs 3] [--steps 2000]

The tutorial configuration (the classic "LSTM on a sine wave / airline passengers" tutorials):
window 50, one LSTM layer of 50 units, batch 32, next-step forecast, MSE, Adam.

(a) tutorial training: a `TensorDataset` of pre-cut windows through a shuffling `DataLoader`
    (per-sample indexing and collation), `nn.LSTM` + `nn.Linear`.
(b) rnnkit training: `fit()` with the `Forecaster` (same LSTM size, L1 point head, horizon 1),
    batches gathered from one stacked tensor by origin index.
Both report training samples (windows) per second. rnnkit's figure is given twice: over its
training steps alone, and over whole epochs with the per-epoch validation and checkpoint the
tutorial loop does without.

Streaming, per new observation of a long series:
(c) re-run: append the point, run the model over the last 50 steps, read the forecast.
(d) rnnkit `StreamingForecaster.update`: one lean NumPy step from the carried state plus the head
    (`rnnkit.models.lean`). The two alternate in rounds; each keeps its best round.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table

from rnnkit.config import apply_overrides
from rnnkit.data import TimeSeriesDataset, load_dataset
from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, train_forecaster

WINDOW, HIDDEN, BATCH = 50, 50, 32


def sine(n: int = 2000) -> TimeSeriesDataset:
    t = np.arange(n)
    frame = pd.DataFrame(
        {"value": np.sin(2 * np.pi * t / 50) + 0.1 * np.sin(2 * np.pi * t / 7)},
        index=pd.date_range("2000-01-01", periods=n, freq="h"),
    )
    return TimeSeriesDataset("sine", {"value": frame}, "h", ["value"])


class TutorialLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, HIDDEN, batch_first=True)
        self.linear = nn.Linear(HIDDEN, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.linear(out[:, -1])


def tutorial_training(values: np.ndarray, epochs: int) -> float:
    """Samples/s of the tutorial loop over `epochs` epochs."""
    v = (values - values.mean()) / values.std()
    x = np.stack([v[i : i + WINDOW] for i in range(len(v) - WINDOW)])[..., None]
    y = v[WINDOW:, None]
    data = TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    loader = DataLoader(data, batch_size=BATCH, shuffle=True)
    model = TutorialLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = nn.functional.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epochs * len(data) / (time.perf_counter() - start)


def rnnkit_training(dataset: TimeSeriesDataset, epochs: int, out: Path):
    """(samples/s of fit's whole epochs, of its training steps alone, the run).

    Whole epochs include what `fit` does after each one and the tutorial loop does not:
    validation (for early stopping), metrics.jsonl, the best weights and the resume checkpoint.
    """
    config = apply_overrides(
        ForecastingRunConfig(),
        [
            f"data.data={dataset.name}",
            "window.horizon=1",
            f"window.input_length={WINDOW}",
            "window.season=1",
            "window.calendar=false",
            "window.baseline=none",
            "window.min_epoch_windows=1",
            "model.cell=lstm",
            f"model.hidden_size={HIDDEN}",
            "model.dropout=0",
            "model.likelihood=none",
            f"train.batch_size={BATCH}",
            f"train.epochs={epochs}",
            "train.patience=none",
            "train.device=cpu",
            "backtest=false",
            "ensemble=1",  # the tutorial trains one model
        ],
    )
    run = train_forecaster(config, out, dataset=dataset)
    train_seconds = sum(
        r["seconds"] - (run.fit.records[i - 1]["seconds"] if i else 0)
        for i, r in enumerate(run.fit.records)
    )
    windows = len(dataset.series["value"]) * (1 - 0.1 - 0.2) - WINDOW - 1
    steps_only = float(np.mean([r["tokens_per_second"] for r in run.fit.records]))
    return epochs * windows / train_seconds, steps_only, run


def streaming(run, values: np.ndarray, steps: int) -> tuple[float, float]:
    """(re-run steps/s, streaming steps/s) over `steps` new points after a warm-up history.

    Both run on one thread: a single step is microseconds of arithmetic, and OpenMP hand-offs
    between threads (or a busy second core) would dominate either loop.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _streaming(run, values, steps)
    finally:
        torch.set_num_threads(threads)


def _streaming(run, values: np.ndarray, steps: int, rounds: int = 5) -> tuple[float, float]:
    predictor = run.predictor
    model = predictor.model
    history = pd.DataFrame(
        {"value": values[:WINDOW]},
        index=pd.date_range("2000-01-01", periods=WINDOW, freq="h"),
    )
    stream = predictor.stream("value", history)
    new = values[WINDOW : WINDOW + steps].astype(np.float32)
    shift, scale = predictor.scaler.params["value"]["value"]
    z = torch.tensor((values[: WINDOW + steps] - shift) / scale, dtype=torch.float32)
    empty_future, zero_base = torch.zeros(1, 1, 0), torch.zeros(1, 1, 1)

    def rerun(lo: int, hi: int) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for i in range(lo, hi):
                window = z[i + 1 : i + 1 + WINDOW]
                seasonal = window - z[i : i + WINDOW]  # the features the model reads (season 1)
                x = torch.stack([window, seasonal], dim=-1).unsqueeze(0)  # (1, L, 2)
                params, _ = model(x, empty_future, zero_base)
                float(params[0, 0, 0, 0]) * scale + shift
        return (hi - lo) / (time.perf_counter() - start)

    def streamed(lo: int, hi: int) -> float:
        start = time.perf_counter()
        for value in new[lo:hi]:
            stream.update(value)
        return (hi - lo) / (time.perf_counter() - start)

    # Alternate the two in rounds over consecutive points and keep each one's best round, so a
    # burst of load from other processes does not land on one side only.
    bounds = np.linspace(0, steps, rounds + 1).astype(int)
    best_rerun = best_stream = 0.0
    for lo, hi in itertools.pairwise(bounds):
        best_rerun = max(best_rerun, rerun(lo, hi))
        best_stream = max(best_stream, streamed(lo, hi))
    return best_rerun, best_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs on the sine wave")
    parser.add_argument(
        "--airline-epochs",
        type=int,
        default=30,
        help="epochs on airline (2 batches each: a few epochs would time only milliseconds)",
    )
    parser.add_argument("--steps", type=int, default=2000, help="streamed points")
    args = parser.parse_args()
    print(machine())
    rows, stream_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        airline = load_dataset("airline-passengers")
        airline_frame = airline.series["passengers"].rename(columns={"passengers": "value"})
        airline = TimeSeriesDataset("airline", {"value": airline_frame}, "MS", ["value"])
        for dataset, epochs in ((sine(), args.epochs), (airline, args.airline_epochs)):
            values = dataset.series["value"]["value"].to_numpy()
            n_train = round(len(values) * 0.7)
            tutorial = tutorial_training(values[:n_train], epochs)
            ours, steps_only, run = rnnkit_training(dataset, epochs, Path(tmp) / dataset.name)
            rows.append(
                [
                    dataset.name,
                    epochs,
                    f"{tutorial:,.0f}",
                    f"{steps_only:,.0f}",
                    f"{steps_only / tutorial:.2f}x",
                    f"{ours:,.0f}",
                    f"{ours / tutorial:.2f}x",
                ]
            )
            if dataset.name == "sine":
                steps = min(args.steps, len(values) - WINDOW)
                rerun, streamed = streaming(run, values, steps)
                stream_rows.append(
                    [dataset.name, f"{rerun:,.0f}", f"{streamed:,.0f}", f"{streamed / rerun:.1f}x"]
                )
    print(f"\nTraining samples/s, window {WINDOW}, hidden {HIDDEN}, batch {BATCH}:")
    header = ["series", "epochs", "tutorial", "rnnkit steps", "ratio", "rnnkit epochs", "ratio"]
    print(table(header, rows))
    print("\nForecast per new point (steps/s):")
    print(table(["series", "re-run window", "streaming step", "speed-up"], stream_rows))


if __name__ == "__main__":
    main()
