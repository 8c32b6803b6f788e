"""Run folders written by an older rnnkit still load and give the same outputs.

The folders in tests/fixtures/old_runs/ (a classifier, a forecaster and a character language
model, each a few KB) were written by rnnkit at commit 564e9fc, before the task-package
restructure (issue 13), by tests/fixtures/old_runs/make_old_runs.py, which also wrote
expected.json: what the predictors returned by `rnnkit.load(folder)` gave, and what
`rnnkit.runs.evaluate(folder)` gave on each run's own held-out data. They must keep loading and
giving the same outputs: users hold run folders from older versions. Do not regenerate them to
make this test pass; a change that breaks it breaks users' saved models.

Only the public entry points are used (`rnnkit.load`, the predictors' public methods,
`rnnkit.runs.evaluate`), so the test outlives moves inside the package. Numbers must agree to
1e-6 (absolute or relative); labels, generated text and other strings exactly.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import rnnkit
import rnnkit.runs

FIXTURES = Path(__file__).parent / "fixtures" / "old_runs"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
TOLERANCE = 1e-6


def copy_run(name: str, tmp_path: Path) -> Path:
    """A private copy of fixture folder `name`, so nothing the test does can change it."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def assert_same(got: Any, expected: Any, where: str = "") -> None:
    """Equal JSON-like trees: numbers within TOLERANCE, everything else exactly."""
    if isinstance(got, np.ndarray):
        got = got.tolist()
    elif isinstance(got, np.generic):
        got = got.item()
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: {got!r} is not a dict"
        assert sorted(got) == sorted(expected), f"{where}: keys differ"
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list | tuple), f"{where}: {got!r} is not a list"
        assert len(got) == len(expected), f"{where}: {len(got)} items, expected {len(expected)}"
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, int | float) and not isinstance(expected, bool):
        assert isinstance(got, int | float) and not isinstance(got, bool), (
            f"{where}: {got!r} is not a number"
        )
        assert math.isclose(got, expected, rel_tol=TOLERANCE, abs_tol=TOLERANCE), (
            f"{where}: {got!r} != {expected!r}"
        )
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def frame_record(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "index": [t.isoformat() for t in frame.index],
        "columns": {c: frame[c].astype(float).tolist() for c in frame.columns},
    }


def step_record(step: Any) -> dict[str, Any]:
    return {
        name: None if getattr(step, name) is None else np.asarray(getattr(step, name)).tolist()
        for name in ("point", "lower", "upper")
    }


def test_classifier_predicts_as_before(tmp_path: Path) -> None:
    expected = EXPECTED["classification"]
    predictor = rnnkit.load(copy_run("classification", tmp_path))
    assert_same(predictor.predict(expected["texts"]), expected["predict"], "predict")


def test_forecaster_forecasts_and_streams_as_before(tmp_path: Path) -> None:
    expected = EXPECTED["forecasting"]
    predictor = rnnkit.load(copy_run("forecasting", tmp_path))
    index = pd.DatetimeIndex(pd.to_datetime(expected["history"]["index"]), name="time")
    history = pd.DataFrame({"value": expected["history"]["value"]}, index=index)
    series_id = "value"  # the one series of the run, as its config.json's scaler names it
    got = {
        "predict": frame_record(predictor.predict(history)["series"]),
        "predict_by_id": frame_record(predictor.predict({series_id: history})[series_id]),
        "predict_horizon_3": frame_record(predictor.predict(history, horizon=3)["series"]),
    }
    streamer = predictor.stream()
    got["stream_warm_up"] = step_record(streamer.warm_up(history))
    got["stream_updates"] = [step_record(streamer.update(float(v))) for v in expected["later"]]
    for key, value in got.items():
        assert_same(value, expected[key], key)


def test_language_model_generates_and_scores_as_before(tmp_path: Path) -> None:
    expected = EXPECTED["language_model"]
    predictor = rnnkit.load(copy_run("language_model", tmp_path))
    for i, case in enumerate(expected["generate"]):
        assert_same(predictor.generate(**case["options"]), case["samples"], f"generate[{i}]")
    pieces = [[i, text] for i, text in predictor.stream(**expected["stream"]["options"])]
    assert_same(pieces, expected["stream"]["pieces"], "stream")
    scored = predictor.evaluate_text(expected["evaluate_text"]["text"])
    assert_same(scored, expected["evaluate_text"]["metrics"], "evaluate_text")


@pytest.mark.parametrize("name", ["classification", "forecasting", "language_model"])
def test_evaluate_on_the_runs_own_held_out_data_as_before(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_run(name, tmp_path)
    # config.json names the run's tiny data file relative to the run folder
    monkeypatch.chdir(run)
    got = rnnkit.runs.evaluate(run)
    if name == "forecasting":
        # The backtest gained a baseline since these folders were written (ETS, the `ets`
        # extra): it adds rows beside the old ones and changes none of them.
        assert "ets" in got
        got = {k: v for k, v in got.items() if k != "ets"}
        got["per_series"] = {
            series: {k: v for k, v in methods.items() if k != "ets"}
            for series, methods in got["per_series"].items()
        }
    assert_same(got, EXPECTED[name]["evaluate"], f"{name}.evaluate")
