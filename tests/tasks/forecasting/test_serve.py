"""Serving a forecaster: forecast batches, streams equal to the library's streamer bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

import rnnkit
from rnnkit.errors import ConfigError, DataError
from rnnkit.serve.hooks import StreamState
from rnnkit.tasks import get_task
from rnnkit.tasks.forecasting.serve import MAX_ROWS, MAX_SERIES, MAX_STEPS, SERVING

TINY = {"hidden_size": 8, "epochs": 1, "device": "cpu", "ensemble": 1}


def monthly(n: int = 96, scale: float = 1.0) -> pd.Series:
    months = pd.date_range("2000-01", periods=n, freq="MS")
    return pd.Series(scale * (100 + 10 * np.sin(np.arange(n) * np.pi / 6)), index=months)


def daily(n: int = 120) -> pd.DataFrame:
    """Two targets and a covariate, weekly season."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2021-01-04", periods=n, freq="D")
    weekly = np.sin(2 * np.pi * np.arange(n) / 7)
    return pd.DataFrame(
        {"sales": 50 + 10 * weekly + rng.normal(0, 1, n), "returns": 5 + weekly + rng.random(n),
         "visits": 200 + 30 * weekly + rng.normal(0, 3, n)},
        index=days,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, rnnkit.Run]:
    """One target, no covariates (the streamer's float path); two targets and a covariate."""
    root = tmp_path_factory.mktemp("fc-serve")
    return {
        "monthly": rnnkit.train(
            "forecasting", {"north": monthly(), "south": monthly(scale=2.0)}, root / "air",
            {"window.min_epoch_windows": 64}, horizon=6, input_length=24, **TINY,
        ),
        "daily": rnnkit.train(
            "forecasting", daily(), root / "shop",
            {"window.min_epoch_windows": 64, "data.target_columns": ["sales", "returns"]},
            covariates=["visits"], horizon=4, input_length=14, cell="gru", **TINY,
        ),
    }  # fmt: skip


def rows(frame: pd.DataFrame | pd.Series, column: str = "value") -> list[dict]:
    if isinstance(frame, pd.Series):
        frame = frame.to_frame(column)
    records = frame.to_dict("records")
    return [{"time": t.isoformat(), **row} for t, row in zip(frame.index, records, strict=True)]


def stored(state: StreamState) -> StreamState:
    """The state as the store keeps it: a safetensors blob and JSON, read back."""
    blob = save_arrays(state.arrays, metadata={"meta": json.dumps(state.meta)})
    return StreamState(load_arrays(blob), json.loads(json.dumps(state.meta)))


def observe(predictor, state, body):
    [(state, answer)] = SERVING.step_batch(predictor, [state], [body])
    return state, answer


def forecast_rows(fc, targets, steps=None) -> list[dict]:
    """The answer `observe` should give for a `StepForecast`."""
    out = []
    for i in range(len(fc.point)):
        row = {"step": i + 1}
        for k, target in enumerate(targets):
            row[target] = float(fc.point[i, k])
            if fc.lower is not None:
                row[f"{target}_lower"] = float(fc.lower[i, k])
                row[f"{target}_upper"] = float(fc.upper[i, k])
        out.append(row)
    return out


def without_times(answer: dict) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time"} for row in answer["forecast"]]


def test_the_spec_loads_these_hooks() -> None:
    assert get_task("forecasting").serving() is SERVING
    assert SERVING.endpoint == "forecast" and SERVING.stream_events is None


def test_run_batch_forecasts_as_predict_does(runs) -> None:
    predictor = runs["monthly"].predictor()
    north, other = monthly(40), monthly(30, scale=3.0)
    got = SERVING.run_batch(
        predictor,
        [{"series": {"north": rows(north), "elsewhere": rows(other)}, "horizon": 3},
         {"history": rows(north)}],
    )  # fmt: skip
    want = predictor.predict(
        {"north": north.to_frame("value"), "elsewhere": other.to_frame("value")}, 3
    )
    assert sorted(got[0]["forecasts"]) == ["elsewhere", "north"]
    for key, frame in want.items():
        answer = got[0]["forecasts"][key]
        assert [r["time"] for r in answer] == [t.isoformat() for t in frame.index]
        for column in frame.columns:
            assert [r[column] for r in answer] == frame[column].tolist()
    [lone] = got[1]["forecasts"].values()
    assert list(got[1]["forecasts"]) == ["series"] and len(lone) == 6
    assert set(lone[0]) == {"time", "value", "value_lower", "value_upper"}
    assert SERVING.limits(predictor)["horizon"] == 6


def test_run_batch_refuses_a_horizon_past_the_trained_one(runs) -> None:
    predictor = runs["monthly"].predictor()
    with pytest.raises(ConfigError, match="horizon 7: this model forecasts 1 to 6"):
        SERVING.run_batch(predictor, [{"history": rows(monthly(30)), "horizon": 7}])


@pytest.mark.parametrize(
    ("history", "match"),
    [
        ([{"time": "2000-02-01", "value": 1.0}, {"time": "2000-01-01", "value": 2.0}],
         r"history\[1\]: time 2000-01-01 does not come after 2000-02-01"),
        ([{"time": "2000-01-01", "value": 1.0}, {"time": "2000-02-01"}], r"history\[1\] has no"),
        ([{"time": "yesterday", "value": 1.0}], "not an ISO 8601 date"),
        ([{"time": "2000-01-01", "level": 1.0}], "no column 'value'"),
    ],
)  # fmt: skip
def test_bad_rows_are_named(runs, history, match) -> None:
    with pytest.raises(DataError, match=match):
        SERVING.run_batch(runs["monthly"].predictor(), [{"history": history}])


@pytest.mark.parametrize("start_with_history", [True, False])
def test_a_stream_equals_the_library_streamer_bit_for_bit(runs, start_with_history) -> None:
    run = runs["monthly"]
    predictor, reference = run.predictor(), rnnkit.load(run.path)
    series = monthly(90) + np.random.default_rng(1).normal(0, 30, 90)  # digits in every bit
    history, later = series.iloc[:30], series.iloc[30:].tolist()
    if start_with_history:
        state, answer = SERVING.new_stream(predictor, {"series": "north", "history": rows(history)})
        lib = reference.stream("north", history.to_frame("value"))
        lib_warm = reference.stream("north", history.to_frame("value")).warm_up(
            history.to_frame("value")
        )
        assert without_times(answer) == forecast_rows(lib_warm, ["value"])
    else:
        state, answer = SERVING.new_stream(predictor, {"series": "south", "start": "2000-01-01"})
        assert answer is None
        lib = reference.stream("south")
        lib.start = pd.Timestamp("2000-01-01")
    for i, value in enumerate(later):
        # a state that went through the store: `state_bytes` would not do (serve.py)
        state = stored(state) if i % 2 == 0 else state
        state, answer = observe(predictor, state, {"values": [value]})
        assert without_times(answer) == forecast_rows(lib.update(value), ["value"])
        assert answer["steps"] == lib.steps
    # several values in one observation: one lean step each
    state, answer = observe(predictor, state, {"values": [101.5, 99.0, 104.25]})
    for value in (101.5, 99.0):
        lib.update(value)
    assert without_times(answer) == forecast_rows(lib.update(104.25), ["value"])
    times = pd.date_range(series.index[0], periods=lib.steps + 6, freq="MS")[lib.steps :]
    assert [r["time"] for r in answer["forecast"]] == [t.isoformat() for t in times]


def test_many_targets_and_covariates_stream_bit_for_bit(runs) -> None:
    run = runs["daily"]
    predictor, reference = run.predictor(), rnnkit.load(run.path)
    frame = daily(60)
    key = next(iter(predictor.scaler.params))
    state, _ = SERVING.new_stream(predictor, {"history": rows(frame.iloc[:20])})
    lib = reference.stream(key, frame.iloc[:20])
    for _, row in frame.iloc[20:].iterrows():
        values, visits = [row["sales"], row["returns"]], [row["visits"]]
        state, answer = observe(
            predictor, stored(state), {"values": [values], "covariates": [visits]}
        )
        want = lib.update(np.array(values), np.array(visits))
        assert without_times(answer) == forecast_rows(want, ["sales", "returns"])
    assert set(answer["forecast"][0]) >= {"sales", "returns_upper", "time", "step"}
    with pytest.raises(DataError, match="covariates: the model reads"):
        observe(predictor, state, {"values": [[1.0, 2.0]]})
    with pytest.raises(DataError, match=r"values\[0\] has 1 number\(s\); the model reads 2"):
        observe(predictor, state, {"values": [1.0], "covariates": [3.0]})


def test_a_stored_state_gives_the_same_next_answers_and_batches_do_not_matter(runs) -> None:
    predictor = runs["monthly"].predictor()
    a, _ = SERVING.new_stream(predictor, {"history": rows(monthly(30))})
    b, _ = SERVING.new_stream(predictor, {"series": "south", "start": "2001-05-01"})
    kept = StreamState({k: v.copy() for k, v in a.arrays.items()}, dict(a.meta))
    together = SERVING.step_batch(predictor, [a, b], [{"values": [100.0]}, {"values": [7.0]}])
    alone = SERVING.step_batch(predictor, [stored(kept)], [{"values": [100.0]}])
    assert together[0][1] == alone[0][1]
    for name, value in together[0][0].arrays.items():
        assert np.array_equal(value, alone[0][0].arrays[name]), name
        if name in kept.arrays and name != "stats":
            assert value.dtype == kept.arrays[name].dtype
    assert all(np.array_equal(a.arrays[k], kept.arrays[k]) for k in kept.arrays)  # untouched


def test_stream_creation_checks_what_it_needs(runs) -> None:
    predictor = runs["monthly"].predictor()
    with pytest.raises(DataError, match='calendar features: give "start"'):
        SERVING.new_stream(predictor, {"series": "north"})
    with pytest.raises(DataError, match="'west' was not seen in training"):
        SERVING.new_stream(predictor, {"series": "west", "start": "2000-01-01"})
    state, answer = SERVING.new_stream(predictor, {"series": "west", "history": rows(monthly(30))})
    assert (
        state.meta == {"series": "west", "start": "2000-01-01T00:00:00"} and answer["steps"] == 30
    )
    assert SERVING.can_stream(predictor) is None


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        ("request_model", {"history": [{"time": "2000-01-01", "value": 1.0}] * (MAX_ROWS + 1)},
         ("history",)),
        ("request_model", {"history": [{"time": "2000-01-01", "value": float("nan")}]},
         ("history", 0, "value")),
        ("request_model", {"history": [{"time": "2000-01-01", "value": "many"}]},
         ("history", 0, "value")),
        ("request_model", {"history": [{"value": 1.0}]}, ("history", 0, "time")),
        ("request_model", {"series": {str(i): [{"time": "2000", "value": 1}]
                                      for i in range(MAX_SERIES + 1)}}, ("series",)),
        ("request_model", {"history": [{"time": "2000", "value": 1}], "horizon": 0}, ("horizon",)),
        ("request_model", {"history": [{"time": "2000", "value": 1}], "steps": 3}, ("steps",)),
        ("create_model", {"history": [{"time": "2000", "value": float("inf")}]},
         ("history", 0, "value")),
        ("create_model", {"series": ""}, ("series",)),
        ("observe_model", {"values": [1.0] * (MAX_STEPS + 1)}, ("values",)),
        ("observe_model", {"values": []}, ("values",)),
        ("observe_model", {"values": [float("nan")]}, ("values", 0, "float")),
        ("observe_model", {"values": [1.0], "seq": 3}, ("seq",)),
    ],
)  # fmt: skip
def test_over_limit_input_is_refused_naming_the_field(model, body, field) -> None:
    with pytest.raises(ValidationError) as caught:
        getattr(SERVING, model).model_validate(body)
    assert field in [error["loc"] for error in caught.value.errors()]


def test_a_request_has_one_form(runs) -> None:
    row = [{"time": "2000-01-01", "value": 1.0}]
    for body in ({}, {"history": row, "series": {"a": row}}):
        with pytest.raises(ValidationError, match='either "history"'):
            SERVING.request_model.model_validate(body)
    with pytest.raises(ValidationError, match="not both"):
        SERVING.create_model.model_validate({"history": row, "start": "2000-01-01"})
