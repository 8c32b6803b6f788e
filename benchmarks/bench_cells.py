"""RNN vs LSTM vs GRU on every bundled dataset of every task: the tables of docs/cells.md.

    OMP_NUM_THREADS=1 python benchmarks/bench_cells.py run --out runs/cells --seeds 3 \
        --threads 1 --budget classification=2 --budget language-model=2 --budget forecasting=1.5
    python benchmarks/bench_cells.py latency --out runs/cells   # on a quiet machine
    python benchmarks/bench_cells.py table --out runs/cells

`run` calls `rnnkit compare` (`rnnkit.apps.compare.compare`) once per dataset: the three cells,
each with seeds 0..N-1, the same data, split, size and budget (`--budget TASK=MINUTES` caps each
run's training time; a task without one keeps its default epochs and early stopping). A dataset
whose `compare.json` exists is skipped, so an interrupted run continues where it stopped.
`table` prints one markdown table per dataset from those files: the headline metric's mean and
sample std over seeds, parameters, training seconds, throughput (the median epoch's) and the
p50 latency of the task's typical request at batch 1 and 64 (from `latency`'s quiet re-timing
when it has run, else as `compare` measured it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, table

CELLS = ["rnn", "lstm", "gru"]


def datasets() -> list[tuple[str, str]]:
    """(task, dataset) for every bundled dataset a task trains on, in registry order."""
    from rnnkit.data.registry import DATASETS
    from rnnkit.tasks import TASKS

    return [(d.task, name) for name, d in DATASETS.items() if d.task in TASKS]


def run(args: argparse.Namespace) -> None:
    from rnnkit.apps.compare import compare

    budgets = {}
    for item in args.budget:
        task, minutes = item.split("=", 1)
        budgets[task] = float(minutes)
    for task, data in datasets():
        if args.tasks and task not in args.tasks:
            continue
        out = args.out / f"{task}-{data}"
        if (out / "compare.json").is_file():
            print(f"{task} {data}: done already ({out})", flush=True)
            continue
        print(f"{task} {data}: comparing {CELLS} x {args.seeds} seeds -> {out}", flush=True)
        compare(
            task,
            data,
            CELLS,
            out_dir=out,
            seeds=range(args.seeds),
            budget_minutes=budgets.get(task),
        )


def latency(args: argparse.Namespace) -> None:
    """Re-time every run's latency on a quiet machine into `latency.json` beside compare.json.

    `compare` times each run right after training it, while the next run may already share the
    machine with other work; this pass times them all again, one after another, nothing else
    running, with the same calls (`spec.latency_call`, p50 of `LATENCY_REPEATS`).
    """
    from rnnkit.apps.compare import LATENCY_REPEATS, p50_ms
    from rnnkit.run import Run

    for path in sorted(args.out.glob("*/compare.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        timed: dict[str, dict[str, float]] = {}
        for cell in report["cells"]:
            for record in report["results"][cell]["runs"]:
                run = Run(path.parent / record["run"])
                predictor, part = run.predictor(), run.held_out()
                call = run.task.latency_call
                timed[record["run"]] = {
                    f"batch_{b}": round(p50_ms(call(predictor, part, b), n), 3)
                    for b, n in LATENCY_REPEATS.items()
                }
                print(path.parent.name, record["run"], timed[record["run"]], flush=True)
        out = path.with_name("latency.json")
        out.write_text(json.dumps({"machine": machine(), "runs": timed}, indent=1) + "\n")


def tables(args: argparse.Namespace) -> None:
    for path in sorted(args.out.glob("*/compare.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        quiet = path.with_name("latency.json")
        retimed = json.loads(quiet.read_text())["runs"] if quiet.is_file() else {}
        primary = report["primary_metric"]
        budget = report.get("budget_minutes")
        print(
            f"\n### {report['task']}: {report['data']}\n\n"
            f"{len(report['seeds'])} seeds; "
            + (f"{budget} minutes of training per run" if budget else "the task's default epochs")
            + f"; {_machine(report['machine'])}"
            + ("; latency re-timed with nothing else running\n" if retimed else "\n")
        )
        names = [primary] + [m for m in report["metric_labels"] if m != primary]
        rows = []
        for cell in report["cells"]:
            s = report["results"][cell]["summary"]
            runs = report["results"][cell]["runs"]
            if all(r["run"] in retimed for r in runs):
                for b in ("batch_1", "batch_64"):
                    times = [retimed[r["run"]][b] for r in runs]
                    s[f"latency_ms.{b}"] = {"mean": sum(times) / len(times)}
            shown = []
            for name in names:
                metric = s.get(f"metrics.{name}")
                if metric is None or metric["mean"] is None:
                    shown.append("—")
                    continue
                std = "" if metric["std"] is None else f" ± {metric['std']:.4f}"
                shown.append(f"{metric['mean']:.4f}{std}")
            rows.append(
                [
                    cell,
                    *shown,
                    f"{s['parameters']['mean']:,.0f}",
                    f"{s['train_seconds']['mean']:.0f}",
                    f"{s['throughput']['mean']:,.0f}" if "throughput" in s else "—",
                    f"{s['latency_ms.batch_1']['mean']:.2f}",
                    f"{s['latency_ms.batch_64']['mean']:.2f}",
                ]
            )
        header = [
            "cell",
            *(report["metric_labels"][n] for n in names),
            "parameters",
            "train s",
            report["throughput_unit"],
            "batch 1 ms",
            "batch 64 ms",
        ]
        print(table(header, rows))


def _machine(m: dict | str) -> str:
    if isinstance(m, str):
        return m
    threads = m.get("torch_threads")
    return f"{m.get('cpu')}, {m.get('cpus')} vCPUs ({m.get('cpu_capability')}), {threads} thread(s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train and measure every cell on every dataset")
    p.add_argument("--out", type=Path, default=Path("runs/cells"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget", action="append", default=[], metavar="TASK=MINUTES")
    p.add_argument("--tasks", type=lambda s: s.split(","), help="only these tasks (a,b)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    q = sub.add_parser("latency", help="re-time every run's latency (run it on a quiet machine)")
    q.add_argument("--out", type=Path, default=Path("runs/cells"))
    q.add_argument("--threads", type=int, default=1)
    t = sub.add_parser("table", help="print the markdown tables")
    t.add_argument("--out", type=Path, default=Path("runs/cells"))
    args = parser.parse_args(argv)
    if args.command == "run":
        torch.set_num_threads(args.threads)
        print(machine(), flush=True)
        run(args)
    elif args.command == "latency":
        torch.set_num_threads(args.threads)
        latency(args)
    else:
        tables(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
