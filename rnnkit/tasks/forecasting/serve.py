"""How `rnnkit serve` serves a forecaster: `POST .../forecast` and one lean step per observation.

    forecast   {"history": [row, ...], "horizon"?, "future"?: [row, ...]}
               or {"series": {id: [row, ...]}, "horizon"?, "future"?: {id: [row, ...]}}
               -> {"forecasts": {id: [{"time", <target>, <target>_lower, <target>_upper}]}}
               a row is {"time": ISO 8601, <column>: number, ...}; a lone history is the series
               "series" (scaled by its own statistics unless a trained series has that id)
    streams    create {"series"?: id, "history"?: [row, ...], "start"?: ISO time}
               -> the forecast after the history, or no answer without one
               observe {"values": [v, ...], "covariates"?: [c, ...]}: one entry per time step, a
               number for one target (covariate), a list of K numbers for K targets (C
               covariates) -> {"steps", "forecast": [{"time"?, <target>, <target>_lower,
               <target>_upper, "step"}]}, the forecast after the last value

A stream is `ForecastPredictor.stream(series, history)` (`StreamingForecaster`), stepped with
`update` once per value: a value goes in as a Python float for a model with one target and no
covariates and as float64 arrays otherwise, as a caller of the library would pass them, so the
answers equal that caller's bit for bit. `series` names a trained series (its saved scaling);
another id, or none with a history, is scaled by the history's own statistics. A model with
calendar features needs times: the history's first time, or `start`.

The stored state is the streamer's exact working set (`StreamingForecaster.exact_state`: the
lean step's buffers, the raw last-season values, the ring position, the step counter) and the
series' scaling, so a restarted server answers as if it never stopped.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator, model_validator

from rnnkit.errors import ConfigError, DataError
from rnnkit.serve.hooks import ServingHooks, StreamState
from rnnkit.tasks.forecasting.streaming import StreamingForecaster

#: rows in one history (one series)
MAX_ROWS = 10_000
#: series in one forecast request
MAX_SERIES = 100
#: rows over all the series of one request
MAX_TOTAL_ROWS = 100_000
#: steps forecast at once, whatever the model (its own trained horizon is checked per model)
MAX_HORIZON = 1_000
#: time steps in one stream observation
MAX_STEPS = 10_000
#: targets or covariates in one step
MAX_COLUMNS = 1_000
#: the id a lone `history` gets, as `ForecastPredictor.predict` names one frame
LONE_SERIES = "series"

SeriesId = Annotated[str, Field(min_length=1, max_length=200)]
Time = Annotated[str, Field(min_length=1, max_length=64)]


class Row(BaseModel):
    """One time step: `{"time": "2024-01-31", "<column>": 12.5, ...}`."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, FiniteFloat]

    time: Time


Rows = Annotated[list[Row], Field(min_length=1, max_length=MAX_ROWS)]


class ForecastRequest(BaseModel):
    """`POST /v1/models/{name}/forecast`: one history, or several series by id."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    history: Rows | None = None
    series: dict[SeriesId, Rows] | None = Field(None, min_length=1, max_length=MAX_SERIES)
    horizon: int | None = Field(None, ge=1, le=MAX_HORIZON)
    future: Rows | dict[SeriesId, Rows] | None = None

    @field_validator("series")
    @classmethod
    def _total_rows(cls, series: dict[str, list[Row]] | None) -> dict[str, list[Row]] | None:
        total = sum(len(rows) for rows in (series or {}).values())
        if total > MAX_TOTAL_ROWS:
            raise ValueError(f"series hold {total} rows in all; at most {MAX_TOTAL_ROWS}")
        return series

    @model_validator(mode="after")
    def _one_form(self) -> ForecastRequest:
        if (self.history is None) == (self.series is None):
            raise ValueError('give either "history" (one series) or "series" ({id: rows})')
        if self.future is not None and isinstance(self.future, dict) != (self.series is not None):
            raise ValueError('"future" takes the form of the request: rows, or {id: rows}')
        return self


class ForecastStreamRequest(BaseModel):
    """`POST /v1/models/{name}/streams`: which series, and the history to warm up on."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    series: SeriesId | None = None
    history: Rows | None = None
    start: Time | None = None

    @model_validator(mode="after")
    def _start_or_history(self) -> ForecastStreamRequest:
        if self.start is not None and self.history is not None:
            raise ValueError('give "start" or "history", not both: the history starts at its time')
        return self


Step = FiniteFloat | Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_COLUMNS)]


class Observe(BaseModel):
    """`POST /v1/streams/{id}/observe`: the next values (and covariates), one entry per step."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    values: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    covariates: list[Step] | None = Field(None, min_length=1, max_length=MAX_STEPS)


def _parsed(model: type[BaseModel], request: Any) -> Any:
    return request if isinstance(request, model) else model.model_validate(request)


# --- stateless forecasts -------------------------------------------------------------------


def run_batch(predictor: Any, requests: Sequence[Any]) -> list[dict[str, Any]]:
    """Each request through `ForecastPredictor.predict` (it runs one pass per series anyway)."""
    parsed = [_parsed(ForecastRequest, r) for r in requests]
    for r in parsed:  # before any work: one bad request fails its batch at once
        if r.horizon is not None and r.horizon > predictor.horizon:
            raise ConfigError(
                f"horizon {r.horizon}: this model forecasts 1 to {predictor.horizon} steps at once"
            )
    return [_forecast(predictor, r) for r in parsed]


def _forecast(predictor: Any, request: ForecastRequest) -> dict[str, Any]:
    layout = predictor.layout
    if request.series is None:
        assert request.history is not None
        named = {LONE_SERIES: ("history", request.history)}
        future = None if request.future is None else {LONE_SERIES: ("future", request.future)}
    else:
        named = {key: (f"series.{key}", rows) for key, rows in request.series.items()}
        future = None
        if request.future is not None:
            assert isinstance(request.future, dict)
            future = {key: (f"future.{key}", rows) for key, rows in request.future.items()}
    history = {}
    for key, (where, rows) in named.items():
        history[key] = _frame(rows, where)
        _check_columns(history[key], [*layout.targets, *layout.covariates], where)
    frames = None
    if future is not None:
        frames = {}
        for key, (where, rows) in future.items():
            frames[key] = _frame(rows, where)
            _check_columns(frames[key], layout.future_covariates, where)
    forecasts = predictor.predict(history, request.horizon, frames)
    return {
        "forecasts": {
            key: [
                {"time": time.isoformat(), **{c: float(v) for c, v in row.items()}}
                for time, row in zip(frame.index, frame.to_dict("records"), strict=True)
            ]
            for key, frame in forecasts.items()
        }
    }


def _frame(rows: list[Row], where: str) -> pd.DataFrame:
    """Rows as a frame indexed by their times, which must be ISO 8601 and increasing."""
    try:
        index = pd.DatetimeIndex(pd.to_datetime([r.time for r in rows], format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: a time is not an ISO 8601 date ({exc})", column="time") from None
    back = np.flatnonzero(index[1:] <= index[:-1])
    if back.size:
        i = int(back[0]) + 1
        raise DataError(
            f"{where}[{i}]: time {rows[i].time} does not come after {rows[i - 1].time}; rows "
            "must be in time order, one per step",
            column="time",
        )
    return pd.DataFrame([r.model_extra or {} for r in rows], index=index)


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise DataError(f"{where}: no column {column!r}; the model reads {list(columns)}")
        missing = np.flatnonzero(frame[column].isna().to_numpy())
        if missing.size:
            raise DataError(f"{where}[{int(missing[0])}] has no {column!r}", column=column)


def limits(predictor: Any) -> dict[str, float]:
    return {
        "history_rows": MAX_ROWS,
        "min_history": max(predictor.input_length, predictor.layout.season),
        "series_per_request": MAX_SERIES,
        "rows_per_request": MAX_TOTAL_ROWS,
        "horizon": predictor.horizon,
        "steps_per_observation": MAX_STEPS,
    }


def can_stream(predictor: Any) -> str | None:
    if predictor.layout.future_covariates:
        return "streaming does not support models with future covariates yet"
    return None


# --- streams -------------------------------------------------------------------------------


def new_stream(predictor: Any, request: Any) -> tuple[StreamState, dict[str, Any] | None]:
    request = _parsed(ForecastStreamRequest, request)
    reason = can_stream(predictor)
    if reason is not None:
        raise ConfigError(reason)
    layout = predictor.layout
    key = request.series or next(iter(predictor.scaler.params))
    history = None
    if request.history is not None:
        history = _frame(request.history, "history")
        _check_columns(history, [*layout.targets, *layout.covariates], "history")
    elif request.series is not None and request.series not in predictor.scaler.params:
        raise DataError(
            f"series {request.series!r} was not seen in training (known: "
            f"{list(predictor.scaler.params)}); give its history to scale it by"
        )
    start = None if history is not None else _time(request.start, "start")
    if layout.calendar and history is None and start is None:
        raise DataError('this model reads calendar features: give "start" (the first time)')
    stats = predictor.scaler.for_series(key, history)  # as `ForecastPredictor.stream` scales
    streamer = _build(predictor, stats)
    answer = None
    if history is not None:
        answer = _answer(streamer, layout, streamer.warm_up(history))
    else:
        streamer.start = start
    meta = {"series": key, "start": None if streamer.start is None else streamer.start.isoformat()}
    return _capture(streamer, _stats_array(stats, layout), meta), answer


def step_batch(
    predictor: Any, states: Sequence[StreamState], requests: Sequence[Any]
) -> list[tuple[StreamState, dict[str, Any]]]:
    # Each stream steps on its own, one lean step per value: nothing is shared between the
    # streams of a batch, so an answer does not depend on which streams shared it.
    parsed = [_parsed(Observe, r) for r in requests]
    with _Streamers.lock(predictor):
        return [_step(predictor, s, r) for s, r in zip(states, parsed, strict=True)]


def _step(
    predictor: Any, state: StreamState, request: Observe
) -> tuple[StreamState, dict[str, Any]]:
    layout = predictor.layout
    values = _steps(request.values, len(layout.targets), "values", "target")
    covariates = None
    if layout.covariates:
        if request.covariates is None:
            raise DataError(f"covariates: the model reads {list(layout.covariates)} at each step")
        covariates = _steps(request.covariates, len(layout.covariates), "covariates", "covariate")
        if len(covariates) != len(values):
            raise DataError(f"covariates: {len(covariates)} steps for {len(values)} values")
    elif request.covariates is not None:
        raise DataError("covariates: this model reads none")
    streamer = _restore(predictor, state)
    scalar = len(layout.targets) == 1 and not layout.covariates  # the library's float path
    for i, row in enumerate(values):
        if scalar:
            forecast = streamer.update(float(row[0]))
        else:
            cov = None if covariates is None else np.asarray(covariates[i], np.float64)
            forecast = streamer.update(np.asarray(row, np.float64), cov)
    new = _capture(streamer, state.arrays["stats"], dict(state.meta))
    return new, _answer(streamer, layout, forecast)


def _steps(entries: list[Any], width: int, field: str, what: str) -> list[list[float]]:
    """Observation entries as rows of `width` numbers (a bare number is a row of one)."""
    rows = [entry if isinstance(entry, list) else [entry] for entry in entries]
    for i, row in enumerate(rows):
        if len(row) != width:
            raise DataError(
                f"{field}[{i}] has {len(row)} number(s); the model reads {width} {what}"
            )
    return rows


def _time(value: str | None, field: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(pd.to_datetime(value, format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{field} {value!r} is not an ISO 8601 time ({exc})") from None


def _answer(streamer: StreamingForecaster, layout: Any, forecast: Any) -> dict[str, Any]:
    """`{"steps", "forecast": [{"time"?, target, target_lower, target_upper, "step"}]}`.

    Each row lists its keys as a stateless forecast's rows do (time, then the targets), with
    the step number (1 = the next step) last. The numbers are the arrays' own float64 values
    (`tolist`, once per column) and the times are memoized per (start, freq, step).
    """
    horizon = len(forecast.point)
    keys: list[str] = []
    columns: list[Any] = []
    if streamer.start is not None:  # the first observation was at `_first_time(start, zone, freq)`
        start, freq, steps = streamer.start, layout.freq, streamer.steps
        keys.append("time")
        zone = str(start.tz)  # equal instants in two zones are equal keys, not equal labels
        columns.append([_time_label(start, zone, freq, steps + i) for i in range(horizon)])
    for k, target in enumerate(layout.targets):
        for name, values in (("", forecast.point), ("_lower", forecast.lower),
                             ("_upper", forecast.upper)):  # fmt: skip
            if values is not None:
                keys.append(target + name)
                columns.append(values[:, k].tolist())
    keys.append("step")
    columns.append(range(1, horizon + 1))
    rows = [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
    return {"steps": streamer.steps, "forecast": rows}


@functools.lru_cache(maxsize=1024)
def _first_time(start: pd.Timestamp, zone: str, freq: Any) -> tuple[pd.Timestamp, Any]:
    """The first observation's time (`start` rolled onto `freq`) and the offset of one step."""
    return pd.date_range(start, periods=1, freq=freq)[0], to_offset(freq)


@functools.lru_cache(maxsize=1 << 16)
def _time_label(start: pd.Timestamp, zone: str, freq: Any, n: int) -> str:
    """ISO time of the step `n` steps after the first observation: consecutive answers of a
    stream share all but one of their horizon's times, and streams from one start share all."""
    first, offset = _first_time(start, zone, freq)
    return (first + offset * n).isoformat()


# --- the stream's state ---------------------------------------------------------------------


def _build(predictor: Any, stats: dict[str, tuple[float, float]]) -> StreamingForecaster:
    """A streamer for a series scaled by `stats`, as `ForecastPredictor.stream` builds one."""
    return StreamingForecaster(predictor.model, predictor.layout, stats, predictor.window.baseline)


def _stats_array(stats: dict[str, tuple[float, float]], layout: Any) -> np.ndarray:
    """(K + C, 2) float64 (shift, scale) of the targets, then the covariates."""
    return np.array([stats[c] for c in (*layout.targets, *layout.covariates)], np.float64)


def _capture(streamer: StreamingForecaster, stats: np.ndarray, meta: dict) -> StreamState:
    """The streamer's exact working set (`StreamingForecaster.exact_state`) and its scaling."""
    return StreamState({"stats": np.array(stats, np.float64), **streamer.exact_state()}, meta)


def _restore(predictor: Any, state: StreamState) -> StreamingForecaster:
    arrays, layout = state.arrays, predictor.layout
    columns = [*layout.targets, *layout.covariates]
    stats_array = np.asarray(arrays["stats"], np.float64)
    if stats_array.shape != (len(columns), 2):
        raise DataError(f"stream state does not fit this model (scaling of {columns})")
    start = state.meta.get("start") or None
    streamer = _Streamers.get(predictor, stats_array, start)
    streamer.restore_exact_state(arrays)
    streamer.start = None if start is None else pd.Timestamp(start)
    return streamer


class _Streamers:
    """Streamers kept per model, scaling and start, so a step does not rebuild one.

    Building a `StreamingForecaster` copies and refolds the weights, several times the cost of
    a step; every buffer that carries a stream is overwritten from its state before a step, so
    one streamer serves every stream of its series in turn (under the model's lock).
    """

    SIZE = 256  # per model; then the oldest goes
    _by_model: ClassVar[weakref.WeakKeyDictionary] = weakref.WeakKeyDictionary()
    _guard: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def lock(cls, predictor: Any) -> threading.Lock:
        return cls._entry(predictor)[0]

    @classmethod
    def get(cls, predictor: Any, stats: np.ndarray, start: str | None) -> StreamingForecaster:
        cache = cls._entry(predictor)[1]
        key = (stats.tobytes(), start)
        streamer = cache.get(key)
        if streamer is None:
            layout = predictor.layout
            columns = [*layout.targets, *layout.covariates]
            by_column = {c: (float(a), float(b)) for c, (a, b) in zip(columns, stats, strict=True)}
            streamer = cache[key] = _build(predictor, by_column)
            if len(cache) > cls.SIZE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return streamer

    @classmethod
    def _entry(cls, predictor: Any) -> tuple[threading.Lock, OrderedDict]:
        with cls._guard:
            entry = cls._by_model.get(predictor)
            if entry is None:
                entry = cls._by_model[predictor] = (threading.Lock(), OrderedDict())
            return entry


SERVING = ServingHooks(
    endpoint="forecast",
    request_model=ForecastRequest,
    run_batch=run_batch,
    limits=limits,
    create_model=ForecastStreamRequest,
    observe_model=Observe,
    can_stream=can_stream,
    new_stream=new_stream,
    step_batch=step_batch,
)
