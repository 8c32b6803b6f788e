"""RNN vs LSTM vs GRU: train each cell on the same data, split, seed, size and budget; compare.

`compare(task, data, cells, out_dir)` trains one run per cell (and per seed) through
`rnnkit.runs.train`, changing only `model.cell` (and `train.seed`), then reads every run back the
way a user would, through `rnnkit.run.Run`: `evaluate()` for the test metrics, `predictor()` for
the parameter count and the inference latency, `records()` (`metrics.jsonl`) for the learning
curves, training time and throughput. Everything task-specific comes from the task's spec
(`rnnkit.tasks.TaskSpec`): its headline `metrics`, `curve_metric`, `throughput_unit` and
`latency_call`. It writes, in `out_dir`::

    compare.json      everything below, per cell: one record per seed and a summary
    compare.md        the summary table, the settings and the charts
    curves.png        validation loss and metric of every cell, by epoch and by seconds
    summary.png       test metric, training time and throughput per cell
    <cell>[-seed<k>]/ each run's own folder (config.json, model.safetensors, report.md, ...)

Keys of a run record in `compare.json` (`results[cell]["runs"][i]`): `seed`, `run` (its
folder, relative to `out_dir`), `metrics` (the task's headline test metrics, `spec.metrics`),
`parameters`, `train_seconds` (training and per-epoch validation, from `metrics.jsonl`), `epochs`,
`best_epoch`, `throughput` (training tokens or windows per second, median over epochs),
`latency_ms` (`{"batch_1": p50, "batch_64": p50}`, see `spec.latency_call`) and `wall_seconds`
(the whole run: data, training, test evaluation). `results[cell]["summary"]` maps each number to
`{"mean", "std", "min", "max", "n"}` (std is the sample std; None for one seed).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from rnnkit import runs
from rnnkit.apps.compare_report import write_outputs
from rnnkit.errors import ConfigError
from rnnkit.run import Run
from rnnkit.run_folder import Files
from rnnkit.tasks import TASKS, TaskSpec, get_task

logger = logging.getLogger(__name__)

#: config keys compare sets itself; giving them in overrides would defeat the comparison.
OWN_KEYS = ("data.data", "model.cell", "train.seed")

#: with a budget, `train.epochs` is only a ceiling so every cell trains for the same time.
BUDGET_EPOCHS = 1000

LATENCY_REPEATS = {1: 15, 64: 5}  # p50 of this many timed calls after one warm-up call


# ----------------------------------------------------------------------------------- tasks


def comparable(spec: TaskSpec) -> bool:
    """Whether compare can read the task's runs: it needs a curve metric and a latency call."""
    return spec.curve_metric is not None and spec.latency_call is not None


def task_choices() -> list[str]:
    """Every name `--task` takes: each comparable task's canonical name and its aliases."""
    return [name for spec in TASKS.values() if comparable(spec) for name in spec.names]


def resolve_task(task: str) -> TaskSpec:
    """The spec of a task named by its canonical name or an alias (`classifier`, `lm`, ...)."""
    try:
        spec = get_task(task)
    except ConfigError:
        spec = None
    if spec is None or not comparable(spec):
        raise ConfigError(
            f"--task {task!r} is not a task; choose one of: {', '.join(task_choices())}"
        )
    return spec


def check_cells(cells: Sequence[str]) -> list[str]:
    """The cell names, checked against the `CELLS` registry; at least one, no repeats."""
    from rnnkit.models.encoder import CELLS

    cells = [c.strip().lower() for c in cells if c.strip()]
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        raise ConfigError(f"--cells: unknown cell {unknown[0]!r}; choose from: {', '.join(CELLS)}")
    if len(set(cells)) != len(cells):
        raise ConfigError(f"--cells names a cell twice: {','.join(cells)}")
    if not cells:
        raise ConfigError(f"--cells is empty; choose from: {', '.join(CELLS)}")
    return cells


def default_out(task: str, data: str) -> Path:
    """`runs/compare-<task>-<data name>`: the task's short name (its first alias, the CLI word:
    `classifier`, `forecaster`, `lm`) and the data's (a path's stem, `+` joins become `-`)."""
    spec = resolve_task(task)
    flag = spec.aliases[0] if spec.aliases else spec.name
    name = Path(data).stem if Path(data).exists() else data.replace("+", "-")
    return Path("runs") / f"compare-{flag}-{name}"


# --------------------------------------------------------------------------------- running


def compare(
    task: str,
    data: str,
    cells: Sequence[str] = ("rnn", "lstm", "gru"),
    out_dir: str | Path | None = None,
    *,
    seeds: Sequence[int] = (0,),
    budget_minutes: float | None = None,
    overrides: Mapping[str, Any] = MappingProxyType({}),
    callbacks: Callable[[str, int], Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """Train every cell (and seed) with identical settings, then compare them on the test split.

    Args:
        task: a task's name or one of its aliases (`rnnkit.tasks.get_task`).
        data: a registry name or a path, as `--data` of `rnnkit train <task>`.
        cells: names from `rnnkit.models.encoder.CELLS`.
        out_dir: where to write; default `runs/compare-<task>-<data>`. Must not hold these runs.
        seeds: training seeds (`train.seed`); the data split keeps its own fixed seed, so every
            run is scored on the same test set.
        budget_minutes: wall-clock training budget per run (`train.max_minutes`); `train.epochs`
            then defaults to a ceiling of `BUDGET_EPOCHS` so the budget ends training (early
            stopping still applies). None keeps the task's default epochs and budget.
        overrides: more config keys for every run, as `--set` takes them (e.g.
            `{"model.hidden_size": 64}`); not the keys in `OWN_KEYS`.
        callbacks: (cell, seed) -> training callbacks for that run (progress bars).

    Returns:
        The `compare.json` content (see the module docstring); files are written to `out_dir`.

    Raises:
        ConfigError: a bad task, cell, seed list or config key (before anything trains), or a
            run folder that already holds a run.
    """
    spec = resolve_task(task)
    name = spec.name
    cells = check_cells(cells)
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {seeds}")
    base = runs.nest_overrides(overrides)
    taken = [k for k in OWN_KEYS if _has_key(base, k)]
    if taken:
        raise ConfigError(
            f"--set {taken[0]}: compare sets it itself (use --data, --cells and --seeds)"
        )
    if budget_minutes is not None:
        if not budget_minutes > 0:
            raise ConfigError(f"--budget-minutes must be positive, got {budget_minutes}")
        budget = {"train": {"max_minutes": budget_minutes}}
        if not _has_key(base, "train.epochs"):
            budget["train"]["epochs"] = BUDGET_EPOCHS
        base = _merge(base, budget)
    out = Path(out_dir) if out_dir is not None else default_out(name, data)

    plan = []
    for cell in cells:
        for seed in seeds:
            folder = cell if len(seeds) == 1 else f"{cell}-seed{seed}"
            settings = _merge(base, {"data": {"data": data}, "model": {"cell": cell}})
            settings = _merge(settings, {"train": {"seed": seed}})
            runs.train_config(name, settings)  # every config error before any training
            if (out / folder / Files.CONFIG).exists():
                raise ConfigError(f"{out / folder} already holds a run; choose another --out")
            plan.append((cell, seed, folder, settings))

    results: dict[str, Any] = {cell: {"runs": []} for cell in cells}
    for i, (cell, seed, folder, settings) in enumerate(plan, 1):
        logger.info("compare: run %d/%d: %s, seed %d -> %s", i, len(plan), cell, seed, folder)
        started = time.perf_counter()
        run_dir = runs.train(
            name, out / folder, settings, callbacks=callbacks(cell, seed) if callbacks else ()
        )
        record = measure(Run(run_dir))
        record = {"seed": seed, "run": folder, **record}
        record["wall_seconds"] = round(time.perf_counter() - started, 2)
        results[cell]["runs"].append(record)
        logger.info("compare: %s seed %d: %s", cell, seed, json.dumps(record["metrics"]))
    for cell in cells:
        results[cell]["summary"] = summarize(results[cell]["runs"])

    report = {
        "task": name,
        "data": data,
        "cells": cells,
        "seeds": seeds,
        "budget_minutes": budget_minutes,
        "overrides": base,
        "primary_metric": spec.primary_metric.name,
        "higher_is_better": spec.primary_metric.higher_is_better,
        "metric_labels": {m.name: m.label for m in spec.metrics},
        "throughput_unit": spec.throughput_unit,
        "latency_note": spec.latency_note,
        "machine": machine(),
        "versions": runs.versions(),
        "results": results,
    }
    write_outputs(out, report, curve_metric=spec.curve_metric)
    return report


def measure(run: Run) -> dict[str, Any]:
    """A finished run's test metrics, size, training time, throughput and latency."""
    spec = run.task
    latency = spec.latency_call
    if latency is None:
        raise ConfigError(f"{run.path}: the {spec.name} task has no latency call to time")
    evaluated = run.evaluate()
    records = run.records()
    predictor = run.predictor()
    part = run.held_out()
    rates = [r["tokens_per_second"] for r in records if r.get("tokens_per_second")]
    return {
        "metrics": {m.name: m.value(evaluated) for m in spec.metrics},
        "parameters": sum(p.numel() for p in predictor.model.parameters()),
        "train_seconds": float(records[-1]["seconds"]) if records else None,
        "epochs": len(records),
        "best_epoch": best_epoch(run.path),
        # the median epoch: the first one pays one-off costs (allocator, oneDNN primitives)
        "throughput": round(statistics.median(rates), 1) if rates else None,
        "latency_ms": {
            f"batch_{b}": round(p50_ms(latency(predictor, part, b), n), 3)
            for b, n in LATENCY_REPEATS.items()
        },
    }


def best_epoch(run_dir: Path) -> int | None:
    """The epoch whose weights `model.safetensors` holds, from the last checkpoint's header."""
    from safetensors import safe_open

    path = Path(run_dir) / Files.CHECKPOINT
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        info = json.loads((f.metadata() or {}).get("info", "{}"))
    return info.get("best_epoch")


def p50_ms(call: Callable[[], Any], repeats: int) -> float:
    """Median milliseconds of `repeats` calls of `call`, after one untimed warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean, sample std, min and max over seeds of every number in the run records.

    Nested numbers are named by their path: `metrics.accuracy`, `latency_ms.batch_1`.
    """
    values: dict[str, list[float]] = {}
    for record in records:
        for key, value in _numbers(record):
            values.setdefault(key, []).append(value)
    return {
        key: {
            "mean": statistics.fmean(vs),
            "std": statistics.stdev(vs) if len(vs) > 1 else None,
            "min": min(vs),
            "max": max(vs),
            "n": len(vs),
        }
        for key, vs in values.items()
    }


def _numbers(record: Mapping[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    out = []
    for key, value in record.items():
        name = f"{prefix}{key}"
        if key in ("seed", "best_epoch"):
            continue
        if isinstance(value, Mapping):
            out += _numbers(value, name + ".")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append((name, float(value)))
    return out


def machine() -> dict[str, Any]:
    """The CPU, core count and torch threads the timings were taken with."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def _has_key(tree: Mapping[str, Any], dotted: str) -> bool:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _merge(base: Mapping[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in more.items():
        old = out.get(key)
        out[key] = (
            _merge(old, value) if isinstance(value, Mapping) and isinstance(old, Mapping) else value
        )
    return out
