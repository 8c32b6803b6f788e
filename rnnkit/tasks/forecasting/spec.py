"""The forecasting task as the rest of rnnkit sees it (see `rnnkit.tasks.spec.TaskSpec`)."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from rnnkit.tasks.forecasting import cli, report
from rnnkit.tasks.forecasting.config import SUMMARY, TASK, ForecastingRunConfig
from rnnkit.tasks.forecasting.data import held_out, write_data
from rnnkit.tasks.forecasting.export import EXPORT
from rnnkit.tasks.forecasting.pipeline import evaluate_run, train_forecaster
from rnnkit.tasks.forecasting.predictor import ForecastPredictor
from rnnkit.tasks.spec import HeldOut, Metric, TaskSpec


def _latency_call(predictor: Any, part: HeldOut, batch: int) -> Callable[[], Any]:
    frames = list(part.data.series.items())
    # Known series ids keep their saved scaling; copies beyond them are scaled by their history.
    history = {
        key if i < len(frames) else f"{key}#{i}": frame
        for i, (key, frame) in ((i, frames[i % len(frames)]) for i in range(batch))
    }
    return lambda: predictor.predict(history)


def load_serving() -> Any:
    """`ServingHooks` for `rnnkit serve`, imported on use: they need the `serve` extra."""
    from rnnkit.tasks.forecasting.serve import SERVING

    return SERVING


SPEC = TaskSpec(
    name=TASK,
    aliases=("forecaster",),
    summary=SUMMARY,
    config=ForecastingRunConfig,
    train=train_forecaster,
    load=ForecastPredictor.from_run,
    evaluate=evaluate_run,
    held_out=held_out,
    metrics=(
        Metric("mase", "MASE", higher_is_better=False, key="model.mase"),
        Metric(
            "seasonal_naive_mase",
            "seasonal-naive MASE",
            higher_is_better=False,
            key="seasonal_naive.mase",
        ),
        Metric("smape", "sMAPE", higher_is_better=False, key="model.smape"),
    ),
    format_metrics=cli.format_metrics,
    options=MappingProxyType(cli.FLAGS),
    write_data=write_data,
    register_train=cli.register_train,
    register_commands=cli.register,
    curve_metric=report.CURVE_METRIC,
    throughput_unit="windows/s",
    latency_call=_latency_call,
    latency_note="one `predict()` of 1 or 64 series histories (one forward pass each)",
    export=EXPORT,
    baseline=report.baseline,
    showcase=report.showcase,
    serving=load_serving,
)
