"""`rnnkit evaluate RUN [--data ...] [--json]`: metrics of any task's run, printed by its spec."""

from __future__ import annotations

import argparse

from rnnkit.io import dumps_json
from rnnkit.tasks import get_task


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="metrics of a trained run on its test split or on other data"
    )
    p.add_argument("run", metavar="RUN", help="a run folder")
    p.add_argument("--data", metavar="NAME|PATH", help="evaluate on this instead of the test split")
    p.add_argument("--text-column", metavar="C", help="(classifier) text column of --data")
    p.add_argument("--label-column", metavar="C", help="(classifier) label column of --data")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rnnkit.runs import evaluate

    options = {
        k: v
        for k, v in (("text_column", args.text_column), ("label_column", args.label_column))
        if v is not None
    }
    metrics = evaluate(args.run, args.data, **options)
    formatter = get_task(metrics["task"]).format_metrics
    print(dumps_json(metrics) if args.json else formatter(metrics))  # NaN as null: strict JSON
    return 0
