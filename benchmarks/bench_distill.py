"""Distillation: a small student against its teacher and against itself trained without one.

    OMP_NUM_THREADS=1 python benchmarks/bench_distill.py --task classification \
        --data rotten-tomatoes --out runs/distill-rt-uni --threads 1 --seeds 3 \
        --student model.bidirectional=false
    OMP_NUM_THREADS=1 python benchmarks/bench_distill.py --task language-model \
        --data shakespeare --out runs/distill-lm --threads 1

The teacher (the task's defaults, or `--teacher DIR` to reuse a trained one), the student
distilled from it (`rnnkit.distill`: by default a one-layer GRU half the teacher's width;
`--student KEY=VALUE` changes it) and the same student with `alpha=0` (no teacher: the same
data, tokenizer, seed and budget; the reference a distilled student must beat), each student
with seeds 0..N-1, one run after another in this process. A folder that already holds a run is
reused, so a second call only measures. Each is measured the way `rnnkit compare` measures a run
(`rnnkit.apps.compare.measure`: the held-out metric from `rnnkit evaluate`, parameters, p50
latency of the task's typical request at batch 1 and 64, timed on the first seed's run). The
table prints the student's speed-up over the teacher and the metric's change (means over the
seeds); the figures go into docs/benchmarks.md ("Distillation").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, help="classification | language-model | ...")
    parser.add_argument("--data", required=True, help="a registry dataset or path")
    parser.add_argument("--out", required=True, type=Path, help="folder for the three runs")
    parser.add_argument("--teacher", type=Path, help="reuse this trained teacher run")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seeds", type=int, default=1, help="students with seeds 0..N-1")
    parser.add_argument("--set", action="append", default=[], metavar="K=V", help="all runs")
    parser.add_argument(
        "--student", action="append", default=[], metavar="K=V", help="student options"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import rnnkit
    from rnnkit.apps.compare import measure
    from rnnkit.config import parse_overrides
    from rnnkit.run import Run
    from rnnkit.runs import nest_overrides, train
    from rnnkit.tasks import get_task

    spec = get_task(args.task)
    common = dict(item.split("=", 1) for item in args.set)
    student_keys = dict(item.split("=", 1) for item in args.student)
    args.out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    def timed(name: str, make: Any) -> Run:
        folder = args.out / name
        if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
            print(f"{name}: reusing {folder}", flush=True)
            return Run(folder)
        started = time.perf_counter()
        run = make(folder)
        seconds[name] = time.perf_counter() - started
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
        return run

    data_key = spec.options[spec.data_option]
    teacher = (
        Run(args.teacher)
        if args.teacher
        else timed("teacher", lambda f: Run(train(spec.name, f, {data_key: args.data, **common})))
    )
    config = nest_overrides(parse_overrides([f"{k}={v}" for k, v in student_keys.items()]))
    config = {**config, **nest_overrides(common)} if common else config

    def student(seed: int, alpha: float | None) -> Any:
        options: dict[str, Any] = {"seed": seed} if seed else {}
        if alpha is not None:
            options["alpha"] = alpha
        return lambda f: rnnkit.distill(teacher, f, config or None, **options)

    def suffix(seed: int) -> str:
        return "" if seed == 0 else f"-seed{seed}"

    seeds = range(args.seeds)
    groups: dict[str, list[Run]] = {
        "teacher": [teacher],
        "distilled student": [timed(f"student{suffix(s)}", student(s, None)) for s in seeds],
        "student from scratch": [timed(f"scratch{suffix(s)}", student(s, 0.0)) for s in seeds],
    }
    primary = spec.primary_metric
    # latency and size from each group's first run (the seeds share one architecture); the
    # metric's mean and sample std over the seeds
    measured = {name: measure(runs[0]) for name, runs in groups.items()}
    values = {
        name: [primary.value(run.evaluate()) for run in runs[1:]] for name, runs in groups.items()
    }
    for name, m in measured.items():
        values[name].insert(0, m["metrics"][primary.name])
        m["seed_values"] = values[name]
    base = measured["teacher"]
    rows = []
    for name, m in measured.items():
        c = groups[name][0].config.model
        shape = f"{c.cell} {c.num_layers}x{c.hidden_size}" + (
            " bi" if getattr(c, "bidirectional", False) else ""
        )
        got = values[name]
        mean = statistics.fmean(got)
        spread = f" ± {statistics.stdev(got):.4f}" if len(got) > 1 else ""
        rows.append(
            [
                name,
                shape,
                f"{m['parameters']:,}",
                f"{m['latency_ms']['batch_1']:.2f}",
                f"{m['latency_ms']['batch_64']:.2f}",
                f"{base['latency_ms']['batch_1'] / m['latency_ms']['batch_1']:.2f}x",
                f"{base['latency_ms']['batch_64'] / m['latency_ms']['batch_64']:.2f}x",
                f"{mean:{primary.fmt}}{spread}",
                f"{mean - statistics.fmean(values['teacher']):+.4f}",
                f"{m['train_seconds']:.0f}" if m["train_seconds"] else "—",
            ]
        )
    print(f"\n{spec.name} on {args.data}; {machine()}")
    print(f"latency: {spec.latency_note}; p50 ms")
    header = ["run", "model", "parameters", "batch 1 ms", "batch 64 ms", "speed-up 1"]
    header += [
        "speed-up 64",
        primary.label + (f" (mean of {args.seeds} seeds)" if args.seeds > 1 else ""),
        "vs teacher",
        "train s",
    ]
    print(table(header, rows))
    results = {"task": spec.name, "data": args.data, "machine": machine(), "runs": measured}
    results["paths"] = {name: [str(run.path) for run in runs] for name, runs in groups.items()}
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
