"""Data-parallel training speed: 1 process x 2 threads against 2 processes x 1 thread (torchrun).

    .venv/bin/python benchmarks/bench_ddp.py [--minutes 0.75] [--tasks classification,...]

For each task, the same `rnnkit train` command on real data runs three ways, one after another,
each for `--minutes` of training (fp32, so every CPU runs the same kernels):

- `1 proc x 1 thread`, batch B: the reference for what one core does;
- `1 proc x 2 threads`, batch B: what a plain `rnnkit train` does on this 2-core machine;
- `2 procs x 1 thread`, batch B/2 each under `torchrun --nproc-per-node 2` (DDP over gloo).

Throughput is the training loop's own figure (`tokens_per_second` in `metrics.jsonl`: real
tokens, or forecast target steps, per second of optimizer steps, evaluation excluded), the median
over the run's epochs, summed over ranks. The table gives each as a ratio to `1 proc x 2 threads`
(the issue's bar: 2 processes no slower than 0.9x).

The all-reduce volume per step is what DDP sends: every trainable parameter's gradient, fp32, in
a ring of N ranks each rank sends and receives 2 (N - 1) / N times the gradient bytes. The last
columns turn that into the link speed a multi-host run needs so that the all-reduce takes no
longer than the step it overlaps with.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table
from safetensors import safe_open

PY = sys.executable
TORCHRUN = str(Path(PY).with_name("torchrun"))

# per task: data flags and the total batch B (per step, over every process)
TASKS = {
    "classification": (
        ["classification", "--data", "rotten-tomatoes", "--embeddings", "none"],
        64,
    ),
    "forecasting": (
        ["forecasting", "--data", "electricity", "--ensemble", "1", "--no-backtest"],
        64,
    ),
    "language-model": (["language-model", "--data", "shakespeare"], 32),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(task: str, procs: int, threads: int, minutes: float, out: Path) -> dict:
    flags, batch = TASKS[task]
    cmd = [
        "train",
        *flags,
        "--precision",
        "fp32",
        "--batch-size",
        str(batch // procs),
        "--set",
        f"train.max_minutes={minutes}",
        "--epochs",
        "1000",
        "--set",
        "train.patience=null",
        "--quiet",
        "--out",
        str(out),
    ]
    if procs == 1:
        launch = [PY, "-m", "rnnkit", "-q"]
    else:
        launch = [TORCHRUN, "--nproc-per-node", str(procs), "--rdzv-backend", "c10d"]
        launch += ["--rdzv-endpoint", f"127.0.0.1:{free_port()}", "-m", "rnnkit", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([*launch, *cmd], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(launch + cmd)} failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        params = sum(numel(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
    steps = records[-1]["step"]
    seconds = records[-1]["seconds"]
    return {
        "throughput": statistics.median(r["tokens_per_second"] for r in records),
        "params": params,
        "steps_per_second": steps / max(seconds, 1e-9),
    }


def numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=0.75, help="training budget per run")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    args = parser.parse_args()

    print(machine())
    rows, volume_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            runs = {}
            for name, procs, threads in [
                ("1 proc x 1 thread", 1, 1),
                ("1 proc x 2 threads", 1, 2),
                ("2 procs x 1 thread", 2, 1),
            ]:
                runs[name] = train(task, procs, threads, args.minutes, Path(tmp) / task / name)
                print(f"{task}: {name}: {runs[name]['throughput']:,.0f}/s", flush=True)
            ref = runs["1 proc x 2 threads"]["throughput"]
            rows.append(
                [
                    task,
                    TASKS[task][1],
                    *(
                        f"{r['throughput']:,.0f} ({r['throughput'] / ref:.2f}x)"
                        for r in runs.values()
                    ),
                ]
            )
            ddp = runs["2 procs x 1 thread"]
            grad_bytes = 4 * ddp["params"]
            sent = 2 * (2 - 1) / 2 * grad_bytes  # ring all-reduce, per rank per step
            volume_rows.append(
                [
                    task,
                    f"{ddp['params']:,}",
                    f"{grad_bytes / 2**20:.2f} MiB",
                    f"{ddp['steps_per_second']:.1f}",
                    f"{sent * ddp['steps_per_second'] * 8 / 1e9:.3f} Gbit/s",
                ]
            )
    print()
    print(
        table(
            [
                "task",
                "batch B",
                "1 proc x 1 thread",
                "1 proc x 2 threads",
                "2 procs x 1 thread (B/2 each)",
            ],
            rows,
        )
    )
    print()
    print(
        table(
            [
                "task",
                "parameters",
                "all-reduce per step (fp32 grads)",
                "steps/s (2 procs)",
                "link needed at this rate",
            ],
            volume_rows,
        )
    )


if __name__ == "__main__":
    main()
