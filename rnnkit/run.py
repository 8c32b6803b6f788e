"""`Run`: one handle on a run folder, whatever its task.

    run = Run("runs/rt")            # or rnnkit.train(...) / rnnkit.open_run(...)
    run.task.name, run.config       # the TaskSpec; the typed run config
    run.records()                   # metrics.jsonl, one dict per epoch
    run.held_out()                  # the data training never saw, reopened (HeldOut)
    run.predictor()                 # what rnnkit.load() returns, built once
    run.predict(["what a film"])    # classifier / forecaster; run.generate(...) for an LM
    run.evaluate()                  # the task's metrics on the held-out part

File names come from `rnnkit.run_folder.Files`; everything task-specific from the task's spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.config import from_dict
from rnnkit.errors import ConfigError, DataError, RnnkitError
from rnnkit.run_folder import Files, read_config_file, read_json, read_records
from rnnkit.tasks import HeldOut, TaskSpec, get_task, task_names


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """`config.json`, checked (format, no class paths) and naming a task rnnkit knows."""
    config = read_config_file(run_dir)
    try:
        get_task(str(config.get("task")))
    except ConfigError:
        raise DataError(
            f"unknown task {config.get('task')!r}; known: {task_names()}",
            path=Path(run_dir) / Files.CONFIG,
            column="task",
        ) from None
    return config


class Run:
    """A run folder with its task's spec: config, records, held-out data, predictor.

    Args:
        path: a run folder written by `rnnkit train ...` or `rnnkit.train(...)`.
        device: where `predictor()` puts the model.

    Raises:
        DataError: not a run folder, a damaged `config.json`, or an unknown task (named).
    """

    files = Files

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        self.path = Path(path)
        self.device = device
        self.raw_config: dict[str, Any] = read_config(self.path)
        self.task: TaskSpec = get_task(self.raw_config["task"])
        self._predictor: Any = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, task={self.task.name!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def config(self) -> Any:
        """The run config as its task's dataclass (`ClassificationRunConfig`, ...)."""
        try:
            return from_dict(self.task.config, self.raw_config["config"])
        except (KeyError, ConfigError) as exc:
            raise DataError(f"run config: {exc}", path=self.path / Files.CONFIG) from None

    def file(self, name: str) -> Path:
        """The path of one of the run's files, by its `Files` name."""
        return self.path / name

    def records(self) -> list[dict[str, Any]]:
        """`metrics.jsonl`: one dict per epoch ([] before the first epoch ends)."""
        return read_records(self.path)

    def test_metrics(self) -> dict[str, Any] | None:
        """The metrics written at the end of training (`test_metrics.json` or `backtest.json`)."""
        for name in (Files.TEST_METRICS, Files.BACKTEST):
            found = read_json(self.path, name)
            if found is not None:
                return found
        return None

    def held_out(self) -> HeldOut:
        """The part of the run's data that training never saw, reopened from its config."""
        return self.task.held_out(self.path, self.raw_config)

    def predictor(self) -> Any:
        """The task's predictor (what `rnnkit.load()` returns), built on first use."""
        if self._predictor is None:
            self._predictor = self.task.load(self.path, self.raw_config, self.device)
        return self._predictor

    def evaluate(self, data: str | None = None, **options: Any) -> dict[str, Any]:
        """The task's metrics on the held-out part, or on `data` (a registry name or path)."""
        return {"task": self.task.name, **self.task.evaluate(self.path, data, **options)}

    # The predictor's own verbs, reachable from the run. A verb the task has not (generate on
    # a classifier) is an error that names the task, not an AttributeError from inside.
    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Classifier: labels for texts; forecaster: forecasts from histories."""
        return self._verb("predict")(*args, **kwargs)

    def forecast(self, *args: Any, **kwargs: Any) -> Any:
        """A forecaster's `predict`: `{series: DataFrame}` with the point forecast and bounds."""
        return self._verb("forecast")(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """A language model's text continuation(s)."""
        return self._verb("generate")(*args, **kwargs)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        """A stateful stream (forecaster) or text produced piece by piece (language model)."""
        return self._verb("stream")(*args, **kwargs)

    def _verb(self, name: str) -> Any:
        method = getattr(self.predictor(), name, None)
        if method is None:
            raise RnnkitError(f"a {self.task.name} run has no {name}(); see {self.path}")
        return method


def open_run(path: str | Path, device: str = "cpu") -> Run:
    """`Run(path)`: the handle on an existing run folder."""
    return Run(path, device)
