"""The classification task as the rest of rnnkit sees it (see `rnnkit.tasks.spec.TaskSpec`)."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from rnnkit.tasks.classification import cli, report
from rnnkit.tasks.classification.config import SUMMARY, TASK, ClassificationRunConfig
from rnnkit.tasks.classification.data import held_out, write_data
from rnnkit.tasks.classification.export import EXPORT
from rnnkit.tasks.classification.pipeline import evaluate_run, train_classifier
from rnnkit.tasks.classification.predictor import ClassifierPredictor
from rnnkit.tasks.spec import HeldOut, Metric, TaskSpec


def _latency_call(predictor: Any, part: HeldOut, batch: int) -> Callable[[], Any]:
    pool = part.data.texts
    chosen = [pool[i % len(pool)] for i in range(batch)]
    return lambda: predictor.predict(chosen, batch_size=batch)


def load_serving() -> Any:
    """`ServingHooks` for `rnnkit serve`, imported on use: they need the `serve` extra."""
    from rnnkit.tasks.classification.serve import SERVING

    return SERVING


SPEC = TaskSpec(
    name=TASK,
    aliases=("classifier",),
    summary=SUMMARY,
    config=ClassificationRunConfig,
    train=train_classifier,
    load=ClassifierPredictor.from_run,
    evaluate=evaluate_run,
    held_out=held_out,
    metrics=(
        Metric("accuracy", "test accuracy", higher_is_better=True),
        Metric("macro_f1", "test macro-F1", higher_is_better=True),
    ),
    format_metrics=cli.format_metrics,
    options=MappingProxyType(cli.FLAGS),
    write_data=write_data,
    register_train=cli.register_train,
    register_commands=cli.register,
    curve_metric=report.CURVE_METRIC,
    throughput_unit="tokens/s",
    latency_call=_latency_call,
    latency_note="one `predict()` of 1 or 64 test texts",
    export=EXPORT,
    baseline=report.baseline,
    showcase=report.showcase,
    serving=load_serving,
)
