"""One markdown table per task from `runs/peers/results/*.json`: metric, wall time, ratios.

    .venv/bin/python benchmarks/peers/table.py [--results runs/peers/results]

(any environment: standard library only.) Every result file holds `task`, `data`, `tool` and
`rows` (one per model, each with its metric(s) and `seconds`: wall time of training plus
prediction on the held-out part), written by a peer script or by `rnnkit_runs.py`. For each
dataset, rnnkit's row gets its ratio to the best peer: metric ratio (rnnkit / best; for MASE and
loss below 1 means rnnkit is better, for accuracy above 1) and wall-time ratio against that same
peer. Results of smoke runs (limited origins or texts) are marked and never taken as the best.
The machine of each file is printed under the tables, so a reader sees whether they were
measured in one session on one machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol import RESULTS

#: task -> (metric key, higher is better, other metric keys shown)
METRICS: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "classification": ("accuracy", True, ("macro_f1",)),
    "forecasting": ("mase", False, ("smape",)),
    "language_model": ("val_loss", False, ()),
}
TITLES = {
    "classification": "Classification: test accuracy (macro-F1), rnnkit's split",
    "forecasting": "Forecasting: rolling-origin backtest MASE (sMAPE %), rnnkit's origins",
    "language_model": "Language model: validation loss, nats/char, rnnkit's split",
}


def load(results: Path) -> list[dict[str, Any]]:
    """Every result file, oldest first (a later file of the same name replaces nothing)."""
    files = sorted(results.glob("*.json"), key=lambda p: p.stat().st_mtime)
    return [json.loads(p.read_text(encoding="utf-8")) | {"_file": p.name} for p in files]


def is_smoke(record: dict[str, Any]) -> bool:
    settings = record.get("settings", {})
    return bool(settings.get("max_origins") or settings.get("limit") or record.get("smoke"))


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def task_table(task: str, records: list[dict[str, Any]]) -> str:
    """The markdown table of one task."""
    key, higher, others = METRICS[task]
    header = ["data", "tool", "model", key, *others, "wall s", "rnnkit ÷ best peer"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for data in sorted({r["data"] for r in records}):
        rows = []
        for record in (r for r in records if r["data"] == data):
            for row in record["rows"]:
                rows.append((record, row))
        peers = [
            (rec, row)
            for rec, row in rows
            if rec["tool"] != "rnnkit" and row.get(key) is not None and not is_smoke(rec)
        ]
        best = None
        if peers:
            pick = max if higher else min
            best = pick(peers, key=lambda pair: pair[1][key])[1]
        for record, row in rows:
            ratio = ""
            if record["tool"] == "rnnkit" and best is not None and row.get(key) is not None:
                metric_ratio = row[key] / best[key]
                time_ratio = row["seconds"] / best["seconds"]
                ratio = f"{key} x{metric_ratio:.3f}, time x{time_ratio:.2f} (vs {best['name']})"
            name = row["name"] + (" (smoke)" if is_smoke(record) else "")
            if row.get("errors"):
                name += f" — failed: {next(iter(row['errors'].values()))[:60]}"
            cells = [data, record["tool"], name, fmt(row.get(key))]
            cells += [fmt(row.get(o)) for o in others]
            cells += [f"{row['seconds']:.1f}", ratio]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    records = load(args.results)
    if not records:
        raise SystemExit(f"no results in {args.results}; see benchmarks/peers/README.md")
    for task in METRICS:
        mine = [r for r in records if r["task"] == task]
        if mine:
            print(f"### {TITLES[task]}\n\n{task_table(task, mine)}\n")
    machines = {
        json.dumps(r.get("machine", {}).get("cpu")) + f", {r.get('machine', {}).get('cpus')} CPUs"
        for r in records
    }
    print("Machines: " + "; ".join(sorted(machines)))
    print("Files: " + ", ".join(r["_file"] for r in records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
