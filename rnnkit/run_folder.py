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

import functools
import json
import logging
import os
import platform
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

try:  # POSIX; Windows has no flock, and its folders are not locked (see `claim`)
    import fcntl
except ImportError:  # pragma: no cover - not on the machines we test on
    fcntl = None  # type: ignore[assignment]

import torch

from rnnkit import model_file
from rnnkit.errors import ConfigError, DataError, ModelFileError, RnnkitError
from rnnkit.io import atomic_write_json
from rnnkit.layout import Files
from rnnkit.version import __version__

FORMAT_VERSION = 1
T = TypeVar("T")
logger = logging.getLogger(__name__)

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


def check_run_dir(run_dir: str | Path, config: dict[str, Any], resume: bool) -> bool:
    """Refuse to overwrite a run; on resume, refuse options that differ from the saved ones.

    A run stopped before its first checkpoint (nothing to resume from) is started over by
    `--resume`; under torchrun, a restarted job (`--max-restarts`) resumes without the flag.

    Args:
        run_dir: the run folder.
        config: the run's full config as a dict (`rnnkit.config.to_dict`).
        resume: whether the caller asked to continue the run in `run_dir`.

    Returns:
        True to continue from a checkpoint; False to train from the start (a new run, or one
        that never reached a checkpoint).
    """
    from rnnkit.training import distributed

    if not distributed.active():
        return _check_run_dir(Path(run_dir), config, resume)
    # under torchrun rank 0 decides, before it writes anything, and every rank acts on that
    verdict: dict[str, Any] = {}
    if distributed.is_main_process():
        try:
            verdict = {"resume": _check_run_dir(Path(run_dir), config, resume)}
        except RnnkitError as exc:
            verdict = {"error": str(exc)}
    verdict = json.loads(distributed.broadcast_bytes(json.dumps(verdict).encode()))
    if "error" in verdict:
        raise ConfigError(verdict["error"])
    return bool(verdict["resume"])


def _check_run_dir(run_dir: Path, config: dict[str, Any], resume: bool) -> bool:
    from rnnkit.training.distributed import restart_count

    restarted = restart_count() > 0
    if not (run_dir / Files.CONFIG).exists():
        if resume and not restarted:
            raise ConfigError(
                f"--resume: {run_dir} holds no run to continue ({Files.CONFIG} is missing); "
                "train without --resume"
            )
        return False
    saved = has_checkpoint(run_dir)
    if not (resume or restarted):
        hint = (
            ""
            if saved
            else " that stopped before its first checkpoint (pass --resume to start it over)"
        )
        raise ConfigError(
            f"{run_dir} already holds a run{hint}; choose another --out or pass --resume"
        )
    if read_config_file(run_dir)["config"] != config:
        raise ConfigError(
            f"--resume: the options differ from those in {run_dir / Files.CONFIG}; "
            "resume with the same options"
        )
    if not saved:
        logger.warning(
            "%s has no checkpoint yet (stopped before its first save): training starts over",
            run_dir,
        )
    return saved


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether the run (or one of its ensemble members) wrote a checkpoint to resume from."""
    run_dir = Path(run_dir)
    names = (Files.CHECKPOINT, Files.PREVIOUS_CHECKPOINT)
    if any((run_dir / name).is_file() for name in names):
        return True
    members = run_dir / "members"
    return members.is_dir() and any(
        (member / name).is_file() for member in members.iterdir() for name in names
    )


_CLAIMS: dict[Path, int] = {}  # run folders this process holds -> the lock file's descriptor


@contextmanager
def claim(run_dir: str | Path) -> Iterator[Path]:
    """Hold `run_dir` for this process while the block runs; refuse it if another holds it.

    An exclusive `flock` on `run_dir/.rnnkit.lock`, taken before the folder is checked, so two
    trainings started on one `--out` at once cannot both pass "already holds a run" and mix
    their files. The kernel drops the lock when the process ends, kill -9 included, so a
    crashed run leaves no stale claim. Re-entrant within a process; only rank 0 of a
    data-parallel job claims (the others never write). Where `fcntl` is missing (Windows) the
    folder is not locked.
    """
    from rnnkit.training.distributed import is_main_process

    run_dir = _usable_folder(Path(run_dir))
    key = run_dir.resolve()
    if key in _CLAIMS or fcntl is None or not is_main_process():
        yield run_dir
        return
    lock = run_dir / Files.LOCK
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot write in {run_dir}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"{run_dir} is in use by another rnnkit process (pid {holder}); wait for it to "
            "end or choose another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _CLAIMS[key] = fd
    try:
        yield run_dir
    finally:
        del _CLAIMS[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _usable_folder(run_dir: Path) -> Path:
    """`run_dir`, created if missing; a clear error if it cannot be a folder."""
    for parent in (run_dir, *run_dir.parents):
        if parent.exists() and not parent.is_dir():
            what = "--out names a file" if parent == run_dir else f"{parent} is a file"
            raise ConfigError(f"{what}, not a folder: choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the run folder {run_dir}: {exc.strerror}") from None
    return run_dir


def claims_run_dir(train: Callable[..., T]) -> Callable[..., T]:
    """Decorate a task's `train(config, run_dir, ...)` so it holds `run_dir` while it runs."""

    @functools.wraps(train)
    def held(config: Any, run_dir: str | Path, *args: Any, **kwargs: Any) -> T:
        from rnnkit.training import distributed
        from rnnkit.training.precision import resolve_device

        # under torchrun, join the process group first: rank 0 checks the folder for all
        distributed.setup(distributed.device_for(resolve_device(config.train.device)))
        with claim(run_dir):
            return train(config, run_dir, *args, **kwargs)

    return held


def load_text_encoder(run_dir: str | Path, vocab_size: int, tokenizer: str | None = None) -> Any:
    """The run's `tokenizer.json`, checked against the model's vocabulary size.

    Args:
        run_dir: the run folder.
        vocab_size: the model's vocabulary size (config.json's `model.vocab_size`).
        tokenizer: the tokenizer name config.json's run config gives (`config.data.tokenizer`);
            when given, tokenizer.json must hold that tokenizer (an edited name would otherwise
            load and turn every text into the wrong ids).
    """
    from rnnkit.text import TextEncoder

    path = Path(run_dir) / Files.TOKENIZER
    if not path.is_file():
        raise DataError(f"{Files.TOKENIZER} is missing", path=run_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the file: {exc}", path=path) from None
    # parsed here (repeated keys and nesting depth refused) rather than by TextEncoder.load
    data = model_file.parse_json_object(text, path)
    section = data.get("tokenizer")
    if isinstance(section, dict) and not isinstance(section.get("name"), str):
        raise ModelFileError(
            f"expected a tokenizer name (a string), got {str(section.get('name'))[:40]}",
            path=path,
            column="tokenizer.name",
        )
    encoder = TextEncoder.from_dict(data, source=path)
    if len(encoder.vocab) != vocab_size:
        raise DataError(
            f"the vocabulary has {len(encoder.vocab)} entries but the model expects {vocab_size}",
            path=path,
        )
    name = encoder.tokenizer.name
    if tokenizer is not None and name != tokenizer:
        raise ModelFileError(
            f"holds the {name!r} tokenizer but {Files.CONFIG} says config.data.tokenizer is "
            f"{tokenizer!r}; one of the two files was edited or comes from another run",
            path=path,
            column="tokenizer.name",
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
