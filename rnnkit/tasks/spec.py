"""`TaskSpec`: everything the rest of rnnkit needs to know about one task, in one value.

A consumer (the CLI, `rnnkit.load`, export, the compare and quickstart apps, reports, later the
server and the launcher) looks a task up in `rnnkit.tasks.TASKS` and calls its hooks; it never
keeps its own table of tasks or an `if task == ...` chain. Each task builds its spec in
`rnnkit/tasks/<task>/spec.py` from the functions of its own folder.

The hooks take a run folder's path and its `config.json` as a dict (or a `rnnkit.run.Run`, which
carries both), so that this module and the task folders never import the modules that consume
them: the import graph stays a DAG (`tests/test_imports.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.export.hooks import ExportHooks


@dataclass(frozen=True)
class Metric:
    """A headline metric of a task's `evaluate()` result.

    Attributes:
        name: its short name in tables and JSON (`"accuracy"`, `"seasonal_naive_mase"`).
        label: how people name it (`"test accuracy"`, `"MASE"`).
        higher_is_better: the direction that counts as an improvement.
        key: where it sits in the result, dots walking nested dicts (`"model.mase"`); the name
            when empty.
        fmt: format spec for tables (`".4f"`).
    """

    name: str
    label: str
    higher_is_better: bool
    key: str = ""
    fmt: str = ".4f"

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        """This metric's number in an `evaluate()` result, or None when it is absent."""
        node: Any = metrics
        for part in (self.key or self.name).split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return None if node is None else float(node)

    def format(self, metrics: Mapping[str, Any]) -> str:
        value = self.value(metrics)
        return "—" if value is None else format(value, self.fmt)


@dataclass(frozen=True)
class HeldOut:
    """The part of a run's data that training never saw, reopened from the run's config.

    Attributes:
        data: classification: `LabeledTexts` (texts, labels) of the test split; forecasting: the
            `TimeSeriesDataset` whose last `test_steps` the backtest scores; language model: the
            held-out text (`str`).
        description: what it is, for reports (`"rotten-tomatoes (test split, seed 0)"`).
    """

    data: Any
    description: str

    def __iter__(self):  # `part, described = spec.held_out(...)`
        return iter((self.data, self.description))


@dataclass(frozen=True)
class BaselineScore:
    """A run's number on held-out data beside the simplest honest baseline's on the same data.

    Attributes:
        metric: what is measured, as people name it (`"test accuracy"`, `"backtest MASE"`).
        model: the run's value.
        baseline: the baseline's value.
        baseline_name: what the baseline is (`"majority class (pos)"`, `"seasonal naive"`).
        higher_is_better: the direction that counts as beating the baseline.
    """

    metric: str
    model: float
    baseline: float
    baseline_name: str
    higher_is_better: bool

    @property
    def beats_baseline(self) -> bool:
        return self.model > self.baseline if self.higher_is_better else self.model < self.baseline


@dataclass(frozen=True)
class TaskSpec:
    """One task, as every consumer sees it.

    Attributes:
        name: the canonical name: `config.json`'s `task`, `rnnkit.train(name, ...)`, the CLI's
            `rnnkit train <name>`, report titles.
        aliases: other names accepted for it (older CLI words and `config.json` values).
        summary: one line for `--help` and listings.
        config: the run-config dataclass (`load_config(spec.config, ...)` gives defaults).
        train: `(config, out_dir, *, callbacks=(), resume=False) -> result` where the result has
            `.run_dir`; the task's whole pipeline, writing a run folder.
        load: `(run_dir, config_dict, device) -> predictor`.
        evaluate: `(run_dir, data=None, **options) -> metrics dict` on the held-out part or on
            `data`.
        held_out: `(run_dir, config_dict) -> HeldOut`.
        metrics: headline metrics of `evaluate()`, the primary one first.
        format_metrics: `evaluate()`'s result as text for the terminal.
        options: option name (a CLI flag's dest, a keyword of `rnnkit.train`) -> dotted config key.
        data_option: the option that names the training data (`"data"`).
        write_data: `(data, folder, config) -> config`: in-memory data (DataFrame, lists,
            strings) written into `folder` as a file `load_dataset` reads, for `rnnkit.train`;
            returns the run config naming that file (and any column it wrote). ConfigError for
            a type it cannot take, DataError for bad data.
        register_train: `(subparsers) -> None`: adds `rnnkit train <name>` (with the aliases)
            and its flags, each a shorthand for a key in `options`.
        register_commands: `(subparsers) -> None`: the task's own commands (`rnnkit predict`,
            `rnnkit forecast`, `rnnkit generate`).
        curve_metric: the `metrics.jsonl` validation key drawn beside the loss (compare plots).
        throughput_unit: what `metrics.jsonl`'s throughput counts (`"texts/s"`).
        latency_call: `(predictor, held_out, batch) -> zero-argument callable`: one typical
            request of `batch` inputs, timed by `rnnkit compare`.
        latency_note: what `latency_call` does, in words for the compare table.
        export: the export hooks (`rnnkit.export.hooks.ExportHooks`: graph, sidecars, metric
            limit, ...), or None where the task has no exportable graph.
        baseline: `(run) -> [BaselineScore]` for a finished `rnnkit.run.Run`: its headline
            numbers on the held-out data beside the simplest honest baseline's on the same data
            (majority class, seasonal naive, unigram characters); the quickstart's summary.
        showcase: `(run, examples) -> [block]`: what the run does, as report blocks
            (`rnnkit.reports.report`: example predictions, the backtest, a sample, plots; image
            paths relative to the run folder) for a page that shows several runs (the
            quickstart's `report.html`); `examples` caps the number of example inputs shown.
        serving: `() -> ServingHooks` (`rnnkit.serve.hooks`): how `rnnkit serve` serves the task;
            a loader, because the hooks need the `serve` extra (pydantic) only when serving.
    """

    name: str
    aliases: tuple[str, ...]
    summary: str
    config: type
    train: Callable[..., Any]
    load: Callable[..., Any]
    evaluate: Callable[..., dict[str, Any]]
    held_out: Callable[[Path, dict[str, Any]], HeldOut]
    metrics: tuple[Metric, ...]
    format_metrics: Callable[[dict[str, Any]], str]
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    data_option: str = "data"
    write_data: Callable[[Any, Path, Any], Any] | None = None
    register_train: Callable[[Any], None] | None = None
    register_commands: Callable[[Any], None] | None = None
    curve_metric: str | None = None
    throughput_unit: str = "examples/s"
    latency_call: Callable[[Any, HeldOut, int], Callable[[], Any]] | None = None
    latency_note: str = ""
    export: ExportHooks | None = None
    baseline: Callable[[Any], list[BaselineScore]] | None = None
    showcase: Callable[[Any, int], list[Any]] | None = None
    serving: Callable[[], Any] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical name, then the aliases."""
        return (self.name, *self.aliases)

    @property
    def primary_metric(self) -> Metric:
        return self.metrics[0]
