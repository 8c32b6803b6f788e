"""Every task's export comes from its spec (`TaskSpec.export`); a task without one is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rnnkit.cli import main
from rnnkit.errors import ConfigError
from rnnkit.export import ExportHooks, export_hooks, task_graph
from rnnkit.tasks import TASKS

from .conftest import TASKS as EXPORTED


def test_each_exported_task_has_hooks_whose_limit_names_one_of_its_metrics() -> None:
    assert sorted(task_graph.exportable_tasks()) == sorted(EXPORTED)
    for name in EXPORTED:
        hooks = export_hooks(name)
        assert isinstance(hooks, ExportHooks) and hooks is TASKS[name].export
        assert hooks.metric_limit.why


@pytest.fixture
def without_forecaster_export(monkeypatch):
    """The forecasting task as if its spec had `export=None`."""
    spec = replace(TASKS["forecasting"], export=None)
    monkeypatch.setitem(TASKS, "forecasting", spec)
    monkeypatch.setattr(task_graph, "get_task", lambda name: TASKS[name])


def test_a_task_without_hooks_gets_one_error_listing_the_exportable_ones(
    without_forecaster_export,
) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^task 'forecasting' has no exportable graph; export supports "
        r"classification, language-model$",
    ):
        export_hooks("forecasting")


def test_cli_export_of_such_a_task_is_a_one_line_error(
    tiny_run, without_forecaster_export, capsys
) -> None:
    run = tiny_run("forecasting", "gru")
    assert main(["export", str(run)]) == 2
    assert "task 'forecasting' has no exportable graph" in capsys.readouterr().err
