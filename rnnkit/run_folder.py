"""The run folder on disk: its file names, in one place, and reading/writing its parts.

    runs/<name>/
        config.json          task, the full run config, the resolved model config, classes or
                             scaler, split seed, library versions (format_version 1)
        tokenizer.json       the TextEncoder (tokenizer + vocabulary), for text tasks
        model.safetensors    the best weights
        metrics.jsonl        one record per epoch
        test_metrics.json    metrics on the held-out part (backtest.json for forecasters)
        report.md, report.html, loss.png, ...   the task's report and plots
        checkpoints/last.safetensors            for --resume

This module knows files, not tasks: the task packages write through it, and `rnnkit.run.Run`
(which knows the tasks through their specs) reads through it. No pickle anywhere: weights are
safetensors, checked by `rnnkit.model_file` before anything is built from them.
"""

from __future__ import annotations

import json
import platform
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from rnnkit import model_file
from rnnkit.errors import ConfigError, DataError, ModelFileError
from rnnkit.io import atomic_write_json
from rnnkit.layout import Files
from rnnkit.version import __version__

FORMAT_VERSION = 1

__all__ = ["FORMAT_VERSION", "Files"]  # and the functions below


# The names older code imported from `rnnkit.runs`.
CONFIG_FILE = Files.CONFIG
WEIGHTS_FILE = Files.WEIGHTS
TOKENIZER_FILE = Files.TOKENIZER


def new_run_dir(data: str, tag: str = "", root: str | Path = "runs") -> Path:
    """A fresh run folder for a new run: `runs/<data>-<tag>-<time>` (`-2`, `-3`... if taken).

    Args:
        data: what the run trains on: a registry name, a path (its file or folder name is
            used) or any label; characters other than letters, digits, `.`, `_` and `-`
            become `-`.
        tag: what tells runs on the same data apart (the cell, ...); may be empty.
        root: the folder that holds the runs.
    """
    try:
        name = Path(data).stem if Path(data).exists() else data
    except (OSError, ValueError):  # too long for a path, a NUL byte: a label, then
        name = data
    stem = "-".join(re.sub(r"[^\w.-]+", "-", part).strip("-") for part in (name, tag) if part)
    folder = Path(root) / f"{stem or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = folder, 1
    while candidate.exists():  # two runs started in the same second
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    return candidate


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
    path = Path(run_dir) / Files.CONFIG
    atomic_write_json(path, record)
    return path


def read_config_file(run_dir: str | Path) -> dict[str, Any]:
    """Read and check `config.json` (format version, no class or import paths); task unchecked.

    `rnnkit.run.read_config` adds the check that the task is one rnnkit knows.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise DataError("run folder does not exist", path=run_dir)
    if run_dir.is_file():
        model_file.refuse_pickle(run_dir)  # by suffix or first bytes, never unpickled
        raise DataError(f"expected a run folder (with {Files.CONFIG}), got a file", path=run_dir)
    path = run_dir / Files.CONFIG
    if not path.is_file():
        raise DataError(f"not a run folder: {Files.CONFIG} is missing", path=run_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid JSON: {exc}", path=path) from exc
    config = model_file.parse_json_object(text, path)
    model_file.check_config(config, path, FORMAT_VERSION)  # version; no class/import paths
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
        if read_config_file(run_dir)["config"] != config:
            raise ConfigError(
                f"--resume: the options differ from those in {run_dir / Files.CONFIG}; "
                "resume with the same options"
            )
    elif (run_dir / Files.CONFIG).exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --out or pass --resume")


def load_text_encoder(run_dir: str | Path, vocab_size: int) -> Any:
    """The run's `tokenizer.json`, checked against the model's vocabulary size."""
    from rnnkit.text import TextEncoder

    path = Path(run_dir) / Files.TOKENIZER
    if not path.is_file():
        raise DataError(f"{Files.TOKENIZER} is missing", path=run_dir)
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
    path = Path(run_dir) / Files.WEIGHTS
    if not path.is_file():
        pickles = model_file.pickles_in(run_dir)
        refused = f"; {', '.join(pickles)} refused: pickled files run code when loaded"
        why = refused if pickles else " (was training interrupted?)"
        raise ModelFileError(f"{Files.WEIGHTS} is missing{why}", path=run_dir)
    model.load_state_dict(model_file.load_tensors(path, model.state_dict(), device))


def read_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of `metrics.jsonl` ([] when the run has none yet).

    A line that is not a JSON object (a run killed mid-write before atomic writes, or a file
    edited by hand) is an error naming the line, not a silent skip.
    """
    path = Path(run_dir) / Files.RECORDS
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg}", path=path, line=number) from None
        if not isinstance(record, dict):
            raise DataError("expected a JSON object per line", path=path, line=number)
        records.append(record)
    return records


def read_json(run_dir: str | Path, name: str) -> Any:
    """A JSON file of the run folder (`Files.TEST_METRICS`, ...); None when it is missing."""
    path = Path(run_dir) / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON: {exc}", path=path) from None


def config_for_task(run_dir: str | Path, task: str, command: str) -> dict[str, Any]:
    """`config.json` of a run that `command` (e.g. `"predict"`) needs to be a `task` run.

    Raises:
        DataError: not a run folder, or a run of another task (both named).
    """
    config = read_config_file(run_dir)
    if config.get("task") != task:
        raise DataError(
            f"{command} needs a {task} run; this run is a {config.get('task')}", path=run_dir
        )
    return config
