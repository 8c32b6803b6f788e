"""rnnkit's own rows of the peer tables: `rnnkit train ...` with its defaults, timed the same way.

    .venv/bin/python benchmarks/peers/rnnkit_runs.py --task classification --data rotten-tomatoes
    .venv/bin/python benchmarks/peers/rnnkit_runs.py --task forecasting --data electricity
    .venv/bin/python benchmarks/peers/rnnkit_runs.py --task language_model --data shakespeare
        [--set KEY=VALUE ...] [--runs runs/peers/rnnkit] [--results runs/peers/results]

Each call runs the exact command the exported splits were made from (`classes.json` /
`protocol.json` / the language model's `rnnkit train lm --data shakespeare`: rnnkit's defaults;
forecasting with the per-series flags of docs/benchmarks.md) as a subprocess into
`<runs>/<task>-<data>`, and times it from start to exit: loading, training, the held-out
evaluation (the whole backtest for a forecaster) and writing the run folder. The metric is read
from the run folder rnnkit wrote (`test_metrics.json`, `backtest.json`), never recomputed, and
written as `results/rnnkit-<data>.json` in the peers' format. `--set` passes config overrides
through (smoke runs: `--set train.epochs=1`), and they are recorded.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol import RESULTS, SPLITS, versions, write_result

TASKS = {
    "classification": ("rotten-tomatoes", "clothing-reviews"),
    "forecasting": ("airline-passengers", "sunspots", "electricity", "retail"),
    "language_model": ("shakespeare",),
}


def command(task: str, data: str, splits: Path) -> list[str]:
    """The `rnnkit train` arguments whose held-out part the exported splits are."""
    if task == "classification":
        info = json.loads((splits / "classification" / data / "classes.json").read_text())
    elif task == "forecasting":
        info = json.loads((splits / "forecasting" / data / "protocol.json").read_text())
    else:
        return ["train", "lm", "--data", data]
    words = shlex.split(info["rnnkit_command"])
    assert words[0] == "rnnkit", words
    return words[1:]


def read_metrics(task: str, run_dir: Path) -> dict[str, Any]:
    """The table's metrics from the run folder rnnkit wrote."""
    if task == "classification":
        m = json.loads((run_dir / "test_metrics.json").read_text())
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    if task == "forecasting":
        b = json.loads((run_dir / "backtest.json").read_text())
        out = {k: b["model"].get(k) for k in ("mae", "rmse", "smape", "mase")}
        out["streaming_mase"] = b.get("streaming", {}).get("mase")
        out["seasonal_naive_mase"] = b["seasonal_naive"]["mase"]
        out["per_series"] = {name: m["model"] for name, m in b.get("per_series", {}).items()}
        return out
    m = json.loads((run_dir / "test_metrics.json").read_text())
    return {"val_loss": m.get("loss"), "held_out": {k: v for k, v in m.items() if k != "loss"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=list(TASKS))
    parser.add_argument("--data", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--splits", type=Path, default=SPLITS)
    parser.add_argument("--runs", type=Path, default=Path("runs/peers/rnnkit"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", help="result file name (default rnnkit-<data>)")
    args = parser.parse_args(argv)
    if args.data not in TASKS[args.task]:
        parser.error(f"--data for {args.task}: one of {', '.join(TASKS[args.task])}")
    run_dir = args.runs / f"{args.task}-{args.data}"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh run each time: this folder is the benchmark's own
    words = command(args.task, args.data, args.splits)
    words += ["--out", str(run_dir), "--quiet"] + [f"--set={kv}" for kv in args.set]
    argv_run = [sys.executable, "-m", "rnnkit", *words]
    print("$", shlex.join(argv_run), flush=True)
    started = time.perf_counter()
    subprocess.run(argv_run, check=True)
    seconds = time.perf_counter() - started
    metrics = read_metrics(args.task, run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    row = {"name": "rnnkit (defaults)", **metrics, "seconds": seconds}
    if args.set:
        row["name"] = f"rnnkit ({', '.join(args.set)})"
    record = {
        "task": args.task,
        "data": args.data,
        "tool": "rnnkit",
        "rows": [row],
        "settings": {"command": shlex.join(["rnnkit", *words]), "run_dir": str(run_dir)},
        "run_config": config.get("config"),
        "versions": versions("rnnkit", "torch", "numpy"),
    }
    write_result(args.results, args.name or f"rnnkit-{args.data}", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
