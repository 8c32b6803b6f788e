"""A loaded run's export graph and example inputs, through its task's `ExportHooks`.

    graph, spec = build_graph(rnnkit.load("runs/clf"))
    inputs = example_inputs("runs/clf", batch_size=7, seq_len=32)

The task comes from the predictor (`predictor.task`) or the run's `config.json`; its spec in
`rnnkit.tasks.TASKS` carries the hooks (`TaskSpec.export`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.errors import ConfigError
from rnnkit.export.graphs import GraphSpec
from rnnkit.export.hooks import ExportHooks
from rnnkit.tasks import TASKS, get_task


def export_hooks(task: str) -> ExportHooks:
    """The export hooks of `task` (its name or an alias).

    Raises:
        ConfigError: an unknown task, or one without an exportable graph; the message lists the
            tasks that have one.
    """
    spec = get_task(task)
    if spec.export is None:
        raise ConfigError(
            f"task {spec.name!r} has no exportable graph; export supports "
            f"{', '.join(exportable_tasks())}"
        )
    return spec.export


def exportable_tasks() -> list[str]:
    """The names of the tasks whose spec has export hooks."""
    return [spec.name for spec in TASKS.values() if spec.export is not None]


def build_graph(predictor: Any) -> tuple[Any, GraphSpec]:
    """The exportable graph (an `nn.Module`) and its spec for a loaded predictor.

    Args:
        predictor: what `rnnkit.load(run)` returns; its `.model` and `.task` are read.

    Raises:
        ConfigError: the predictor's task has no exportable graph.
    """
    return export_hooks(predictor.task).graph(predictor.model.eval())


def example_inputs(
    run_or_predictor: Any, batch_size: int = 1, seq_len: int = 16, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random inputs for a run's exported graph, the same for every backend.

    Token ids are drawn within the vocabulary (never the pad id inside a sequence); a padded
    batch has ragged lengths in [1, seq_len] (the first row full) with the pad id after each
    end; states are uniform in [-0.5, 0.5] (a state from mid-stream, not only zeros); other
    features are standard normal (see `rnnkit.export.graphs.random_inputs`).

    Args:
        run_or_predictor: a run folder or a predictor from `rnnkit.load`.
        batch_size: B.
        seq_len: T, steps per row.
        seed: NumPy generator seed.

    Returns:
        {input name: array} in the graph's input order, with the dtypes of its spec.
    """
    predictor = _as_predictor(run_or_predictor)
    hooks = export_hooks(predictor.task)
    model = predictor.model.eval()
    _, spec = hooks.graph(model)
    rng = np.random.default_rng(seed)
    return hooks.example_inputs(model, spec, batch_size, seq_len, rng)


def _as_predictor(run_or_predictor: Any) -> Any:
    if hasattr(run_or_predictor, "model") and hasattr(run_or_predictor, "task"):
        return run_or_predictor
    from rnnkit.runs import load

    return load(run_or_predictor)
