"""`rnnkit distill RUN --out DIR`: a smaller student trained on a run's soft outputs.

The same for every task: the teacher's run folder says which task it is, its spec trains the
student (`rnnkit.api.distill`), and the student's headline metrics print beside the teacher's.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rnnkit.cli.flags import TRAIN_FLAGS, add_train_flags, cell_choices


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distill",
        help="train a smaller student on a trained run's soft outputs",
        description="Knowledge distillation: a student with the teacher's data, split, "
        "tokenizer and budget, trained on (1 - alpha) x the true targets + alpha x the "
        "teacher's temperature-softened outputs. By default a one-layer GRU half the "
        "teacher's width.",
    )
    p.add_argument("run", metavar="RUN", help="the teacher's run folder")
    p.add_argument("--out", required=True, metavar="DIR", help="the student's run folder")
    p.add_argument("--cell", choices=cell_choices(), help="the student's cell (default gru)")
    p.add_argument(
        "--hidden-size", type=int, metavar="N", help="default: half the teacher's hidden size"
    )
    p.add_argument("--num-layers", type=int, metavar="N", help="default 1")
    p.add_argument(
        "--temperature", type=float, metavar="T", help="softens the teacher's outputs (default 2)"
    )
    p.add_argument(
        "--alpha",
        type=float,
        metavar="A",
        help="the soft loss's share (default 0.5; 0 trains the same student without a teacher)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        metavar="K",
        help="language models: read the teacher once over the training text and keep each "
        "position's K most likely next tokens, so a distilled step costs about what a step "
        "without a teacher costs (default 0: the teacher runs beside every step)",
    )
    add_train_flags(p)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set any config key"
    )
    p.add_argument("--resume", action="store_true", help="continue the student in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_distill)


def cmd_distill(args: argparse.Namespace) -> int:
    from rnnkit.api import distill
    from rnnkit.cli.progress import ProgressBar
    from rnnkit.config import parse_overrides
    from rnnkit.run import Run
    from rnnkit.runs import nest_overrides

    teacher = Run(args.run)
    options: dict[str, Any] = {
        name: getattr(args, name)
        for name in (
            "cell",
            "hidden_size",
            "num_layers",
            "temperature",
            "alpha",
            "top_k",
            *TRAIN_FLAGS,
        )
        if getattr(args, name, None) is not None
    }
    monitor = getattr(teacher.config, "monitor", "loss")
    bar = ProgressBar(monitor, disable=args.quiet)
    config = nest_overrides(parse_overrides(args.set)) if args.set else None
    student = distill(teacher, args.out, config, callbacks=[bar], resume=args.resume, **options)
    if student is None:  # a torchrun rank other than 0
        return 0
    rows = {"teacher": teacher, "student": student}
    summary: dict[str, Any] = {"run": str(student.path), "teacher": str(teacher.path)}
    for metric in teacher.task.metrics:
        values = {who: metric.value(run.test_metrics() or {}) for who, run in rows.items()}
        shown = {who: "—" if v is None else format(v, metric.fmt) for who, v in values.items()}
        print(f"{metric.label}: student {shown['student']}, teacher {shown['teacher']}")
        summary[metric.name] = values["student"]
    print(f"run folder: {student.path}")
    print(json.dumps(summary))
    return 0
