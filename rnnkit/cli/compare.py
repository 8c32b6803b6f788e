"""`rnnkit compare --task T --data D --cells rnn,lstm,gru`: the same run with each cell type."""

from __future__ import annotations

import argparse

from rnnkit.cli.progress import ProgressBar


def register(subparsers: argparse._SubParsersAction) -> None:
    from rnnkit.apps.compare import task_choices

    p = subparsers.add_parser(
        "compare",
        help="train RNN, LSTM and GRU the same way and compare them",
        description="Train one run per cell type (and seed) with the same data, split, seed, "
        "size and time budget; evaluate each on the test split; write compare.md, "
        "compare.json and charts to --out and print a summary table.",
    )
    p.add_argument("--task", required=True, choices=task_choices(), help="what to train")
    p.add_argument(
        "--data", metavar="NAME|PATH", help="registry dataset or your file (default: the task's)"
    )
    p.add_argument(
        "--cells", default="rnn,lstm,gru", metavar="C,C", help="cells to compare (rnn,lstm,gru)"
    )
    p.add_argument(
        "--budget-minutes",
        type=float,
        metavar="M",
        help="training time per run (train.max_minutes); default: the task's epochs",
    )
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, metavar="N", help="train seeds 0..N-1 per cell")
    seeds.add_argument("--seed-list", metavar="S,S", help="these training seeds per cell")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/compare-TASK-DATA)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set any config key"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compare)


def parse_seeds(args: argparse.Namespace) -> list[int]:
    """`--seeds N` -> 0..N-1; `--seed-list 1,5` -> [1, 5]; neither -> [0]."""
    from rnnkit.errors import ConfigError

    if args.seeds is not None:
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
        return list(range(args.seeds))
    if args.seed_list is not None:
        try:
            return [int(s) for s in args.seed_list.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(
                f"--seed-list {args.seed_list!r}: expected integers separated by commas, e.g. 0,1,2"
            ) from None
    return [0]


def cmd_compare(args: argparse.Namespace) -> int:
    from rnnkit.apps.compare import compare, default_out, resolve_task
    from rnnkit.apps.compare_report import format_table
    from rnnkit.config import parse_overrides
    from rnnkit.runs import train_config

    task = resolve_task(args.task).name
    defaults = train_config(task)
    data = args.data or defaults.data.data
    out = args.out or default_out(task, data)
    # the metric that picks the best epoch where the task's config has one, else the loss
    monitor = getattr(defaults, "monitor", "loss")

    def bars(cell: str, seed: int) -> list[ProgressBar]:
        return [ProgressBar(monitor, disable=args.quiet)]

    report = compare(
        task,
        data,
        args.cells.split(","),
        out,
        seeds=parse_seeds(args),
        budget_minutes=args.budget_minutes,
        overrides=parse_overrides(args.set),
        callbacks=bars,
    )
    print()
    print(format_table(report))
    print(f"\ncomparison: {out}/compare.md  (charts: curves.png, summary.png; data: compare.json)")
    return 0
