"""What a forecaster run writes besides weights: backtest.json, plots, report.md and .html."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rnnkit.io import atomic_write_json
from rnnkit.report import plot_loss, save_figure, write_report
from rnnkit.report_html import backtest_table, write_html_report

#: metric name -> how the table prints it
COLUMNS = ("mae", "rmse", "smape", "mase", "coverage", "pinball")


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """The backtest's methods side by side, one row per method, as aligned text."""
    methods = [m for m in ("model", "streaming", "naive", "seasonal_naive") if m in metrics]
    columns = [c for c in COLUMNS if any(c in metrics[m] for m in methods)]
    lines = [f"{'method':<15}" + "".join(f"{c:>12}" for c in columns)]
    for method in methods:
        cells = "".join(
            f"{metrics[method][c]:>12.4g}" if c in metrics[method] else f"{'—':>12}"
            for c in columns
        )
        lines.append(f"{method:<15}{cells}")
    return "\n".join(lines)


def plot_forecast(
    path: str | Path,
    history: pd.Series,
    forecasts: list[tuple[pd.DatetimeIndex, np.ndarray, np.ndarray | None, np.ndarray | None]],
    *,
    title: str = "",
    actual: pd.Series | None = None,
) -> Path:
    """Forecast vs actual: the history, forecasts (point and 80% interval) and the actuals.

    Args:
        path: the PNG to write.
        history: the observed series (time-indexed) to draw before and under the forecasts.
        forecasts: (times, point (H,), lower (H,) or None, upper (H,) or None) per forecast.
        title: the figure title.
        actual: actual values over the forecast span, when known, drawn in black.
    """
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(history.index, history.to_numpy(), color="#7f7f7f", lw=1, label="history")
    if actual is not None:
        ax.plot(actual.index, actual.to_numpy(), color="black", lw=1.2, label="actual")
    for i, (times, point, lower, upper) in enumerate(forecasts):
        if lower is not None and upper is not None:
            ax.fill_between(
                times, lower, upper, color="#1f77b4", alpha=0.2, label=None if i else "80% interval"
            )
        ax.plot(times, point, color="#d62728", lw=1.4, label=None if i else "forecast")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_backtest(
    path: Path, prep: Any, forecasts: Any, horizon: int, max_forecasts: int = 8
) -> Path:
    """forecast.png of a backtest: the first series' last `max_forecasts` non-overlapping
    forecasts (all of airline's test span; the last 8 days of a year of hourly data, which drawn
    whole is a solid band)."""
    s = int(forecasts.series[0])
    rows, last = [], None
    for r in np.flatnonzero(forecasts.series == s):  # origins ascend; any backtest stride
        if last is None or forecasts.origins[r] >= last + horizon:
            rows.append(r)
            last = int(forecasts.origins[r])
    rows = rows[-max_forecasts:]
    index = prep.stacked.index[s]
    start = int(prep.stacked.starts[s])
    frame = list(prep.dataset.series.values())[s]
    target = prep.layout.targets[0]
    fc = forecasts.methods["model"]
    drawn = []
    for r in rows:
        local = int(forecasts.origins[r]) - start
        times = index[local + 1 : local + 1 + horizon]
        lower = fc["lower"][r, :, 0] if "lower" in fc else None
        upper = fc["upper"][r, :, 0] if "upper" in fc else None
        drawn.append((times, fc["point"][r, :, 0], lower, upper))
    first = int(forecasts.origins[rows[0]]) - start
    context = max(first - 3 * horizon, 0)
    return plot_forecast(
        path,
        frame[target].iloc[context : first + 1],
        drawn,
        actual=frame[target].iloc[first:],
        title=f"{prep.stacked.ids[s]}: backtest forecasts, end of the test span",
    )


def write_outputs(
    run_dir, config, model_cfg, prep, result, backtest, forecasts, seconds, members: int = 1
) -> None:
    """Write backtest.json, the plots and report.md into `run_dir` (`model_cfg`: one member's)."""
    images = {"loss": plot_loss(result.records, run_dir / "loss.png").name}
    metrics: dict[str, Any] = {}
    if backtest is not None:
        atomic_write_json(run_dir / "backtest.json", backtest)
        images["forecast vs actual"] = plot_backtest(
            run_dir / "forecast.png", prep, forecasts, config.window.horizon
        ).name
        for method in ("model", "streaming", "naive", "seasonal_naive"):
            for key, value in backtest.get(method, {}).items():
                metrics[f"{method} {key}"] = value
    summary = {
        "task": "forecasting",
        "data": config.data.data,
        "series": len(prep.stacked.ids),
        "model": f"{model_cfg.cell} {model_cfg.num_layers}x{model_cfg.hidden_size}, "
        f"{model_cfg.likelihood} likelihood"
        + (f", ensemble of {members} seeds" if members > 1 else ""),
        "window": f"input {prep.input_length}, horizon {config.window.horizon}, "
        f"season {prep.season}, baseline {config.window.baseline}",
        "epochs run": len(result.records),
        "best epoch": result.best_epoch,
        "time": f"{seconds:.1f} s",
    }
    title = f"Forecaster run {Path(run_dir).name}"
    write_report(
        run_dir,
        title=title,
        summary=summary,
        metrics=metrics or None,
        records=result.records,
        images=images,
    )
    sections = []
    if backtest is not None:
        heading = f"Rolling-origin backtest ({backtest['origins']} origins, test span)"
        sections.append((heading, backtest_table(backtest)))
    write_html_report(
        run_dir,
        title=title,
        summary=summary,
        metrics=None,
        records=result.records,
        images=images,
        sections=sections,
    )
