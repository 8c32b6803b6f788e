"""Using a trained forecaster: forecasts from a history, and a streaming predictor.

- `ForecastPredictor.predict(history, horizon)`: the forecast after the end of each series, in
  the data's units, with the 80% interval where the model has one.
- `ForecastPredictor.stream(series_id, history)` -> `StreamingForecaster`
  (`rnnkit.tasks.forecasting.streaming`): carries the recurrent state between calls; `update(value)`
  advances one lean time step (not a re-run of the window) and returns the next forecast.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit import run_folder
from rnnkit.config import from_dict
from rnnkit.data.types import TimeSeriesDataset
from rnnkit.errors import ConfigError, DataError
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.run_folder import Files
from rnnkit.tasks.forecasting.streaming import StepForecast, StreamingForecaster
from rnnkit.tasks.forecasting.windows import (
    MAX_ABS_VALUE,
    Scaler,
    SeriesLayout,
    base_offsets,
    baseline_values,
    future_index,
)

__all__ = ["ForecastPredictor", "StepForecast", "StreamingForecaster"]

History = TimeSeriesDataset | pd.DataFrame | dict[str, pd.DataFrame]


class ForecastPredictor:
    """A trained forecaster ready for histories: `predict(history, horizon) -> {id: frame}`."""

    task = "forecasting"

    def __init__(
        self,
        model: Forecaster,
        layout: SeriesLayout,
        scaler: Scaler,
        input_length: int,
        window: Any,
        device: str = "cpu",
    ) -> None:
        self.model = model.to(device).eval()
        self.layout = layout
        self.scaler = scaler
        self.input_length = input_length
        self.window = window
        self.device = torch.device(device)

    @property
    def horizon(self) -> int:
        return self.model.config.horizon

    @classmethod
    def from_run(cls, run_dir: Path, config: dict[str, Any], device: str = "cpu"):
        from rnnkit.tasks.forecasting.config import ForecastingRunConfig

        path = run_dir / Files.CONFIG
        try:
            model_cfg = from_dict(ForecasterConfig, config["model"])
            run_cfg = from_dict(ForecastingRunConfig, config["config"])
            layout = from_dict(SeriesLayout, config["layout"])
            scaler = Scaler.from_dict(config["scaler"])
            input_length = config["input_length"]
        except KeyError as exc:
            raise DataError(f"missing key {exc}", path=path) from None
        except ConfigError as exc:
            raise DataError(str(exc), path=path) from None
        _check_saved(path, model_cfg, layout, scaler, input_length)
        _check_window(path, run_cfg.window, layout, input_length)
        model = Forecaster(model_cfg)
        run_folder.load_weights(model, run_dir)
        return cls(model, layout, scaler, input_length, run_cfg.window, device)

    # --- whole-window forecasts -----------------------------------------------------------

    def predict(
        self,
        history: History,
        horizon: int | None = None,
        future: dict[str, pd.DataFrame] | None = None,
    ) -> dict[str, pd.DataFrame]:
        """Forecast the `horizon` steps after the end of each series in `history`.

        Args:
            history: a `TimeSeriesDataset`, one frame (a single series) or {id: frame}; frames
                are indexed by time and hold the target (and covariate) columns.
            horizon: steps to forecast, at most the trained horizon (the head is direct).
            future: {id: frame} of the known-future covariates over the horizon, when the
                model uses them.

        Returns:
            {series id: frame indexed by the forecast times} with a column per target, and
            `<target>_lower` / `<target>_upper` (the 80% interval) where the model has them.
        """
        horizon = self._check_horizon(horizon)
        frames = _frames(history)
        for key, frame in frames.items():
            self._check_frame(key, frame)
        out = {}
        for key, frame in frames.items():
            x, fut, base, stats, index = self._inputs(key, frame, future)
            with torch.no_grad():
                params, _ = self.model(x, fut, base)
                fc = self.model.forecast(params[0])  # (H, K)
            out[key] = self._frame(fc, stats, index, horizon)
        return out

    def _check_horizon(self, horizon: int | None) -> int:
        horizon = self.horizon if horizon is None else horizon  # 0 is refused, not "all"
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer):
            raise ConfigError(f"--horizon {horizon!r}: expected a whole number of steps")
        if not 1 <= horizon <= self.horizon:
            raise ConfigError(
                f"--horizon {horizon}: this model forecasts 1 to {self.horizon} steps at once; "
                "train another with a longer --horizon"
            )
        return horizon

    def _check_frame(self, key: str, frame: pd.DataFrame) -> None:
        needed = [*self.layout.targets, *self.layout.covariates]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(
                f"series {key!r} lacks column(s) {missing}; the model reads {needed}",
                column=missing[0],
            )
        least = max(self.input_length, self.layout.season)
        if len(frame) < least:
            raise DataError(
                f"series {key!r} has {len(frame)} steps; the model needs at least {least} "
                f"(input_length {self.input_length}, season {self.layout.season})"
            )
        check_history(key, frame, self.layout.freq, needed)

    def _inputs(self, key: str, frame: pd.DataFrame, future: dict[str, pd.DataFrame] | None):
        layout, horizon = self.layout, self.horizon
        stats = self.scaler.for_series(key, frame)
        frame = _with_future_columns(frame, layout, key, future, horizon)
        scaled = layout.scaled(frame, stats)
        feats = layout.step_features(scaled, frame.index)[-self.input_length :]
        index = future_index(frame.index[-1], layout.freq, horizon)
        fut_scaled = _future_scaled(layout, stats, future, key, index)
        fut = layout.future_features(fut_scaled, index)
        z = torch.from_numpy(scaled[:, : len(layout.targets)])  # (N, K)
        back = base_offsets(horizon, layout.season, self.window.baseline)
        # the origin is the history's last step; a history shorter than a season repeats its first
        base = baseline_values(z, torch.tensor([len(z) - 1]), back, horizon, first=0)  # (1, H, K)
        x, fut_t = (torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(0) for a in (feats, fut))
        return x.to(self.device), fut_t.to(self.device), base.to(self.device), stats, index

    def _frame(self, fc, stats: dict, index: pd.DatetimeIndex, horizon: int) -> pd.DataFrame:
        columns = {}
        for k, target in enumerate(self.layout.targets):
            shift, scale = stats[target]
            columns[target] = Scaler.inverse(fc.point[:horizon, k].cpu().numpy(), shift, scale)
            if fc.lower is not None and fc.upper is not None:
                for end, values in (("lower", fc.lower), ("upper", fc.upper)):
                    scaled = values[:horizon, k].cpu().numpy()
                    columns[f"{target}_{end}"] = Scaler.inverse(scaled, shift, scale)
        return pd.DataFrame(columns, index=index[:horizon])

    # --- streaming -------------------------------------------------------------------------

    def forecast(
        self,
        history: History,
        horizon: int | None = None,
        future: dict[str, pd.DataFrame] | None = None,
    ) -> dict[str, pd.DataFrame]:
        """`predict` under the name people use for a forecaster (`run.forecast(history)`)."""
        return self.predict(history, horizon, future)

    def stream(self, series_id: str | None = None, history: pd.DataFrame | None = None):
        """A `StreamingForecaster` for one series, warmed up on `history` when given."""
        key = series_id or next(iter(self.scaler.params))
        stats = self.scaler.for_series(key, history)
        streamer = StreamingForecaster(self.model, self.layout, stats, self.window.baseline)
        if history is not None:
            streamer.warm_up(history)
        return streamer


def check_history(key: str, frame: pd.DataFrame, freq: str, columns: list[str]) -> None:
    """Refuse a history the model would read wrongly: another frequency, or unusable values.

    A daily history fed to a monthly model would otherwise be forecast as if each day were a
    month; the forecast's times would be wrong too.

    Raises:
        DataError: times that are not consecutive steps of `freq` (the first break named), or a
            value that is not finite or beyond `MAX_ABS_VALUE` (its row and column named).
    """
    index = frame.index
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        offset = pd.tseries.frequencies.to_offset(freq)
        expected = pd.date_range(index[0], periods=len(index), freq=offset)
        if not index.equals(expected):
            bad = int(np.argmax(index != expected))
            with warnings.catch_warnings():  # pandas 3 warns that infer_freq will change type
                warnings.simplefilter("ignore")
                seen = pd.infer_freq(index[:50]) if len(index) >= 3 else None
            seen = getattr(seen, "freqstr", seen)
            found = f" (it looks like {seen!r})" if seen else ""
            raise DataError(
                f"series {key!r} is not at the model's frequency {freq!r}{found}: after "
                f"{index[max(bad - 1, 0)]} the model expects {expected[bad]}, the history has "
                f"{index[bad]}; give a history at {freq!r}, without gaps",
                row=bad,
            )
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        bad_rows = np.flatnonzero(~(np.abs(values) <= MAX_ABS_VALUE))
        if len(bad_rows):
            row = int(bad_rows[0])
            raise DataError(
                f"series {key!r} holds {frame[column].iloc[row]!r}; values must be finite numbers "
                f"within +-{MAX_ABS_VALUE:g}",
                row=row,
                column=column,
            )


def _check_saved(
    path: Path, model: ForecasterConfig, layout: SeriesLayout, scaler: Scaler, input_length: Any
) -> None:
    """config.json's parts must agree with each other before a model is built from them."""
    if isinstance(input_length, bool) or not isinstance(input_length, int):
        raise DataError(f"expected an int, got {input_length!r}", path=path, column="input_length")
    if not 1 <= input_length <= 1_000_000:
        raise DataError(
            f"must be from 1 to 1,000,000 steps, got {input_length}",
            path=path,
            column="input_length",
        )
    pairs = (
        ("num_features", layout.num_features, model.num_features),
        ("num_future", layout.num_future, model.num_future),
        ("num_targets", len(layout.targets), model.num_targets),
    )
    for name, from_layout, in_model in pairs:
        if from_layout != in_model:
            raise DataError(
                f"layout (freq {layout.freq!r}, calendar {layout.calendar}, its columns) makes "
                f"{from_layout} {name} but model.{name} is {in_model}; config.json was edited",
                path=path,
                column="layout",
            )
    columns = {*layout.targets, *layout.covariates, *layout.future_covariates}
    for key, stats in scaler.params.items():
        missing = sorted(columns - set(stats))
        if missing:
            raise DataError(
                f"series {key!r} has no statistics for column(s) {missing}",
                path=path,
                column=f"scaler.params.{key}",
            )


def _check_window(path: Path, window: Any, layout: SeriesLayout, input_length: int) -> None:
    """The saved season and input length must be what the run's window resolves to.

    Training wrote both from `window.resolved(freq)`; an edit of one alone would load as a
    valid model that reads another window of history and gives other forecasts, silently.
    """
    try:
        season, length = window.resolved(layout.freq)
    except (ConfigError, ValueError) as exc:
        raise DataError(f"window: {exc}", path=path, column="config.window") from None
    for name, saved, resolved in (
        ("layout.season", layout.season, season),
        ("input_length", input_length, length),
    ):
        if saved != resolved:
            raise DataError(
                f"is {saved} but the run's window (config.window, freq {layout.freq!r}) gives "
                f"{resolved}; config.json was edited",
                path=path,
                column=name,
            )


def _frames(history: History) -> dict[str, pd.DataFrame]:
    if isinstance(history, TimeSeriesDataset):
        return dict(history.series)
    if isinstance(history, pd.DataFrame):
        return {"series": history}
    return dict(history)


def _with_future_columns(frame, layout, key, future, horizon):
    """History frames need no future-covariate values; fill them with 0 for scaling."""
    del key, future, horizon
    missing = [c for c in layout.future_covariates if c not in frame.columns]
    if missing:
        frame = frame.assign(**{c: 0.0 for c in missing})
    return frame


def _future_scaled(layout, stats, future, key, index) -> np.ndarray:
    """(H, K + C + Cf) scaled columns over the horizon; only the future covariates matter."""
    cols = [*layout.targets, *layout.covariates, *layout.future_covariates]
    out = np.zeros((len(index), len(cols)), dtype=np.float32)
    if not layout.future_covariates:
        return out
    if future is None or key not in future:
        raise DataError(
            f"the model reads future covariates {list(layout.future_covariates)}; give their "
            f"values over the horizon for series {key!r}"
        )
    frame = future[key]
    if len(frame) < len(index):
        raise DataError(f"future covariates of {key!r} cover {len(frame)} of {len(index)} steps")
    for i, column in enumerate(cols):
        if column in layout.future_covariates:
            shift, scale = stats[column]
            values = frame[column].to_numpy(dtype=np.float64)[: len(index)]
            out[:, i] = Scaler.transform(values, shift, scale)
    return out
