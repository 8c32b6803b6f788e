"""The `rnnkit` command line; `rnnkit.cli.commands` builds the parser from every command module.

This package's `__init__` stays empty of imports: the task folders add their own sub-commands
with the helpers in `rnnkit.cli.flags` and `rnnkit.cli.progress`, and importing those must not
import every command (which import the tasks).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see `rnnkit.cli.commands.main`)."""
    from rnnkit.cli.commands import main as run

    return run(argv)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    from rnnkit.cli.commands import build_parser as build

    return build()
