"""Distillation: a small student against its teacher and against itself trained without one.

    python benchmarks/bench_distill.py --task classification --data rotten-tomatoes \
        --out runs/distill-rt
    python benchmarks/bench_distill.py --task language-model --data shakespeare \
        --out runs/distill-lm

Three runs, one after another in this process: the teacher (the task's defaults, or `--teacher
DIR` to reuse a trained one), the student distilled from it (`rnnkit.distill`: by default a
one-layer GRU half the teacher's width), and the same student with `alpha=0` (no teacher: the
same data, tokenizer, seed and budget; the reference a distilled student must beat). Each is
measured the way `rnnkit compare` measures a run (`rnnkit.apps.compare.measure`: the held-out
metric from `rnnkit evaluate`, parameters, p50 latency of the task's typical request at batch 1
and 64). The table prints the student's speed-up over the teacher and the metric's change; the
figures go into docs/benchmarks.md ("Distillation").
"""

from __future__ import annotations

import argparse
import json
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
    runs = {
        "teacher": teacher,
        "distilled student": timed("student", lambda f: rnnkit.distill(teacher, f, config or None)),
        "student from scratch": timed(
            "scratch", lambda f: rnnkit.distill(teacher, f, config or None, alpha=0.0)
        ),
    }
    measured = {name: measure(run) for name, run in runs.items()}
    primary = spec.primary_metric
    base = measured["teacher"]
    rows = []
    for name, m in measured.items():
        c = runs[name].config.model
        shape = f"{c.cell} {c.num_layers}x{c.hidden_size}" + (
            " bi" if getattr(c, "bidirectional", False) else ""
        )
        value = m["metrics"][primary.name]
        rows.append(
            [
                name,
                shape,
                f"{m['parameters']:,}",
                f"{m['latency_ms']['batch_1']:.2f}",
                f"{m['latency_ms']['batch_64']:.2f}",
                f"{base['latency_ms']['batch_1'] / m['latency_ms']['batch_1']:.2f}x",
                f"{base['latency_ms']['batch_64'] / m['latency_ms']['batch_64']:.2f}x",
                format(value, primary.fmt),
                f"{value - base['metrics'][primary.name]:+.4f}",
                f"{m['train_seconds']:.0f}" if m["train_seconds"] else "—",
            ]
        )
    print(f"\n{spec.name} on {args.data}; {machine()}")
    print(f"latency: {spec.latency_note}; p50 ms")
    header = ["run", "model", "parameters", "batch 1 ms", "batch 64 ms", "speed-up 1"]
    header += ["speed-up 64", primary.label, "vs teacher", "train s"]
    print(table(header, rows))
    results = {"task": spec.name, "data": args.data, "machine": machine(), "runs": measured}
    results["paths"] = {name: str(run.path) for name, run in runs.items()}
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
