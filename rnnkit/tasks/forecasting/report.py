"""What a forecaster run shows: backtest.json, plots, its report (backtest table, plots) and, for
pages that gather several runs, its MASE against seasonal naive and a few forecasts.

`write_outputs` ends `train_forecaster`; `baseline` and `showcase` are the spec's hooks
(`rnnkit.tasks.spec.TaskSpec`), called with a finished `rnnkit.run.Run`. Matplotlib is imported
where a plot is drawn, so that reading the task's spec stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rnnkit.reports.report import Image, Report, Section, Table, Text
from rnnkit.run_folder import Files
from rnnkit.tasks.forecasting.config import TASK, ForecastingRunConfig
from rnnkit.tasks.spec import BaselineScore

if TYPE_CHECKING:
    from rnnkit.models.forecaster import ForecasterConfig
    from rnnkit.run import Run
    from rnnkit.training import FitResult

#: the validation metric drawn beside the loss (`loss.png`, `rnnkit compare`'s curves).
CURVE_METRIC = "val_mae_scaled"

#: the backtest's methods, in table order: the model, its streaming replay, the baselines.
METHODS = ("model", "streaming", "naive", "seasonal_naive", "ets")
#: metric name -> how the table prints it
COLUMNS = ("mae", "rmse", "smape", "mase", "coverage", "pinball")


def _methods_and_columns(metrics: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    methods = [m for m in METHODS if m in metrics]
    return methods, [c for c in COLUMNS if any(c in metrics[m] for m in methods)]


def backtest_table(backtest: Mapping[str, Any]) -> Table:
    """A backtest's methods side by side: one row per method, one column per metric.

    Args:
        backtest: `run_backtest`'s result (`{"model": {"mae": ...}, "seasonal_naive": {...}}`).
    """
    methods, columns = _methods_and_columns(backtest)
    rows = [[m, *(backtest[m].get(c) for c in columns)] for m in methods]
    header = ["method", *(c.upper() if c != "smape" else "sMAPE %" for c in columns)]
    return Table(header, rows)


def backtest_notes(backtest: Mapping[str, Any]) -> list[str]:
    """One line per method the backtest could not run, saying why (ETS without its extra)."""
    return [f"{method}: {why}" for method, why in backtest.get("notes", {}).items()]


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """The backtest's methods side by side, one row per method, as aligned text."""
    methods, columns = _methods_and_columns(metrics)
    lines = [f"{'method':<15}" + "".join(f"{c:>12}" for c in columns)]
    for method in methods:
        cells = "".join(
            f"{metrics[method][c]:>12.4g}"
            if metrics[method].get(c) is not None
            else f"{'undefined' if c in metrics[method] else '—':>12}"
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
    from matplotlib.figure import Figure

    from rnnkit.reports.figures import save_figure

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
    run_dir: Path,
    config: ForecastingRunConfig,
    model_cfg: ForecasterConfig,
    prep: Any,
    result: FitResult,
    backtest: dict[str, Any] | None,
    forecasts: Any,
    seconds: float,
    members: int = 1,
) -> None:
    """Write backtest.json, the plots, report.md and report.html.

    Args:
        run_dir: the run folder.
        config: the run's config.
        model_cfg: one member's resolved model config.
        prep: the prepared series (stacked values, layout, input length, season).
        result: what `fit` returned (records, best epoch).
        backtest: `run_backtest`'s result, or None when nothing was held out.
        forecasts: the backtest's forecasts, for `forecast.png`.
        seconds: the run's wall time so far.
        members: the ensemble's size (1: one model).
    """
    from rnnkit.io import atomic_write_json
    from rnnkit.reports import write_report
    from rnnkit.reports.figures import plot_loss

    run_dir = Path(run_dir)
    loss = plot_loss(result.records, run_dir / Files.LOSS_PLOT, metric=CURVE_METRIC)
    images = {"loss": loss.name}
    sections = []
    if backtest is not None:
        atomic_write_json(run_dir / Files.BACKTEST, backtest)
        images["forecast vs actual"] = plot_backtest(
            run_dir / Files.FORECAST_PLOT, prep, forecasts, config.window.horizon
        ).name
        heading = f"Rolling-origin backtest ({backtest['origins']} origins, test span)"
        notes = [Text(line) for line in backtest_notes(backtest)]
        sections.append(Section(heading, [backtest_table(backtest), *notes]))
    summary = {
        "task": TASK,
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
    report = Report(
        title=f"Forecaster run {run_dir.name}",
        summary=summary,
        # the model's own backtest numbers; the table beside them compares every method
        metrics=dict(backtest["model"]) if backtest is not None else None,
        sections=sections,
        images=images,
        records=result.records,
    )
    write_report(run_dir, report)


# ----------------------------------------------------------------------- hooks for summary pages


def _number(value: Any) -> float:
    """A metric as a float; None (undefined, e.g. MASE of a flat series) as NaN."""
    return float("nan") if value is None else float(value)


def baseline(run: Run) -> list[BaselineScore]:
    """Backtest MASE against the seasonal-naive forecast over the same origins."""
    backtest = run.test_metrics() or run.evaluate()
    return [
        BaselineScore(
            "backtest MASE",
            _number(backtest["model"]["mase"]),
            _number(backtest["seasonal_naive"]["mase"]),
            "seasonal naive",
            higher_is_better=False,
        )
    ]


def showcase(run: Run, examples: int) -> list[Any]:
    """The backtest's methods side by side and the last forecasts against what happened."""
    del examples  # the plot shows the forecasts that fit; there is no list to cut
    backtest = run.test_metrics() or run.evaluate()
    heading = (
        f"Rolling-origin backtest ({backtest['origins']} origins, horizon {backtest['horizon']})"
    )
    notes = [Text(line) for line in backtest_notes(backtest)]
    return [
        Section(heading, [backtest_table(backtest), *notes]),
        Image(
            Files.FORECAST_PLOT,
            "forecast vs actual",
            "forecasts with their 80% interval against what happened",
        ),
    ]
