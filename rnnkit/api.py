"""`rnnkit.train(task, data, **options)`: train a model from Python, on data in memory or by name.

    run = rnnkit.train("classification", (texts, labels), hidden_size=64, epochs=3)
    run.predict(["what a film"])          # the returned `Run` predicts, forecasts or generates
    run.evaluate()                        # on the held-out part, reopened from the run folder

The same pipeline as `rnnkit train <task>`: each option is the command's flag with underscores
(`hidden_size=64` is `--hidden-size 64`), a shorthand for one config key; `config=` sets any key
(a dict of dotted keys, or a YAML/TOML file). Precedence: the task's defaults < `config` <
options.

Data in memory (a DataFrame, lists of texts and labels, series, text) is written by the task's
`write_data` hook into the run folder (`data/`) as a file `rnnkit.data.load_dataset` reads, and
the run's config names that file: the run then reopens its held-out part (`run.evaluate()`,
`rnnkit evaluate RUN`) exactly as a run trained on a file does. This module knows no task: what
each takes comes from its spec (`rnnkit.tasks.TaskSpec`).
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnkit.config import load_config
from rnnkit.errors import ConfigError
from rnnkit.run import Run
from rnnkit.run_folder import Files, new_run_dir
from rnnkit.runs import nest_overrides
from rnnkit.tasks import TaskSpec, get_task
from rnnkit.training.options import TRAIN_OPTIONS

__all__ = ["distill", "option_keys", "train"]

logger = logging.getLogger(__name__)


def train(
    task: str,
    data: Any,
    out: str | Path | None = None,
    config: Mapping[str, Any] | str | Path | None = None,
    *,
    callbacks: Sequence[Any] = (),
    resume: bool = False,
    **options: Any,
) -> Run | None:
    """Train a model for `task` and return its run (None on torchrun ranks other than 0).

    Args:
        task: "classification", "forecasting" or "language-model", or an alias ("classifier",
            "forecaster", "lm").
        data: a registry dataset name (`"rotten-tomatoes"`) or a path, as `--data` takes; or
            data in memory, as the task's `write_data` takes it: for classification a pandas
            DataFrame (`text_column=`, `label_column=`), a pair `(texts, labels)` or a dict
            `{"text": texts, "label": labels}`; for forecasting a DataFrame indexed by time
            (or with a time column), a pandas Series with a `DatetimeIndex`, or
            `{series id: Series}`; for a language model the text (a string with whitespace in
            it) or a list of strings. None takes the data the config names.
        out: the run folder; None makes a fresh `runs/<data>-<time>` under the current folder.
        config: config keys: a dict of dotted keys (`{"model.num_layers": 2}`) or nested
            dicts, or a YAML/TOML file.
        callbacks: training callbacks (`rnnkit.training.Callback`), e.g. a progress bar.
        resume: continue the interrupted run in `out`, with the same data and options.
        **options: the task's `rnnkit train` flags with underscores (`hidden_size=16`,
            `text_column="review"`, `horizon=12`) and the engine's (`epochs`, `batch_size`,
            `lr`, `seed`, `precision`, `device`).

    Returns:
        The run (`rnnkit.run.Run`): `run.path`, `run.predict(...)` / `run.forecast(...)` /
        `run.generate(...)`, `run.evaluate()`, `run.held_out()`.

    Raises:
        ConfigError: an unknown task or option (the valid ones listed), a wrong value, data
            of a type the task does not take, or `out` that already holds a run.
        DataError: bad data (mismatched lengths, a missing column, a series not indexed by
            time, ...), named.
    """
    spec = get_task(task)
    keys = option_keys(spec, options)
    name = _data_name(data)
    data_key = spec.options[spec.data_option]
    if name is not None:
        keys[data_key] = name
    run_config = _run_config(spec, config, keys)
    if out is None:
        if resume:
            raise ConfigError("resume=True needs out= naming the run to continue")
        # named after the data: as given, as the config names it, or the task's for data in memory
        label = name or (str(_value(run_config, data_key)) if data is None else spec.name)
        out = new_run_dir(label)
    out = Path(out)
    if not resume and (out / Files.CONFIG).exists():  # before anything is written into it
        raise ConfigError(f"{out} already holds a run; choose another out= or pass resume=True")
    if data is not None and name is None:
        run_config = _write_data(spec, data, out, run_config, resume)
    logger.info("%s: training into %s", spec.name, out)
    result = spec.train(run_config, out, callbacks=callbacks, resume=resume)
    return None if result is None else Run(result.run_dir)  # None: a torchrun rank but 0


#: `distill`'s own options (the soft loss) -> config keys; the model's size is the task's.
DISTILL_OPTIONS: dict[str, str] = {
    "temperature": "distill.temperature",
    "alpha": "distill.alpha",
    "top_k": "distill.top_k",
}


def distill(
    teacher: str | Path | Run,
    out: str | Path,
    config: Mapping[str, Any] | None = None,
    *,
    callbacks: Sequence[Any] = (),
    resume: bool = False,
    **options: Any,
) -> Run | None:
    """Train a smaller student of a trained run on its soft outputs (knowledge distillation).

    The student keeps the teacher's whole run config (data, split, tokenizer, window, training
    budget) except the model's size: by default a one-layer GRU half the teacher's width (a
    GRU has three gate blocks to an LSTM's four, so about a fifth of the teacher's recurrent
    multiply-adds), trained on `(1 - alpha) * loss(truth) + alpha * soft(teacher)`
    (`rnnkit.training.distill`). It is an ordinary run folder: it loads, exports and serves.

    Args:
        teacher: the teacher's run folder (or `Run`).
        out: the student's run folder.
        config: dotted config keys for anything else (`{"train.epochs": 3}`).
        callbacks: training callbacks, e.g. a progress bar.
        resume: continue an interrupted student in `out`.
        **options: `cell`, `hidden_size`, `num_layers` (the student's size), `temperature`,
            `alpha` (the soft loss; `alpha=0` trains the same student on the truth alone, the
            reference it must beat), `top_k` (a language model's teacher read once, its k
            most likely next tokens kept per position) and the engine's (`epochs`, `seed`,
            ...).

    Returns:
        The student's run (None on torchrun ranks other than 0).
    """
    run = teacher if isinstance(teacher, Run) else Run(teacher)
    spec = run.task
    mine = {k: options.pop(k) for k in list(options) if k in DISTILL_OPTIONS}
    keys = {DISTILL_OPTIONS[k]: v for k, v in mine.items()}
    keys.update(option_keys(spec, options))
    teacher_config = run.config
    width = int(_value(teacher_config, "model.hidden_size"))
    student = {
        "model.cell": "gru",
        "model.hidden_size": max(8, width // 2),
        "model.num_layers": 1,
        "distill.teacher": str(run.path),
    }
    if hasattr(teacher_config, "transfer"):  # a ULMFiT teacher's LM would fix the student's shape
        student["transfer.init_from"] = None
    overrides = {**student, **nest_flat(config or {}), **keys}
    from rnnkit.config import apply_overrides

    try:
        run_config = apply_overrides(teacher_config, nest_overrides(overrides))
    except ConfigError as exc:
        raise ConfigError(str(exc).removeprefix("--set: ")) from None
    out = Path(out)
    if not resume and (out / Files.CONFIG).exists():
        raise ConfigError(f"{out} already holds a run; choose another out= or pass resume=True")
    logger.info("%s: distilling %s into %s", spec.name, run.path, out)
    result = spec.train(run_config, out, callbacks=callbacks, resume=resume)
    return None if result is None else Run(result.run_dir)


def nest_flat(config: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts of config keys flattened to dotted keys (`{"a": {"b": 1}}` -> `{"a.b": 1}`)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in nest_flat(value).items()})
        else:
            flat[str(key)] = value
    return flat


def option_keys(spec: TaskSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """`{"hidden_size": 16}` -> `{"model.hidden_size": 16}` for `spec`'s task.

    Raises:
        ConfigError: an option the task does not take; the message lists those it does.
    """
    known = {**spec.options, **TRAIN_OPTIONS}
    known.pop(spec.data_option, None)  # the data is `train`'s own argument
    keys = {}
    for option, value in options.items():
        if option not in known:
            close = difflib.get_close_matches(option, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ";"
            raise ConfigError(
                f"unknown option {option!r} for {spec.name}{hint} valid options: "
                f"{', '.join(sorted(known))} (config= sets any config key)"
            )
        keys[known[option]] = value
    return keys


def _data_name(data: Any) -> str | None:
    """The data as `--data` would name it, or None for data in memory (or no data).

    A path object names data; so does a non-empty string that has no whitespace (a registry
    name, `a+b`, a file name: a missing one gets the loader's error, with close matches) or
    is an existing path. Any other string is text in memory.
    """
    if isinstance(data, os.PathLike):
        return os.fspath(data)
    if not isinstance(data, str) or not data:
        return None
    return data if data.split() == [data] or _is_path(data) else None


def _is_path(text: str) -> bool:
    try:
        return Path(text).expanduser().exists()
    except (OSError, ValueError):  # a name too long for a path, a NUL byte: text, then
        return False


def _value(config: Any, key: str) -> Any:
    """The value of a dotted key (`"data.data"`) in a config dataclass."""
    return functools.reduce(getattr, key.split("."), config)


def _run_config(spec: TaskSpec, config: Any, keys: dict[str, Any]) -> Any:
    """The task's run config: defaults < `config` (dict or file) < options (`keys`)."""
    path = base = None
    if isinstance(config, (str, os.PathLike)):
        path = config
    elif isinstance(config, Mapping):
        base = nest_overrides(config)
    elif config is not None:
        raise ConfigError(
            f"config= takes a dict of config keys or a YAML/TOML file, got {type(config).__name__}"
        )
    try:
        return load_config(spec.config, path=path, base=base, overrides=nest_overrides(keys))
    except ConfigError as exc:
        # `load_config` labels the overrides layer with the command line's name for it.
        message = str(exc)
        if message.startswith("--set: "):
            message = "options: " + message.removeprefix("--set: ")
        raise ConfigError(message) from None


def _write_data(spec: TaskSpec, data: Any, out: Path, config: Any, resume: bool) -> Any:
    """Data in memory written into the run folder; the config that reads it back.

    On resume the data is written aside first and must match what the run was trained on:
    the run's own data file is never replaced by different data.
    """
    if spec.write_data is None:
        raise ConfigError(f"a {spec.name} run takes its data by name or path only")
    folder = out / Files.DATA_DIR
    if resume and not folder.is_dir():
        raise ConfigError(
            f"resume: {out} was not trained on data in memory (it has no {Files.DATA_DIR}/); "
            "resume with the data it names"
        )
    if resume:
        with tempfile.TemporaryDirectory(prefix=".data-", dir=out) as aside:
            spec.write_data(data, Path(aside), config)
            for new in Path(aside).iterdir():
                old = folder / new.name
                if not old.is_file() or old.read_bytes() != new.read_bytes():
                    raise ConfigError(
                        f"resume: the data differs from the run's ({old}); resume with the "
                        "data the run was trained on"
                    )
    return spec.write_data(data, folder, config)
