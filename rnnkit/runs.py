"""Run folders: everything needed to rebuild and use a trained model, with no pickle.

    runs/<name>/
        config.json          task, the full run config, the resolved model config, classes,
                             split seed, library versions (format_version 1)
        tokenizer.json       the TextEncoder (tokenizer + vocabulary)
        model.safetensors    the best weights
        metrics.jsonl        one record per epoch
        test_metrics.json    metrics on the held-out test split
        report.md, loss.png, confusion.png
        checkpoints/last.safetensors   for --resume

`rnnkit.load(path)` reads `config.json`, picks the predictor for its task and rebuilds the model;
`rnnkit.runs.train(task, out_dir, overrides)` trains any task by name (its defaults + `--set` keys).
"""

from __future__ import annotations

import importlib
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from rnnkit import __version__, model_file
from rnnkit.errors import ConfigError, DataError, ModelFileError
from rnnkit.io import atomic_write_json

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class TaskHooks:
    """What the run-folder entry points need from a task module.

    Attributes:
        load: (run_dir, config, device) -> the task's predictor.
        evaluate: (run_dir, data=None, **options) -> a JSON-able dict of metrics.
        train: (config, run_dir, *, callbacks=()) -> the task's run object (with `.run_dir`);
            the task's `train_<task>` pipeline.
        config: the task's run-config dataclass that `train` takes (defaults + overrides).
    """

    load: Callable[..., Any]
    evaluate: Callable[..., dict[str, Any]]
    train: Callable[..., Any] | None = None
    config: type | None = None


#: task name -> hooks; each task module registers itself on import (see `_import_tasks`).
TASKS: dict[str, TaskHooks] = {}

#: the modules that register tasks; imported lazily so `import rnnkit` stays light.
TASK_MODULES = [
    "rnnkit.tasks.classification.pipeline",
    "rnnkit.tasks.forecasting.pipeline",
    "rnnkit.tasks.language_model.pipeline",
]


def register_task(
    name: str,
    load: Callable[..., Any],
    evaluate: Callable[..., Any],
    train: Callable[..., Any] | None = None,
    config: type | None = None,
) -> None:
    TASKS[name] = TaskHooks(load, evaluate, train, config)


def versions() -> dict[str, str]:
    return {"rnnkit": __version__, "torch": torch.__version__, "python": platform.python_version()}


def write_config(run_dir: str | Path, task: str, payload: dict[str, Any]) -> Path:
    """Write `config.json` (atomically) with the format version, task and versions."""
    record = {
        "format_version": FORMAT_VERSION,
        "task": task,
        **payload,
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = Path(run_dir) / CONFIG_FILE
    atomic_write_json(path, record)
    return path


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """Read and check `config.json`; errors name the file and what is wrong."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise DataError("run folder does not exist", path=run_dir)
    if run_dir.is_file():
        model_file.refuse_pickle(run_dir)  # by suffix or first bytes, never unpickled
        raise DataError("expected a run folder (with config.json), got a file", path=run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"not a run folder: {CONFIG_FILE} is missing", path=run_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid JSON: {exc}", path=path) from exc
    config = model_file.parse_json_object(text, path)
    model_file.check_config(config, path, FORMAT_VERSION)  # version; no class/import paths
    _import_tasks()
    if config.get("task") not in TASKS:
        raise DataError(
            f"unknown task {config.get('task')!r}; known: {', '.join(sorted(TASKS))}",
            path=path,
            column="task",
        )
    return config


def check_run_dir(run_dir: str | Path, config: dict[str, Any], resume: bool) -> None:
    """Refuse to overwrite a run; on resume, refuse options that differ from the saved ones.

    Args:
        run_dir: the run folder.
        config: the run's full config as a dict (`rnnkit.config.to_dict`).
        resume: whether the caller continues the run in `run_dir`.
    """
    run_dir = Path(run_dir)
    if resume:
        if read_config(run_dir)["config"] != config:
            raise ConfigError(
                f"--resume: the options differ from those in {run_dir / CONFIG_FILE}; "
                "resume with the same options"
            )
    elif (run_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --out or pass --resume")


def load_text_encoder(run_dir: str | Path, vocab_size: int) -> Any:
    """The run's `tokenizer.json`, checked against the model's vocabulary size."""
    from rnnkit.text import TextEncoder

    path = Path(run_dir) / TOKENIZER_FILE
    if not path.is_file():
        raise DataError(f"{TOKENIZER_FILE} is missing", path=run_dir)
    encoder = TextEncoder.load(path)
    if len(encoder.vocab) != vocab_size:
        raise DataError(
            f"the vocabulary has {len(encoder.vocab)} entries but the model expects {vocab_size}",
            path=path,
        )
    return encoder


def load_weights(model: torch.nn.Module, run_dir: str | Path, device: str = "cpu") -> None:
    """Load `model.safetensors` into `model` after `rnnkit.model_file` has checked it all.

    Raises:
        ModelFileError: the file is missing, a pickle, damaged, does not match `model` (names,
            shapes, dtypes) or holds NaN/inf; the message names the tensor or byte offset.
    """
    path = Path(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        pickles = model_file.pickles_in(run_dir)
        refused = f"; {', '.join(pickles)} refused: pickled files run code when loaded"
        raise ModelFileError(
            f"{WEIGHTS_FILE} is missing" + (refused if pickles else " (was training interrupted?)"),
            path=run_dir,
        )
    model.load_state_dict(model_file.load_tensors(path, model.state_dict(), device))


def load(path: str | Path, device: str = "cpu") -> Any:
    """Rebuild the predictor stored in a run folder (classifier, forecaster, language model).

    Args:
        path: a run folder written by `rnnkit train ...`.
        device: where to run the model.

    Returns:
        The task's predictor, e.g. a `ClassifierPredictor` with `.predict(texts)`.
    """
    config = read_config(path)
    return TASKS[config["task"]].load(Path(path), config, device)


def evaluate(path: str | Path, data: str | None = None, **options: Any) -> dict[str, Any]:
    """Metrics of the run in `path` on its own test split, or on `data`."""
    config = read_config(path)
    return {"task": config["task"], **TASKS[config["task"]].evaluate(Path(path), data, **options)}


def task_hooks(task: str) -> TaskHooks:
    """The hooks of `task` (its name in config.json); a ConfigError lists the known tasks."""
    _import_tasks()
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[task]


def train_config(task: str, overrides: Mapping[str, Any] = MappingProxyType({})) -> Any:
    """The run config `train(task, ...)` would use: the task's defaults with `overrides`.

    Raises:
        ConfigError: an unknown task or key, or a value of the wrong type, named.
    """
    from rnnkit.config import load_config

    hooks = task_hooks(task)
    if hooks.train is None or hooks.config is None:
        raise ConfigError(f"task {task!r} cannot be trained through rnnkit.runs.train")
    return load_config(hooks.config, overrides=nest_overrides(overrides))


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
        task: the task's name as written in config.json: "classification", "forecasting" or
            "language-model".
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
    run = task_hooks(task).train(config, Path(out_dir), callbacks=callbacks)
    return Path(run.run_dir)


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


def _import_tasks() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
