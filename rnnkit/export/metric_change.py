"""Judge a quantized model by its task's metric on the run's own held-out data.

`metric_change(run_dir, runner, method)` evaluates the run's eager fp32 model and the quantized
one (any backend as a runner: {input: array} -> {output: array}, with the export graph's names)
on the run's held-out part (`rnnkit.run.Run.held_out`), through the task's own evaluation code
(`ExportHooks.evaluate_exported`: the runner wrapped as the module its predictor or backtest
calls). The task's `ExportHooks.metric_limit` says which metric decides and how much worse is
still acceptable (`metric_limit(task)`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rnnkit.errors import DataError, RnnkitError
from rnnkit.export.hooks import MetricLimit, Runner
from rnnkit.export.task_graph import export_hooks
from rnnkit.run import Run

__all__ = ["MetricChange", "MetricChangeError", "MetricLimit", "metric_change", "metric_limit"]


def metric_limit(task: str) -> MetricLimit:
    """What decides whether a quantized model of `task` is still good enough."""
    return export_hooks(task).metric_limit


class MetricChangeError(RnnkitError):
    """The quantized model's metric moved beyond the task's `metric_limit`."""


@dataclass(frozen=True)
class MetricChange:
    """fp32 vs quantized metrics on the run's held-out data.

    Attributes:
        task: the run's task.
        method: the quantization method.
        data: what was evaluated.
        metrics: name -> {"fp32", "quantized", "change"} (change = quantized - fp32).
        checked: the deciding metric (see `metric_limit`).
        limit: its largest accepted worsening.
        relative: whether `limit` is relative to the fp32 value.
        worsening: the measured worsening in the limit's units (negative: it improved).
        passed: worsening <= limit.
        allowed: the caller accepted a larger change.
    """

    task: str
    method: str
    data: str
    metrics: dict[str, dict[str, float]]
    checked: str
    limit: float
    relative: bool
    worsening: float
    passed: bool
    allowed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The metrics as a small fixed-width text table."""
        lines = [f"{'metric':<14} {'fp32':>10} {self.method:>14} {'change':>10}"]
        for name, m in self.metrics.items():
            lines.append(
                f"{name:<14} {m['fp32']:>10.4f} {m['quantized']:>14.4f} {m['change']:>+10.4f}"
            )
        unit = "of fp32" if self.relative else "absolute"
        verdict = "ok" if self.passed else "EXCEEDED" + (" (allowed)" if self.allowed else "")
        lines.append(
            f"{self.checked} worsened by {self.worsening:+.4g} ({unit}); limit {self.limit:g}: "
            f"{verdict}"
        )
        return "\n".join(lines)


def metric_change(
    run_dir: str | Path, runner: Runner, method: str, allow: bool = False
) -> MetricChange:
    """fp32 (the run's eager model) vs `runner` on the run's held-out data.

    Args:
        run_dir: the run folder.
        runner: the quantized model as {input: array} -> {output: array}, with the export
            graph's names (see `rnnkit.export.graphs`).
        method: named in the report.
        allow: recorded in the report (`allowed`).
    """
    run = Run(run_dir)
    task = run.task.name
    hooks = export_hooks(task)
    data, fp32, quantized = hooks.evaluate_exported(
        run.path, run.raw_config, run.held_out(), runner
    )
    limit = metric_limit(task)
    if fp32[limit.metric] is None or quantized[limit.metric] is None:
        # e.g. MASE on a flat held-out series: the naive forecast is exact, the ratio undefined
        raise DataError(
            f"the held-out {limit.metric} of {run.path} is undefined, so the int8 model cannot "
            f"be judged on it; export without --quantize"
        )
    worsening = limit.worsening(fp32[limit.metric], quantized[limit.metric])
    metrics = {
        k: {
            "fp32": fp32[k],
            "quantized": quantized[k],
            "change": None if fp32[k] is None or quantized[k] is None else quantized[k] - fp32[k],
        }
        for k in fp32
    }
    passed = bool(worsening <= limit.limit)
    return MetricChange(
        task, method, data, metrics, limit.metric, limit.limit, limit.relative, worsening, passed,
        allow and not passed,
    )  # fmt: skip
