"""The language-model task as the rest of rnnkit sees it (see `rnnkit.tasks.spec.TaskSpec`)."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from rnnkit.tasks.language_model import cli, report
from rnnkit.tasks.language_model.config import SUMMARY, TASK, LanguageModelRunConfig
from rnnkit.tasks.language_model.data import held_out, write_data
from rnnkit.tasks.language_model.export import EXPORT
from rnnkit.tasks.language_model.pipeline import evaluate_run, train_lm
from rnnkit.tasks.language_model.predictor import LanguageModelPredictor
from rnnkit.tasks.spec import HeldOut, Metric, TaskSpec

#: tokens generated per sample by one timed call of `rnnkit compare`.
LATENCY_TOKENS = 32


def _latency_call(predictor: Any, part: HeldOut, batch: int) -> Callable[[], Any]:
    del part  # generation starts from an empty prompt
    return lambda: predictor.generate(
        "", max_tokens=LATENCY_TOKENS, num_samples=batch, temperature=1.0, seed=0
    )


def load_serving() -> Any:
    """`ServingHooks` for `rnnkit serve`, imported on use: they need the `serve` extra."""
    from rnnkit.tasks.language_model.serve import SERVING

    return SERVING


SPEC = TaskSpec(
    name=TASK,
    aliases=("lm", "language-modeling"),
    summary=SUMMARY,
    config=LanguageModelRunConfig,
    train=train_lm,
    load=LanguageModelPredictor.from_run,
    evaluate=evaluate_run,
    held_out=held_out,
    metrics=(
        Metric("loss", "loss (nats/token)", higher_is_better=False),
        Metric("bits_per_char", "bits/char", higher_is_better=False),
    ),
    format_metrics=cli.format_metrics,
    options=MappingProxyType(cli.FLAGS),
    write_data=write_data,
    register_train=cli.register_train,
    register_commands=cli.register,
    curve_metric=report.CURVE_METRIC,
    throughput_unit="tokens/s",
    latency_call=_latency_call,
    latency_note=f"generating {LATENCY_TOKENS} tokens for 1 or 64 samples at once",
    export=EXPORT,
    baseline=report.baseline,
    showcase=report.showcase,
    serving=load_serving,
)
