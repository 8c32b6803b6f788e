"""Runs by task name: train one from its defaults and dotted overrides, load or evaluate one.

`rnnkit.runs.train("classification", "runs/gru", {"model.cell": "gru"})` is what
`rnnkit compare` and the quickstart call; `rnnkit.train(...)` (in `rnnkit.api`) is the friendlier
form for people, taking data in memory and options by their flag names. The run folder itself is
`rnnkit.run_folder` (files) and `rnnkit.run.Run` (the handle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rnnkit.errors import ConfigError
from rnnkit.run import Run, read_config
from rnnkit.run_folder import (
    CONFIG_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    Files,
    check_run_dir,
    load_text_encoder,
    load_weights,
    versions,
    write_config,
)
from rnnkit.tasks import get_task

__all__ = [
    "CONFIG_FILE",
    "TOKENIZER_FILE",
    "WEIGHTS_FILE",
    "Files",
    "check_run_dir",
    "evaluate",
    "load",
    "load_text_encoder",
    "load_weights",
    "nest_overrides",
    "read_config",
    "train",
    "train_config",
    "versions",
    "write_config",
]


def load(path: str | Path, device: str = "cpu") -> Any:
    """Rebuild the predictor stored in a run folder (classifier, forecaster, language model).

    Args:
        path: a run folder written by `rnnkit train ...`.
        device: where to run the model.

    Returns:
        The task's predictor, e.g. a `ClassifierPredictor` with `.predict(texts)`.
    """
    return Run(path, device).predictor()


def evaluate(path: str | Path, data: str | None = None, **options: Any) -> dict[str, Any]:
    """Metrics of the run in `path` on its own held-out part, or on `data`."""
    return Run(path).evaluate(data, **options)


def train_config(task: str, overrides: Mapping[str, Any] = MappingProxyType({})) -> Any:
    """The run config `train(task, ...)` would use: the task's defaults with `overrides`.

    Raises:
        ConfigError: an unknown task or key, or a value of the wrong type, named.
    """
    from rnnkit.config import load_config

    return load_config(get_task(task).config, overrides=nest_overrides(overrides))


def train(
    task: str,
    out_dir: str | Path,
    overrides: Mapping[str, Any] = MappingProxyType({}),
    *,
    callbacks: Sequence[Any] = (),
) -> Path:
    """Train a model for `task` with its defaults and `overrides`; write a new run folder.

    The same pipeline as `rnnkit train <task>`, e.g.
    `train("classification", "runs/gru", {"model.cell": "gru", "train.epochs": 3})`.

    Args:
        task: the task's name ("classification", "forecasting", "language-model") or alias.
        out_dir: the run folder to create; it must not hold a run already.
        overrides: dotted config keys, as `--set` takes them, to values; values may be text
            (`"3"`, parsed by the key's type) or already typed (`3`).
        callbacks: training callbacks (`rnnkit.training.Callback`), e.g. a progress bar.

    Returns:
        The run folder.

    Raises:
        ConfigError: an unknown task or config key, a wrong value, or `out_dir` holds a run.
    """
    config = train_config(task, overrides)
    result = get_task(task).train(config, Path(out_dir), callbacks=callbacks)
    return Path(out_dir) if result is None else Path(result.run_dir)  # None: torchrun rank > 0


def nest_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`{"model.cell": "gru"}` -> `{"model": {"cell": "gru"}}`; nested mappings merge in."""
    tree: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = [part.strip() for part in str(key).removeprefix("--").split(".")]
        if not all(parts):
            raise ConfigError(f"override key {key!r} is not a dotted config key (e.g. model.cell)")
        node = tree
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if isinstance(value, Mapping):
            nested = nest_overrides(value)
            node[parts[-1]] = _merged(node.get(parts[-1]), nested)
        else:
            node[parts[-1]] = value
    return tree


def _merged(old: Any, new: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(old, dict):
        return new
    out = dict(old)
    for k, v in new.items():
        out[k] = _merged(out.get(k), v) if isinstance(v, dict) else v
    return out
