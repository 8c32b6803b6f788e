"""Output norms (`model.norm`): each task on a bundled dataset with none, layer and batch norm.

    OMP_NUM_THREADS=1 python benchmarks/bench_norm.py --out runs/bench-norm --seeds 3 --threads 1

Nine short runs per seed, one after another in this process, through `rnnkit.train` with the
same data, seed, sizes and budget per task; only `norm` changes. Classification and forecasting
train a fixed number of epochs (the same optimizer steps for every norm); the language model,
whose one epoch of shakespeare is far past a short budget, trains for `--minutes` of wall clock
(`train.max_minutes`), so its row also shows the steps that bought. Each row is the task's
primary held-out metric as training wrote it (classification: test accuracy on rotten-tomatoes;
forecasting: the rolling-origin MASE on airline-passengers, one model; language model: held-out
loss in nats per character on shakespeare), the optimizer steps and the whole call's time
(training, then the held-out evaluation). The budgets are short on purpose (about ten minutes in
all on two cores): the table says whether a norm helps or hurts early in training at these
sizes, not what it does at convergence. `--tasks` picks tasks; `--set TASK:KEY=VALUE` changes a
task's config.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, table

NORMS = ("none", "layer", "batch")

#: task -> (dataset, rnnkit.train options, config keys): small two-layer models (a norm sits
#: between the layers and before the head).
SETUPS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "classification": (
        "rotten-tomatoes",
        {"num_layers": 2, "epochs": 3},  # the defaults otherwise: BiLSTM 128, GloVe 50d
        {"train.patience": None},
    ),
    "forecasting": (
        "airline-passengers",
        {"hidden_size": 32, "num_layers": 2, "ensemble": 1, "epochs": 20},
        {"train.patience": None},
    ),
    "language-model": ("shakespeare", {"hidden_size": 128, "num_layers": 2}, {}),
}


def metric_value(result: dict[str, Any], key: str) -> float:
    """`result["a"]["b"]` for key "a.b"."""
    value: Any = result
    for part in key.split("."):
        value = value[part]
    return float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the runs")
    parser.add_argument("--tasks", default=",".join(SETUPS), help="comma-separated tasks")
    parser.add_argument("--minutes", type=float, default=0.75, help="the LM's training budget")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds 0..N-1 per norm")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--set", action="append", default=[], metavar="TASK:KEY=VALUE")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import rnnkit
    from rnnkit.tasks import get_task

    extra: dict[str, dict[str, str]] = {}
    for item in args.set:
        task, _, pair = item.partition(":")
        key, _, value = pair.partition("=")
        extra.setdefault(task, {})[key] = value
    rows = []
    for task in args.tasks.split(","):
        spec = get_task(task)
        data, options, config = SETUPS[spec.name]
        if spec.name == "language-model":
            config = {**config, "train.max_minutes": args.minutes}
        config.update(extra.get(spec.name, {}))
        metric = spec.metrics[0]
        results: dict[str, list[tuple[float, int, float]]] = {norm: [] for norm in NORMS}
        # seeds outermost, norms inner: a change in the machine's load meets every norm alike
        for seed in range(args.seeds):
            for norm in NORMS:
                out = args.out / f"{spec.name}-{norm}" / f"seed{seed}"
                start = time.perf_counter()
                run = rnnkit.train(spec.name, data, out, config, norm=norm, seed=seed, **options)
                seconds = time.perf_counter() - start
                assert run is not None
                value = metric_value(run.test_metrics() or {}, metric.key or metric.name)
                steps = max((r.get("step", 0) for r in run.records()), default=0)
                results[norm].append((value, steps, seconds))
                print(f"{spec.name} {norm} seed {seed}: {value:{metric.fmt}}, {steps} steps")
        for norm, got in results.items():
            values = [v for v, _, _ in got]
            spread = f" ± {statistics.stdev(values):{metric.fmt}}" if len(values) > 1 else ""
            shown = f"{metric.label} {statistics.fmean(values):{metric.fmt}}{spread}"
            steps = round(statistics.fmean(s for _, s, _ in got))
            seconds = round(statistics.fmean(t for _, _, t in got))
            rows.append([spec.name, data, norm, shown, steps, seconds])
    print()
    print(f"{machine()}; {args.seeds} seed(s), mean ± sample std")
    print(table(["task", "data", "norm", "held-out metric", "steps", "seconds"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
