"""statsforecast's AutoETS, AutoARIMA and SeasonalNaive on rnnkit's forecasting protocol.

    benchmarks/peers/.venvs/stats/bin/python benchmarks/peers/statsforecast_models.py \\
        --data airline-passengers [--models AutoETS,AutoARIMA,SeasonalNaive] [--refit 0] \\
        [--max-origins N] [--splits runs/peers/splits] [--results runs/peers/results]

Protocol (the one `rnnkit train forecaster` scores, read from `export_splits.py`'s
`protocol.json`; see `protocol.py`): for each series, each model is fitted once on the history
before the test span (rnnkit's training and validation parts: a statistical model needs no
validation split, and this is the history rnnkit's MASE denominator is measured on). At every
exported origin o it then forecasts steps o+1..o+horizon from the history up to o with its
parameters held, through the model's `forward` (exactly what statsforecast's own
`cross_validation(refit=False)` does; that function is not called because it places its windows
from the series' end and cannot take rnnkit's origins when they are strided). SeasonalNaive has
nothing to fit: it forecasts from each origin's history. rnnkit's network is likewise trained once
and conditioned on the history at each origin, never refitted. `--refit N` refits every N
origins instead (N=1: the M-competitions' refit-per-origin protocol; slow on electricity).
The season is the exported one (rnnkit's), horizon likewise; MASE uses the exported scales.

Writes `results/statsforecast-<data>.json`: per model the metrics (mean and per series) and the
wall seconds of fitting plus forecasting at every origin.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol import (
    RESULTS,
    SPLITS,
    Stopwatch,
    limit_origins,
    read_forecasting,
    score_forecasts,
    series_values,
    versions,
    write_result,
)

MODELS = ("AutoETS", "AutoARIMA", "SeasonalNaive")


def make_model(name: str, season: int) -> Any:
    """A fresh statsforecast model with its defaults and rnnkit's season."""
    from statsforecast import models

    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return getattr(models, name)(season_length=season)


def forecast_origins(
    name: str,
    y: np.ndarray,
    fit_end: int,
    origins: list[int],
    horizon: int,
    season: int,
    *,
    refit: int = 0,
    input_size: int | None = None,
    watch: Stopwatch | None = None,
) -> np.ndarray:
    """(len(origins), horizon) forecasts of one univariate series `y` at `origins`.

    Fitted on `y[:fit_end]` (and every `refit` origins on the history up to that origin when
    `refit` > 0); at each origin o, `forward(y[: o + 1], h)` with the fitted parameters.
    `input_size` keeps only the last that many steps of each history, for fitting and
    forecasting alike (statsforecast's `cross_validation(input_size=...)`).
    """
    watch = watch or Stopwatch()
    out = np.empty((len(origins), horizon))
    model = make_model(name, season)
    fitted = None

    def recent(end: int) -> np.ndarray:
        return y[max(0, end - input_size) if input_size else 0 : end]

    for i, origin in enumerate(origins):
        history = recent(origin + 1)
        if not hasattr(model, "forward"):  # nothing estimated: the forecast is the fit
            with watch("forecast"):
                out[i] = model.forecast(y=history, h=horizon)["mean"]
            continue
        with watch("fit"):
            if fitted is None:
                fitted = model.fit(y=recent(fit_end))
            elif refit and i % refit == 0:
                fitted = make_model(name, season).fit(y=history)
        with watch("forecast"):
            out[i] = fitted.forward(y=history, h=horizon)["mean"]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every model on every series of `args.data`; the result record."""
    protocol, table = read_forecasting(args.splits, args.data)
    protocol = limit_origins(protocol, args.max_origins)
    values = series_values(protocol, table)
    horizon, season = protocol["horizon"], protocol["season"]
    names = [m for m in args.models.split(",") if m]
    for name in names:
        make_model(name, season)  # unknown names fail before any work
    rows = []
    for name in names:
        watch = Stopwatch()
        forecasts, errors = {}, {}
        for key, info in protocol["series"].items():
            y = values[key]
            per_target = []
            for k in range(y.shape[1]):
                try:
                    per_target.append(
                        forecast_origins(
                            name,
                            y[:, k],
                            info["validation_end"],
                            info["origins"],
                            horizon,
                            season,
                            refit=args.refit,
                            input_size=args.input_size,
                            watch=watch,
                        )
                    )
                except Exception as exc:  # a failed fit is a result too: recorded, not fatal
                    errors[key] = f"{type(exc).__name__}: {exc}"
                    break
            if key not in errors:
                forecasts[key] = np.stack(per_target, axis=-1)  # (N, H, K)
        row: dict[str, Any] = {"name": name, "seconds": watch.total, "phases": watch.seconds}
        if args.input_size:
            row["name"] = f"{name} (last {args.input_size} steps)"
        if errors:
            row["errors"] = errors
        else:
            row |= score_forecasts(protocol, values, forecasts)
        print(f"{name}: MASE {row.get('mase')}, {watch.total:.1f} s", flush=True)
        rows.append(row)
    reference = protocol["rnnkit_reference"]["seasonal_naive"]["mase"]
    return {
        "task": "forecasting",
        "data": args.data,
        "tool": "statsforecast",
        "rows": rows,
        "settings": {
            "horizon": horizon,
            "season": season,
            "origins": protocol["origins"],
            "max_origins": args.max_origins,
            "refit": args.refit,
            "input_size": args.input_size,
            "fit_on": "history before the test span (rnnkit's train + validation parts)",
            "models": "statsforecast defaults, season_length = rnnkit's season",
        },
        "rnnkit_seasonal_naive_mase": reference if not args.max_origins else None,
        "versions": versions("statsforecast", "numpy", "pandas", "scipy", "numba"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a series exported by export_splits.py")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--refit", type=int, default=0, help="refit every N origins; 0 never")
    parser.add_argument(
        "--input-size", type=int, help="fit and forecast from the last N steps only (long series)"
    )
    parser.add_argument("--max-origins", type=int, help="first N origins per series (smoke)")
    parser.add_argument("--splits", type=Path, default=SPLITS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", help="result file name (default statsforecast-<data>)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    record = run(args)
    record["script_seconds"] = time.perf_counter() - started
    write_result(args.results, args.name or f"statsforecast-{args.data}", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
