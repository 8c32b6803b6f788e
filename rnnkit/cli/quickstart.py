"""`rnnkit quickstart`: three tasks on real data in ~10 minutes, one summary, one report.html."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from rnnkit.cli.progress import ProgressBar
from rnnkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quickstart",
        help="train a classifier, forecasters and a language model on real data, then report",
        description="Fetch the datasets and train, within --minutes: a sentiment classifier "
        "(rotten-tomatoes), a forecaster (airline-passengers, plus electricity from 8 minutes) "
        "and a character language model (shakespeare). Prints each model's metric against its "
        "baseline and writes OUT/report.html, a self-contained page linking every run.",
    )
    p.add_argument("--out", default="runs/quickstart", metavar="DIR", help="(runs/quickstart)")
    p.add_argument(
        "--minutes", type=float, default=10.0, metavar="M", help="whole budget (default 10)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STAGE.KEY=VALUE",
        help="a config key of one stage (sentiment, airline, electricity, shakespeare), "
        "e.g. shakespeare.model.hidden_size=128",
    )
    p.add_argument("--force", action="store_true", help="replace runs a previous quickstart left")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_quickstart)


def stage_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`["shakespeare.model.hidden_size=64"]` -> `{"shakespeare": {"model.hidden_size": "64"}}`."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        stage, dot, rest = key.strip().partition(".")
        if not sep or not dot or not rest:
            raise ConfigError(
                f"--set {item!r}: expected STAGE.KEY=VALUE, e.g. shakespeare.model.hidden_size=64"
            )
        out.setdefault(stage, {})[rest] = value.strip()
    return out


def cmd_quickstart(args: argparse.Namespace) -> int:
    from rnnkit.apps.quickstart import format_summary, run_quickstart

    def callbacks(stage):
        return [ProgressBar(stage.monitor, disable=args.quiet)]

    result = run_quickstart(
        args.out,
        args.minutes,
        overrides=stage_overrides(args.set),
        callbacks=callbacks,
        replace=args.force,
    )
    print()
    print(format_summary(result.rows))
    print(f"\n{result.seconds / 60:.1f} minutes; report: {result.report}")
    return 0
