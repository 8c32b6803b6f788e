"""The `rnnkit` command: one entry point, one sub-command module per job.

Each module under `rnnkit/cli/` exposes `register(subparsers)`, which adds its commands and sets
`func` on their parsers; each task adds its own (`rnnkit train <task>`, `predict`, `forecast`,
`generate`) through its spec. Errors rnnkit raises on purpose (`RnnkitError`) print as one line on
stderr with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence

from rnnkit.cli import (
    bench,
    compare,
    datasets,
    distill,
    evaluate,
    export,
    quickstart,
    serve,
    train,
)
from rnnkit.errors import RnnkitError
from rnnkit.tasks import TASKS
from rnnkit.version import __version__

COMMAND_MODULES = [datasets, train, distill, evaluate, quickstart, compare, export, bench, serve]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent networks (RNN, LSTM, GRU) for sequence classification, "
        "forecasting and generation.",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="debug log output")
    parser.add_argument(
        "-q", "--quiet-logs", action="store_true", help="only warnings and errors in the log"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    for spec in TASKS.values():
        if spec.register_commands is not None:
            spec.register_commands(subparsers)
    return parser


# errno values that mean the machine's disk or permissions, reported in one line
_ENVIRONMENT_ERRORS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG", "EIO")
    if hasattr(errno, name)
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # rnnkit's own INFO messages (data summary, embedding coverage, downloads) are part of the
    # CLI's output; other libraries stay at WARNING. -q silences ours, -v adds debug detail.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    ours = logging.DEBUG if args.verbose else logging.WARNING if args.quiet_logs else logging.INFO
    rank = os.environ.get("RANK", "0")  # set by torchrun; only rank 0 tells its progress
    if rank != "0" and not args.verbose:
        ours = logging.WARNING
    logging.getLogger("rnnkit").setLevel(ours)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RnnkitError as exc:
        where = f" (rank {rank})" if rank != "0" else ""
        print(f"rnnkit: error{where}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        sys.stderr.close()
        return 0
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRORS:
            raise
        # The disk or its permissions, not rnnkit: one line. Every write is atomic (a temporary
        # sibling, renamed when complete), so the file being written was discarded whole.
        what = f" {exc.filename}" if exc.filename else ""
        print(
            f"rnnkit: error: cannot write{what}: {exc.strerror}; the files written before are "
            "intact. Make room (or fix the permissions) and run the command again; a training "
            "continues with --resume",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:  # a torchrun rank leaves its process group
            from rnnkit.training.distributed import shutdown

            shutdown()
