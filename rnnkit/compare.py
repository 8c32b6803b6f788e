"""RNN vs LSTM vs GRU: train each cell on the same data, split, seed, size and budget; compare.

`compare(task, data, cells, out_dir)` trains one run per cell (and per seed) through
`rnnkit.runs.train`, changing only `model.cell` (and `train.seed`), then reads every run back the
way a user would: `rnnkit.runs.evaluate` for the test metric, `rnnkit.runs.load` for the parameter
count and the inference latency, `metrics.jsonl` for the learning curves, training time and
throughput. It writes, in `out_dir`::

    compare.json      everything below, per cell: one record per seed and a summary
    compare.md        the summary table, the settings and the charts
    curves.png        validation loss and metric of every cell, by epoch and by seconds
    summary.png       test metric, training time and throughput per cell
    <cell>[-seed<k>]/ each run's own folder (config.json, model.safetensors, report.md, ...)

Keys of a run record in `compare.json` (`results[cell]["runs"][i]`): `seed`, `run` (its
folder, relative to `out_dir`), `metrics` (the task's headline test metrics, see `VIEWS`),
`parameters`, `train_seconds` (training and per-epoch validation, from `metrics.jsonl`), `epochs`,
`best_epoch`, `throughput` (training tokens or windows per second, median over epochs),
`latency_ms` (`{"batch_1": p50, "batch_64": p50}`, see `TaskView.latency`) and `wall_seconds`
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
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from rnnkit import runs
from rnnkit.config import from_dict
from rnnkit.errors import ConfigError

logger = logging.getLogger(__name__)

#: the names `rnnkit compare --task` takes -> task names in config.json.
TASK_ALIASES = {"classifier": "classification", "forecaster": "forecasting", "lm": "language-model"}

#: config keys compare sets itself; giving them in overrides would defeat the comparison.
OWN_KEYS = ("data.data", "model.cell", "train.seed")

#: with a budget, `train.epochs` is only a ceiling so every cell trains for the same time.
BUDGET_EPOCHS = 1000

LATENCY_REPEATS = {1: 15, 64: 5}  # p50 of this many timed calls after one warm-up call


# ------------------------------------------------------------------------------ task views


@dataclass(frozen=True)
class TaskView:
    """How to read one task's runs for a comparison.

    Attributes:
        metrics: the `runs.evaluate` result -> headline test metrics, the first being primary.
        labels: metric key -> column heading.
        higher_is_better: for the primary metric.
        curve_metric: the `metrics.jsonl` validation key drawn beside the loss.
        unit: what the engine's `tokens_per_second` counts for this task.
        latency: (run_dir, predictor, batch size) -> a no-argument call to time.
        latency_note: what one timed call does, for the report.
    """

    metrics: Callable[[dict[str, Any]], dict[str, float]]
    labels: Mapping[str, str]
    higher_is_better: bool
    curve_metric: str
    unit: str
    latency: Callable[[Path, Any, int], Callable[[], Any]]
    latency_note: str


def _classifier_latency(run_dir: Path, predictor: Any, batch: int) -> Callable[[], Any]:
    from rnnkit.tasks.classification.pipeline import ClassificationRunConfig, load_texts

    cfg = from_dict(ClassificationRunConfig, runs.read_config(run_dir)["config"]).data
    texts = load_texts(cfg).split(seed=cfg.split_seed, validation=cfg.validation, test=cfg.test)
    pool = texts.test.texts
    chosen = [pool[i % len(pool)] for i in range(batch)]
    return lambda: predictor.predict(chosen, batch_size=batch)


def _forecaster_latency(run_dir: Path, predictor: Any, batch: int) -> Callable[[], Any]:
    from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, load_series

    cfg = from_dict(ForecastingRunConfig, runs.read_config(run_dir)["config"]).data
    frames = list(load_series(cfg).series.items())
    # Known series ids keep their saved scaling; copies beyond them are scaled by their history.
    history = {
        key if i < len(frames) else f"{key}#{i}": frame
        for i, (key, frame) in ((i, frames[i % len(frames)]) for i in range(batch))
    }
    return lambda: predictor.predict(history)


LM_LATENCY_TOKENS = 32


def _lm_latency(run_dir: Path, predictor: Any, batch: int) -> Callable[[], Any]:
    del run_dir
    return lambda: predictor.generate(
        "", max_tokens=LM_LATENCY_TOKENS, num_samples=batch, temperature=1.0, seed=0
    )


#: task name -> how to read its runs; a task missing here cannot be compared.
VIEWS: dict[str, TaskView] = {
    "classification": TaskView(
        metrics=lambda m: {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]},
        labels={"accuracy": "test accuracy", "macro_f1": "test macro-F1"},
        higher_is_better=True,
        curve_metric="val_accuracy",
        unit="tokens/s",
        latency=_classifier_latency,
        latency_note="one `predict()` of 1 or 64 test texts",
    ),
    "forecasting": TaskView(
        metrics=lambda m: {
            "mase": m["model"]["mase"],
            "seasonal_naive_mase": m["seasonal_naive"]["mase"],
            "smape": m["model"]["smape"],
        },
        labels={"mase": "MASE", "seasonal_naive_mase": "seasonal-naive MASE", "smape": "sMAPE"},
        higher_is_better=False,
        curve_metric="val_mae_scaled",
        unit="windows/s",
        latency=_forecaster_latency,
        latency_note="one `predict()` of 1 or 64 series histories (one forward pass each)",
    ),
    "language-model": TaskView(
        metrics=lambda m: {"loss": m["loss"], "bits_per_char": m["bits_per_char"]},
        labels={"loss": "loss (nats/token)", "bits_per_char": "bits/char"},
        higher_is_better=False,
        curve_metric="val_bits_per_char",
        unit="tokens/s",
        latency=_lm_latency,
        latency_note=f"generating {LM_LATENCY_TOKENS} tokens for 1 or 64 samples at once",
    ),
}


def resolve_task(task: str) -> str:
    """`classifier`/`forecaster`/`lm` (or a config.json task name) -> the task name."""
    name = TASK_ALIASES.get(task, task)
    if name not in VIEWS:
        choices = ", ".join([*TASK_ALIASES, *VIEWS])
        raise ConfigError(f"--task {task!r} is not a task; choose one of: {choices}")
    return name


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
    """`runs/compare-<task>-<data name>` (a path's stem, `+` joins become `-`)."""
    flag = {v: k for k, v in TASK_ALIASES.items()}.get(resolve_task(task), task)
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
        task: "classifier", "forecaster" or "lm" (or the config.json name).
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
    name = resolve_task(task)
    view = VIEWS[name]
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
            if (out / folder / runs.CONFIG_FILE).exists():
                raise ConfigError(f"{out / folder} already holds a run; choose another --out")
            plan.append((cell, seed, folder, settings))

    results: dict[str, Any] = {cell: {"runs": []} for cell in cells}
    for i, (cell, seed, folder, settings) in enumerate(plan, 1):
        logger.info("compare: run %d/%d: %s, seed %d -> %s", i, len(plan), cell, seed, folder)
        started = time.perf_counter()
        run_dir = runs.train(
            name, out / folder, settings, callbacks=callbacks(cell, seed) if callbacks else ()
        )
        record = measure(name, run_dir)
        record = {"seed": seed, "run": folder, **record}
        record["wall_seconds"] = round(time.perf_counter() - started, 2)
        results[cell]["runs"].append(record)
        logger.info("compare: %s seed %d: %s", cell, seed, json.dumps(record["metrics"]))
    for cell in cells:
        results[cell]["summary"] = summarize(results[cell]["runs"])

    primary = next(iter(view.labels))
    report = {
        "task": name,
        "data": data,
        "cells": cells,
        "seeds": seeds,
        "budget_minutes": budget_minutes,
        "overrides": base,
        "primary_metric": primary,
        "higher_is_better": view.higher_is_better,
        "metric_labels": dict(view.labels),
        "throughput_unit": view.unit,
        "latency_note": view.latency_note,
        "machine": machine(),
        "versions": runs.versions(),
        "results": results,
    }
    from rnnkit.compare_report import write_outputs

    write_outputs(out, report)
    return report


def measure(task: str, run_dir: Path) -> dict[str, Any]:
    """A finished run's test metrics, size, training time, throughput and latency."""
    view = VIEWS[task]
    evaluated = runs.evaluate(run_dir)
    records = read_records(run_dir)
    predictor = runs.load(run_dir)
    rates = [r["tokens_per_second"] for r in records if r.get("tokens_per_second")]
    return {
        "metrics": {k: float(v) for k, v in view.metrics(evaluated).items()},
        "parameters": sum(p.numel() for p in predictor.model.parameters()),
        "train_seconds": float(records[-1]["seconds"]) if records else None,
        "epochs": len(records),
        "best_epoch": best_epoch(run_dir),
        # the median epoch: the first one pays one-off costs (allocator, oneDNN primitives)
        "throughput": round(statistics.median(rates), 1) if rates else None,
        "latency_ms": {
            f"batch_{b}": round(p50_ms(view.latency(run_dir, predictor, b), n), 3)
            for b, n in LATENCY_REPEATS.items()
        },
    }


def best_epoch(run_dir: Path) -> int | None:
    """The epoch whose weights `model.safetensors` holds, from the last checkpoint's header."""
    from safetensors import safe_open

    path = Path(run_dir) / "checkpoints" / "last.safetensors"
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


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """The run's `metrics.jsonl`, one dict per epoch."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


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
