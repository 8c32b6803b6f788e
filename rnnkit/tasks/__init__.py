"""The tasks rnnkit knows, by name: `TASKS = {name: TaskSpec}`.

Each task lives in its own folder (`classification/`, `forecasting/`, `language_model/`) and
describes itself in its `spec.py`; everything outside the folders reads the spec (see
`rnnkit.tasks.spec.TaskSpec`). To add a task: write `rnnkit/tasks/<task>/` with a `spec.py`
that builds its `SPEC`, and add one line below.
"""

from __future__ import annotations

from rnnkit.errors import ConfigError
from rnnkit.tasks.classification.spec import SPEC as CLASSIFICATION
from rnnkit.tasks.forecasting.spec import SPEC as FORECASTING
from rnnkit.tasks.language_model.spec import SPEC as LANGUAGE_MODEL
from rnnkit.tasks.spec import HeldOut, Metric, TaskSpec

__all__ = ["TASKS", "HeldOut", "Metric", "TaskSpec", "get_task", "task_names"]

TASKS: dict[str, TaskSpec] = {
    spec.name: spec for spec in (CLASSIFICATION, FORECASTING, LANGUAGE_MODEL)
}

_BY_ALIAS = {alias: spec for spec in TASKS.values() for alias in spec.names}


def get_task(name: str) -> TaskSpec:
    """The spec of a task by its name or one of its aliases.

    Raises:
        ConfigError: an unknown name; the message lists the tasks (and their other names).
    """
    spec = _BY_ALIAS.get(str(name).strip())
    if spec is None:
        raise ConfigError(f"unknown task {name!r}; known: {task_names()}")
    return spec


def task_names() -> str:
    """`classification, forecasting, language-model (also: classifier, ...)` for messages."""
    aliases = [alias for spec in TASKS.values() for alias in spec.aliases]
    also = f" (also: {', '.join(aliases)})" if aliases else ""
    return ", ".join(TASKS) + also
