"""`rnnkit bench RUN [--batch-sizes 1,64] [--seq-len N] [--repeats N] [--json]`."""

from __future__ import annotations

import argparse
import json

from rnnkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="latency, throughput and size of a run on every deployment backend",
        description="Time the run's model in eager PyTorch (fp32, bf16 where the CPU has it), "
        "TorchScript, torch int8, ONNX Runtime fp32 and int8, on the same inputs and threads; "
        "report p50/p99 latency, sequences/s, tokens/s and the model size on disk.",
    )
    p.add_argument("run", metavar="RUN", help="a run folder")
    p.add_argument(
        "--batch-sizes", default="1,64", metavar="B,B", help="comma-separated (default: 1,64)"
    )
    p.add_argument(
        "--seq-len",
        type=int,
        metavar="N",
        help="steps per row (default: the run's typical length: median test text, BPTT "
        "window or input window)",
    )
    p.add_argument("--repeats", type=int, default=20, metavar="N", help="timed calls (20)")
    p.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed calls first (3)")
    p.add_argument("--seed", type=int, default=0, help="input seed (0)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the rows")
    p.set_defaults(func=cmd_bench)


def parse_batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--batch-sizes {text!r}: give positive integers, e.g. 1,64")
    return sizes


def cmd_bench(args: argparse.Namespace) -> int:
    from rnnkit.apps.bench import bench_run

    result = bench_run(
        args.run,
        batch_sizes=parse_batch_sizes(args.batch_sizes),
        seq_len=args.seq_len,
        repeats=args.repeats,
        warmup=args.warmup,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(
        f"{result.run} ({result.task}): seq_len {result.seq_len}, {result.repeats} timed calls "
        f"per row after {args.warmup} warm-up; torch threads {result.threads}, ONNX Runtime "
        f"intra_op_num_threads {result.threads} (set to match, for a like-for-like comparison)"
    )
    print(result.table())
    return 0
