"""Using a trained forecaster: forecasts from a history, and a streaming predictor.

- `ForecastPredictor.predict(history, horizon)`: the forecast after the end of each series, in
  the data's units, with the 80% interval where the model has one.
- `ForecastPredictor.stream(history)` -> `StreamingForecaster`: carries the recurrent state
  between calls; `update(value)` advances one time step (not a re-run of the window) and returns
  the next forecast. Its state saves to and loads from a small safetensors blob.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from rnnkit import runs
from rnnkit.config import from_dict
from rnnkit.data.types import TimeSeriesDataset
from rnnkit.data.windows import Scaler, SeriesLayout, base_offsets, calendar_features
from rnnkit.errors import ConfigError, DataError
from rnnkit.io import atomic_write_bytes
from rnnkit.models.forecaster import Forecaster, ForecasterConfig

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
        from rnnkit.tasks.forecasting import ForecasterRunConfig

        path = run_dir / runs.CONFIG_FILE
        try:
            model_cfg = from_dict(ForecasterConfig, config["model"])
            run_cfg = from_dict(ForecasterRunConfig, config["config"])
            layout = from_dict(SeriesLayout, config["layout"])
            scaler = Scaler.from_dict(config["scaler"])
            input_length = int(config["input_length"])
        except KeyError as exc:
            raise DataError(f"missing key {exc}", path=path) from None
        except ConfigError as exc:
            raise DataError(str(exc), path=path) from None
        model = Forecaster(model_cfg)
        runs.load_weights(model, run_dir)
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
        horizon = horizon or self.horizon
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

    def _inputs(self, key: str, frame: pd.DataFrame, future: dict[str, pd.DataFrame] | None):
        layout, horizon = self.layout, self.horizon
        stats = self.scaler.for_series(key, frame)
        frame = _with_future_columns(frame, layout, key, future, horizon)
        scaled = layout.scaled(frame, stats)
        feats = layout.step_features(scaled, frame.index)[-self.input_length :]
        index = _future_index(frame.index, layout.freq, horizon)
        fut_scaled = _future_scaled(layout, stats, future, key, index)
        fut = layout.future_features(fut_scaled, index)
        z = scaled[:, : len(layout.targets)]
        back = base_offsets(horizon, layout.season, self.window.baseline)
        n = len(z)
        if back is None:
            base = np.zeros((horizon, z.shape[1]), dtype=np.float32)
        else:
            base = z[np.maximum(n - 1 + np.arange(1, horizon + 1) - back.numpy(), 0)]
        tensors = [torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(0) for a in (feats, fut)]
        base_t = torch.from_numpy(np.ascontiguousarray(base)).unsqueeze(0)
        return tensors[0].to(self.device), tensors[1].to(self.device), base_t, stats, index

    def _frame(self, fc, stats: dict, index: pd.DatetimeIndex, horizon: int) -> pd.DataFrame:
        columns = {}
        for k, target in enumerate(self.layout.targets):
            shift, scale = stats[target]
            columns[target] = fc.point[:horizon, k].cpu().numpy() * scale + shift
            if fc.lower is not None and fc.upper is not None:
                columns[f"{target}_lower"] = fc.lower[:horizon, k].cpu().numpy() * scale + shift
                columns[f"{target}_upper"] = fc.upper[:horizon, k].cpu().numpy() * scale + shift
        return pd.DataFrame(columns, index=index[:horizon])

    # --- streaming -------------------------------------------------------------------------

    def stream(self, series_id: str | None = None, history: pd.DataFrame | None = None):
        """A `StreamingForecaster` for one series, warmed up on `history` when given."""
        key = series_id or next(iter(self.scaler.params))
        stats = self.scaler.for_series(key, history)
        streamer = StreamingForecaster(self.model, self.layout, stats, self.window.baseline)
        if history is not None:
            streamer.warm_up(history)
        return streamer


@dataclass
class StepForecast:
    """One streaming forecast, in the data's units.

    Attributes:
        point: (H, K) point forecast for the next H steps.
        lower: (H, K) 80% interval lower ends, or None.
        upper: (H, K) upper ends, or None.
    """

    point: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None


class StreamingForecaster:
    """Advance a forecaster one observation at a time, carrying the recurrent state.

    Each `update` costs one recurrent step plus the head (not a re-run of the input window).
    The carried pieces are the encoder state, the last `season` scaled targets (for the seasonal
    differences and the baseline) and the step counter; `save`/`load` write them as safetensors.
    Calendar features need times: give `start` (the first observation's time) once, or pass
    `time` to each update.
    """

    def __init__(
        self,
        model: Forecaster,
        layout: SeriesLayout,
        stats: dict[str, tuple[float, float]],
        baseline: str = "seasonal_naive",
    ) -> None:
        if layout.future_covariates:
            raise ConfigError("streaming does not support models with future covariates yet")
        self.model = model.eval()
        self.layout = layout
        k = len(layout.targets)
        columns = [*layout.targets, *layout.covariates]
        self._shift = torch.tensor([stats[c][0] for c in columns], dtype=torch.float32)
        self._scale = torch.tensor([stats[c][1] for c in columns], dtype=torch.float32)
        self._k = k
        horizon = model.config.horizon
        back = base_offsets(horizon, layout.season, baseline)
        # Buffer positions (0 = oldest of the last `season` values) each horizon step reads.
        self._base_pos = None if back is None else layout.season - back + torch.arange(horizon)
        self._ahead = np.arange(1, horizon + 1)
        self.start: pd.Timestamp | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the series: zero state, empty buffer, step 0."""
        self.state: Any = None
        self.buffer = torch.zeros(self.layout.season, self._k)  # last `season` scaled targets
        self.steps = 0
        self._calendar: np.ndarray | None = None

    def warm_up(self, history: pd.DataFrame) -> StepForecast:
        """Feed a whole history in one fused pass; returns the forecast after its last step."""
        self.reset()
        self.start = history.index[0]
        columns = [*self.layout.targets, *self.layout.covariates]
        values = torch.tensor(history[columns].to_numpy(dtype=np.float32))
        return self.update_many(values)

    def update(self, value: float | Any, covariates: Any = None) -> StepForecast:
        """Observe the next step's target(s) (K,) and covariates (C,); forecast what follows."""
        row = torch.as_tensor(np.atleast_1d(np.asarray(value, dtype=np.float32)))
        if covariates is not None:
            row = torch.cat([row, torch.as_tensor(np.atleast_1d(covariates), dtype=torch.float32)])
        return self.update_many(row.unsqueeze(0))

    @torch.no_grad()
    def update_many(self, rows: torch.Tensor) -> StepForecast:
        """Observe T steps (T, K + C) in one pass; returns the forecast after the last one."""
        z = (rows - self._shift) / self._scale  # (T, K + C)
        t = z.size(0)
        targets = z[:, : self._k]
        # Seasonal differences against the buffer (zeros before a full season was seen).
        history = torch.cat([self.buffer, targets])  # (m + T, K)
        m = self.layout.season
        seasonal = targets - history[:t]
        seen = self.steps + torch.arange(t)
        seasonal[seen < m] = 0.0
        parts = [targets, seasonal, z[:, self._k :]]
        if self.layout.calendar:
            parts.append(self._calendar_rows(self.steps, t))
        x = torch.cat(parts, dim=1).unsqueeze(0)  # (1, T, F)
        self.buffer = history[-m:]
        if self.steps + t < m:  # not a full season yet: the oldest values repeat the first one
            filled = self.steps + t
            self.buffer[: m - filled] = self.buffer[m - filled]
        self.steps += t
        future = self._future_rows()  # (1, H, Ff)
        base = self._base().unsqueeze(0)  # (1, H, K)
        outputs, self.state = self.model.encoder(x, state=self.state)
        params = self._head(outputs[:, -1], future, base)
        fc = self.model.forecast(params[0])
        sh, sc = self._shift[: self._k], self._scale[: self._k]

        def raw(t: torch.Tensor | None) -> np.ndarray | None:
            return None if t is None else (t * sc + sh).numpy()

        return StepForecast(raw(fc.point), raw(fc.lower), raw(fc.upper))  # type: ignore[arg-type]

    def _head(self, hidden: torch.Tensor, future: torch.Tensor, base: torch.Tensor):
        c = self.model.config
        features = torch.cat([hidden, future.reshape(1, -1)], dim=-1)
        raw = self.model.head(features).view(1, c.horizon, c.num_targets, c.num_params)
        if c.likelihood == "gaussian":
            scale = torch.nn.functional.softplus(raw[..., 1]) + 1e-3
            return torch.stack([raw[..., 0] + base, scale], dim=-1)
        return raw + base.unsqueeze(-1)

    def _base(self) -> torch.Tensor:
        if self._base_pos is None:
            return torch.zeros(self.model.config.horizon, self._k)
        return self.buffer[self._base_pos]

    def _calendar_rows(self, first: int, count: int) -> torch.Tensor:
        """Calendar features of steps first..first+count-1 (and beyond, cached in chunks)."""
        need = first + count + self.model.config.horizon
        if self._calendar is None or len(self._calendar) < need:
            if self.start is None:
                raise ConfigError("calendar features need times: set `start` or use warm_up()")
            size = max(need, 2 * (0 if self._calendar is None else len(self._calendar)), 1024)
            index = pd.date_range(self.start, periods=size, freq=self.layout.freq)
            self._calendar = calendar_features(index, self.layout.freq)
        return torch.from_numpy(self._calendar[first : first + count])

    def _future_rows(self) -> torch.Tensor:
        horizon = self.model.config.horizon
        if not self.layout.calendar:
            return torch.zeros(1, horizon, 0)
        return self._calendar_rows(self.steps, horizon).unsqueeze(0)

    # --- persistence -----------------------------------------------------------------------

    def state_bytes(self) -> bytes:
        """The stream's state as a safetensors blob (encoder state, buffer, step counter)."""
        tensors = {"buffer": self.buffer.contiguous(), "steps": torch.tensor([self.steps])}
        if self.state is not None:
            pair = self.state if isinstance(self.state, tuple) else (self.state,)
            for i, t in enumerate(pair):
                tensors[f"state.{i}"] = t.contiguous()
        meta = {"start": "" if self.start is None else self.start.isoformat()}
        return save_tensors(tensors, metadata=meta)

    def load_state_bytes(self, blob: bytes) -> None:
        """Restore what `state_bytes` saved; shapes are checked against this model."""
        try:
            tensors = load_tensors(blob)
        except Exception as exc:  # safetensors raises its own types for damaged headers
            raise DataError(f"not a stream state blob: {exc}") from exc
        if tuple(tensors.get("buffer", torch.empty(0)).shape) != tuple(self.buffer.shape):
            raise DataError(f"stream state does not fit this model (buffer {self.buffer.shape})")
        self.reset()
        self.buffer = tensors["buffer"]
        self.steps = int(tensors["steps"][0])
        parts = [tensors[k] for k in sorted(k for k in tensors if k.startswith("state."))]
        self.state = None if not parts else (tuple(parts) if len(parts) == 2 else parts[0])

    def save(self, path: str | Path) -> None:
        atomic_write_bytes(path, self.state_bytes())

    def load(self, path: str | Path) -> None:
        self.load_state_bytes(Path(path).read_bytes())


def _frames(history: History) -> dict[str, pd.DataFrame]:
    if isinstance(history, TimeSeriesDataset):
        return dict(history.series)
    if isinstance(history, pd.DataFrame):
        return {"series": history}
    return dict(history)


def _future_index(index: pd.DatetimeIndex, freq: str, horizon: int) -> pd.DatetimeIndex:
    return pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:]


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
            out[:, i] = (frame[column].to_numpy(dtype=np.float64)[: len(index)] - shift) / scale
    return out
