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

`rnnkit.load(path)` reads `config.json`, picks the predictor for its task and rebuilds the model.
"""

from __future__ import annotations

import importlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from rnnkit import __version__
from rnnkit.errors import ConfigError, DataError
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
    """

    load: Callable[..., Any]
    evaluate: Callable[..., dict[str, Any]]


#: task name -> hooks; each task module registers itself on import (see `_import_tasks`).
TASKS: dict[str, TaskHooks] = {}

#: the modules that register tasks; imported lazily so `import rnnkit` stays light.
TASK_MODULES = [
    "rnnkit.tasks.classification",
    "rnnkit.tasks.forecasting",
    "rnnkit.tasks.language_model",
]


def register_task(name: str, load: Callable[..., Any], evaluate: Callable[..., Any]) -> None:
    TASKS[name] = TaskHooks(load, evaluate)


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
        if run_dir.suffix in (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"):
            raise DataError(
                "pickled model files are refused (loading them runs code); give a run folder "
                "with config.json and model.safetensors",
                path=run_dir,
            )
        raise DataError("expected a run folder (with config.json), got a file", path=run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"not a run folder: {CONFIG_FILE} is missing", path=run_dir)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON: {exc}", path=path) from exc
    if not isinstance(config, dict):
        raise DataError("top level must be a JSON object", path=path)
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise DataError(
            f"format_version {version!r} is not supported (this rnnkit reads {FORMAT_VERSION})",
            path=path,
            column="format_version",
        )
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
    """Load `model.safetensors` into `model`, refusing any mismatch with a clear message."""
    path = Path(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise DataError(f"{WEIGHTS_FILE} is missing (was training interrupted?)", path=run_dir)
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own types for damaged headers
        raise DataError(f"not a readable safetensors file: {exc}", path=path) from exc
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{k} {tuple(tensors[k].shape)} (config needs {tuple(expected[k].shape)})"
        for k in sorted(set(expected) & set(tensors))
        if tensors[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing[:5]}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:5]}")
    if wrong:
        problems.append(f"wrong shapes: {', '.join(wrong[:5])}")
    if problems:
        raise DataError("weights do not match config.json: " + "; ".join(problems), path=path)
    model.load_state_dict(tensors)


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


def _import_tasks() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
