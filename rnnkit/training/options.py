"""The engine's options that every task takes: option name -> dotted key of a run config.

Every task's run config holds a `TrainConfig` under `train`, so `--epochs 3` on the command line
(`rnnkit.cli.flags`) and `epochs=3` in `rnnkit.train(...)` (`rnnkit.api`) set the same key,
`train.epochs`, whatever the task. A task's own options are its spec's `options`.
"""

from __future__ import annotations

TRAIN_OPTIONS: dict[str, str] = {
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "precision": "train.precision",
    "device": "train.device",
    "checkpoint_every": "train.checkpoint_every",
    "checkpoint_seconds": "train.checkpoint_seconds",
}
