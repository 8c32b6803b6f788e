"""The TaskSpec contract: every registered task provides every hook, and names resolve one way."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pytest

from rnnkit.cli import main
from rnnkit.errors import ConfigError, DataError
from rnnkit.run import Run
from rnnkit.tasks import TASKS, HeldOut, Metric, TaskSpec, get_task

#: fields a spec may leave at None, with the reason (none today: every task has every part).
OPTIONAL: dict[str, str] = {}


@pytest.mark.parametrize("name", list(TASKS))
def test_every_spec_provides_every_hook(name: str) -> None:
    spec = TASKS[name]
    assert isinstance(spec, TaskSpec) and spec.name == name
    for f in dataclasses.fields(TaskSpec):
        value = getattr(spec, f.name)
        if f.name in OPTIONAL:
            continue
        assert value is not None, f"{name}: {f.name} is missing"
        if "Callable" in str(f.type):
            assert callable(value), f"{name}: {f.name} is not callable"
    assert spec.metrics and all(isinstance(m, Metric) for m in spec.metrics)
    assert dataclasses.is_dataclass(spec.config)
    for option, key in spec.options.items():
        assert isinstance(option, str) and "." not in option
        assert config_key_exists(spec.config, key), f"{name}: option {option} -> unknown {key}"


def config_key_exists(config: type, key: str) -> bool:
    """Whether the dotted `key` walks through nested config dataclasses to a field."""
    node: object = config
    for part in key.split("."):
        if not (isinstance(node, type) and dataclasses.is_dataclass(node)):
            return False
        hints = typing.get_type_hints(node)
        if part not in hints:
            return False
        node = hints[part]
    return True


def test_names_and_aliases_resolve_to_one_spec_each() -> None:
    seen: dict[str, str] = {}
    for spec in TASKS.values():
        for alias in spec.names:
            assert alias not in seen, f"{alias} names both {seen[alias]} and {spec.name}"
            seen[alias] = spec.name
            assert get_task(alias) is spec
    # the names users typed before the task packages still resolve
    assert get_task("classifier").name == "classification"
    assert get_task("forecaster").name == "forecasting"
    assert get_task("lm").name == "language-model"


def test_an_unknown_task_is_one_clear_error_listing_the_tasks() -> None:
    with pytest.raises(ConfigError) as caught:
        get_task("sentiment")
    message = str(caught.value)
    assert "unknown task 'sentiment'" in message
    for spec in TASKS.values():
        assert spec.name in message


def test_a_run_folder_of_an_unknown_task_names_the_file_and_the_tasks(
    tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"format_version": 1, "task": "sentiment"}))
    with pytest.raises(DataError, match=r"config\.json.*unknown task 'sentiment'; known: "):
        Run(run)
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'sentiment'" in err and "classification" in err


def test_metric_values_walk_nested_results() -> None:
    mase = Metric("mase", "MASE", higher_is_better=False, key="model.mase")
    assert mase.value({"model": {"mase": 0.5}}) == 0.5
    assert mase.value({"model": {}}) is None
    assert mase.format({"model": {"mase": 0.51234}}) == "0.5123"
    assert Metric("accuracy", "accuracy", True).value({"accuracy": 1}) == 1.0


def test_held_out_unpacks_as_data_and_description() -> None:
    data, described = HeldOut([1, 2], "two numbers")
    assert data == [1, 2] and described == "two numbers"
