"""Flags of `rnnkit train TASK ...`: flags, a config file and --set overrides -> one run folder.

Precedence: defaults < --config FILE < flags < --set key=value. Every flag is a shorthand for a
dotted config key (shown in each flag's help), so a YAML file and the command line say the same
things in the same words. Each task's `rnnkit/tasks/<task>/cli.py` adds its own
`rnnkit train <task>` parser through its spec's `register_train(tasks)` with the helpers below;
this module knows no task.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rnnkit.errors import ConfigError
from rnnkit.run_folder import new_run_dir
from rnnkit.training.options import TRAIN_OPTIONS


def add_config_flag(
    parser: argparse.ArgumentParser, flags: dict[str, str], *names: str, **kwargs: Any
) -> None:
    """Add a flag whose value overrides the config key `flags[dest]`; help shows the key."""
    dest = kwargs.get("dest") or names[0].lstrip("-").replace("-", "_")
    kwargs["help"] = f"{kwargs.get('help', '')} [{flags[dest]}]".strip()
    parser.add_argument(*names, default=None, **kwargs)


#: the engine's options every task exposes as flags: flag dest -> dotted config key.
TRAIN_FLAGS: dict[str, str] = TRAIN_OPTIONS


def add_train_flags(parser: argparse.ArgumentParser, help: dict[str, str] | None = None) -> None:
    """--epochs, --batch-size, --lr, --seed, --precision, --device (keys in `TRAIN_FLAGS`).

    Args:
        parser: the task's `rnnkit train <task>` parser.
        help: per-task wording for a flag, by dest (e.g. what a batch row means for an LM).
    """
    from rnnkit.training.precision import DEVICES, PRECISIONS

    text = help or {}

    def flag(name: str, **kwargs: Any) -> None:
        dest = name.lstrip("-").replace("-", "_")
        add_config_flag(
            parser, TRAIN_FLAGS, name, help=text.get(dest, kwargs.pop("help", "")), **kwargs
        )

    flag("--epochs", type=int, metavar="N")
    flag("--batch-size", type=int, metavar="N")
    flag("--lr", type=float, metavar="LR", help="peak learning rate")
    flag("--seed", type=int, metavar="N")
    flag("--precision", choices=list(PRECISIONS))
    flag("--device", metavar="|".join(DEVICES))
    flag(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="also checkpoint every STEPS optimizer steps, inside epochs (exact --resume)",
    )
    flag(
        "--checkpoint-seconds",
        type=float,
        metavar="S",
        help="checkpoint at most every S seconds (default 30; 0: after every epoch)",
    )


def cell_choices() -> list[str]:
    """Valid `--cell` values, from the one cell registry."""
    from rnnkit.models.encoder import CELLS

    return list(CELLS)


def norm_choices() -> list[str]:
    """Valid `--norm` values, from the one norm registry."""
    from rnnkit.models.norm import NORMS

    return list(NORMS)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """--out, --config, --set, --resume and --quiet: the same for every task."""
    parser.add_argument("--out", metavar="DIR", help="run folder (default runs/<data>-<time>)")
    parser.add_argument("--config", metavar="FILE", help="YAML or TOML file of config keys")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set any config key"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def config_overrides(args: argparse.Namespace, flags: dict[str, str]) -> list[str]:
    """`key=value` overrides from the flags given (task flags and `TRAIN_FLAGS`), then `--set`."""
    out = []
    for dest, key in {**flags, **TRAIN_FLAGS}.items():
        value = getattr(args, dest, None)
        if value is not None:
            out.append(f"{key}={value}")
    return out + list(args.set)


def run_folder(args: argparse.Namespace, data: str, tag: str) -> Path:
    """`--out`, or `runs/<data name>-<tag>-<time>` for a new run."""
    if args.out:
        return Path(args.out)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # each rank would pick its own name
        raise ConfigError("under torchrun every process trains one run: pass --out DIR")
    if args.resume:
        raise ConfigError("--resume needs --out DIR naming the run to continue")
    return new_run_dir(data, tag)
