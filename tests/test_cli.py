"""The `rnnkit` command line: help everywhere, one-line errors, the datasets commands."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import pytest

from rnnkit.cli import build_parser, main


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_paths(sub, (*prefix, name))


COMMANDS = list(_command_paths(build_parser()))


def test_there_are_commands_to_check() -> None:
    assert ("datasets", "list") in COMMANDS and ("datasets", "fetch") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "rnnkit")
def test_every_command_has_help(path: tuple[str, ...], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: rnnkit")


def test_python_dash_m_and_console_script_run() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rnnkit", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("rnnkit ")
    script = shutil.which("rnnkit") or str(
        __import__("pathlib").Path(sys.executable).parent / "rnnkit"
    )
    out = subprocess.run([script, "datasets", "--help"], capture_output=True, text=True, check=True)
    assert "fetch" in out.stdout


def test_unknown_dataset_is_one_line_error_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rnnkit", "datasets", "fetch", "rotten-tomatos"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rnnkit: error: unknown dataset 'rotten-tomatos'. Did you mean 'rotten-tomatoes'? "
        "Known datasets: rotten-tomatoes, clothing-reviews, glove-6b-50d, shakespeare, "
        "airline-passengers, sunspots, electricity, retail"
    ]


def test_datasets_list_shows_every_dataset(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    assert main(["datasets", "list", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in records][:2] == ["rotten-tomatoes", "clothing-reviews"]
    assert all(r["cached"] is False for r in records)
    assert {r["licence"] for r in records} >= {"CC0-1.0", "PDDL-1.0", "CC-BY-4.0"}
    assert main(["datasets", "list"]) == 0
    table = capsys.readouterr().out
    assert "airline-passengers  forecasting" in table and "cached" in table


@pytest.mark.slow
@pytest.mark.network
def test_fetch_then_info_stats(capsys) -> None:
    assert main(["datasets", "fetch", "sunspots", "airline-passengers"]) == 0
    assert "sunspots: " in capsys.readouterr().out
    assert main(["datasets", "info", "airline-passengers", "--stats", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cached"] is True
    assert info["stats"]["frequency"] == "MS"
    assert "144 steps per series" in info["stats"]["span"]
