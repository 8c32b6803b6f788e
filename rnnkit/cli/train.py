"""`rnnkit train TASK ...`: one sub-command per task, each added by its spec's `register_train`."""

from __future__ import annotations

import argparse

from rnnkit.tasks import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model and write a run folder")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for spec in TASKS.values():
        spec.register_train(tasks)
