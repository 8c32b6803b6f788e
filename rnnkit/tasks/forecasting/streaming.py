"""Streaming forecasts: feed one observation, get the next forecast, at the cost of one step.

`StreamingForecaster.update(value)` runs the lean NumPy step (`rnnkit.models.lean`): the
features of the new point, one recurrent step from the carried state and the head, in a few
dozen NumPy calls on preallocated buffers, far cheaper than a re-run of the input window or a
module call (timings in docs/benchmarks.md, "Forecasting"). `warm_up(history)` and
`update_many(rows)` feed many steps at once through the fused module instead, and hand its
final state to the lean step.

The carried pieces are the encoder state, the last `season` scaled targets (a ring buffer: the
seasonal differences and the baseline read it) and the step counter; `state_bytes` / `save`
write them as a small safetensors blob.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from rnnkit.errors import ConfigError, DataError
from rnnkit.io import atomic_write_bytes
from rnnkit.models.encoder import State
from rnnkit.models.forecaster import Z80, Forecaster
from rnnkit.models.lean import LeanEncoder, LeanHead
from rnnkit.tasks.forecasting.windows import (
    Scaler,
    SeriesLayout,
    base_offsets,
    baseline_steps,
    calendar_features,
)


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

    Calendar features need times: give `start` (the first observation's time) once, or use
    `warm_up(history)`, which sets it.

    Args:
        model: the trained forecaster (its weights are copied once; later changes are unseen).
        layout: the feature layout it was trained with.
        stats: (shift, scale) per target and covariate column of this series.
        baseline: the baseline the model predicts a residual over.
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
        c = model.config
        self._k, self._h = len(layout.targets), c.horizon
        shift, scale = Scaler.shift_scale(stats, [*layout.targets, *layout.covariates])
        k = self._k
        self._shift, self._inv = shift[:k], 1.0 / scale[:k]
        self._cov_shift, self._cov_inv = shift[k:], 1.0 / scale[k:]
        self._out_scale = scale[:k]
        self._lean = LeanEncoder(model.encoder)
        m = layout.season
        back = base_offsets(c.horizon, m, baseline)
        # Ring positions each horizon step's baseline reads, by the ring's oldest position: the
        # origin is the newest of the ring's m entries, m - 1 counted from the oldest.
        positions = None if back is None else baseline_steps(torch.tensor(m - 1), back).numpy()
        self._base_index = None if positions is None else [(p + positions) % m for p in range(m)]
        # Head outputs come out in the data's units: the target's scale is folded into its last
        # layer, and the shift too unless the raw baseline, which carries it, is added later
        # ((r + b_z) * s + shift = r * s + b_raw). A Gaussian's scale parameter is not affine.
        rows_scale = np.broadcast_to(scale[None, :k, None], (c.horizon, k, c.num_params)).copy()
        rows_shift = np.broadcast_to(shift[None, :k, None], rows_scale.shape).copy()
        if back is not None:
            rows_shift[:] = 0.0
        if c.likelihood == "gaussian":
            rows_scale[..., 1], rows_shift[..., 1] = 1.0, 0.0
        self._head = LeanHead(
            model.head[1], model.head[3], c.hidden_size, rows_scale.ravel(), rows_shift.ravel()
        )
        self._outputs, self._combine = _output_combination(model)
        self._params_shape = (c.horizon, k, c.num_params)
        self._scalar = k == 1 and not layout.covariates  # the common case, in Python floats
        self._shift0, self._inv0 = float(self._shift[0]), float(self._inv[0])
        self._season, self._calendar_on, self._likelihood = m, layout.calendar, c.likelihood
        self.start: pd.Timestamp | None = None
        self._calendar: np.ndarray | None = None
        self._calendar_start: pd.Timestamp | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the series: zero state, empty buffer, step 0."""
        c = self.model.config
        self._state = self._lean.zero_state(extra=c.horizon * c.num_future)
        # The head reads the top layer's [h, 1] in place, then the horizon's future features.
        self._head_in = self._state.tail
        self._future = self._head_in[c.hidden_size + 1 :].reshape(c.horizon, -1)  # (H, Ff)
        x, k, n_cov = self._state.x, self._k, len(self._cov_inv)  # x: the step's features (F,)
        self._x = x
        self._target, self._seasonal, self._cov, self._cal = (
            x[:k],
            x[k : 2 * k],
            x[2 * k : 2 * k + n_cov],
            x[2 * k + n_cov :],
        )
        self._ring = np.zeros((self.layout.season, self._k))  # last `season` targets, raw units
        self._ptr = 0  # the ring's oldest position
        self.steps = 0

    @property
    def state(self) -> State | None:
        """The encoder state in PyTorch's layout (None before the first observation)."""
        return None if self.steps == 0 else self._lean.to_torch(self._state)

    @property
    def buffer(self) -> np.ndarray:
        """(season, K) float32 the last `season` scaled targets, oldest first."""
        raw = np.roll(self._ring, -self._ptr, axis=0)
        return ((raw - self._shift) * self._inv).astype(np.float32)

    def warm_up(self, history: pd.DataFrame) -> StepForecast:
        """Feed a whole history in one fused pass; returns the forecast after its last step."""
        self.reset()
        self.start = history.index[0]
        columns = [*self.layout.targets, *self.layout.covariates]
        return self.update_many(history[columns].to_numpy(dtype=np.float64))

    def update(self, value: float | Any, covariates: Any = None) -> StepForecast:
        """Observe the next step's target(s) (K,) and covariates (C,); forecast what follows.

        One lean step: no module call and no tensor is made.
        """
        steps, m, ring, ptr = self.steps, self._season, self._ring, self._ptr
        if steps == 0:
            ring[:] = value  # before a full season, older values repeat the first one
        if self._scalar and isinstance(value, float | int | np.number):
            x, value, inv = self._x, float(value), self._inv0
            x[0] = (value - self._shift0) * inv
            if steps >= m:
                x[1] = (value - float(ring[ptr, 0])) * inv  # the seasonal difference
            ring[ptr, 0] = value
        else:
            np.multiply(np.subtract(value, self._shift), self._inv, out=self._target)
            if steps >= m:
                np.multiply(np.subtract(value, ring[ptr]), self._inv, out=self._seasonal)
            ring[ptr] = value
            if covariates is not None:
                cov = np.subtract(covariates, self._cov_shift)
                np.multiply(cov, self._cov_inv, out=self._cov)
        self._ptr = (ptr + 1) % m
        if self._calendar_on:
            calendar = self._calendar_rows(steps + 1 + self._h)
            self._cal[:] = calendar[steps]
            self._future[:] = calendar[steps + 1 : steps + 1 + self._h]
        self._lean.step(self._state)  # writes h into the head's input
        self.steps = steps + 1
        return self._forecast(self._head(self._head_in))

    @torch.no_grad()
    def update_many(self, rows: Any) -> StepForecast:
        """Observe T steps (T, K + C) in one fused pass; returns the forecast after the last one."""
        rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        t, k, m = len(rows), self._k, self.layout.season
        shift = np.concatenate([self._shift, self._cov_shift])
        z = ((rows - shift) * np.concatenate([self._inv, self._cov_inv])).astype(np.float32)
        targets = z[:, :k]
        if self.steps == 0:
            self._ring[:] = rows[0, :k]
        history = np.concatenate([np.roll(self._ring, -self._ptr, axis=0), rows[:, :k]])
        seasonal = ((rows[:, :k] - history[:t]) * self._inv).astype(np.float32)
        seasonal[self.steps + np.arange(t) < m] = 0.0
        parts = [targets, seasonal, z[:, k:]]
        if self.layout.calendar:
            parts.append(self._calendar_rows(self.steps + t + self._h)[self.steps : self.steps + t])
        x = torch.from_numpy(np.concatenate(parts, axis=1)).unsqueeze(0)  # (1, T, F)
        _, final = self.model.encoder(x, state=self._lean.to_torch(self._state))
        self._lean.load_torch(self._state, final)
        self._ring, self._ptr = np.ascontiguousarray(history[-m:]), 0
        self.steps += t
        if self.layout.calendar:
            calendar = self._calendar_rows(self.steps + self._h)
            self._future[:] = calendar[self.steps : self.steps + self._h]
        return self._forecast(self._head(self._head_in))

    def _forecast(self, params: np.ndarray) -> StepForecast:
        """StepForecast from the head's outputs (H * K * P,), already in the data's units."""
        params = params.reshape(self._params_shape)  # (H, K, P)
        likelihood = self._likelihood
        if self._base_index is not None:  # the residual's baseline, in the data's units too
            base = self._ring[self._base_index[self._ptr]]  # (H, K)
            if likelihood == "gaussian":
                params[..., 0] += base
            else:
                params += base[..., None]
        if likelihood == "none":
            return StepForecast(params[..., 0], None, None)
        if likelihood == "gaussian":
            mean = params[..., 0]
            half = (np.logaddexp(0.0, params[..., 1]) + 1e-3) * self._combine  # softplus
            half *= self._out_scale
            return StepForecast(mean, mean - half, mean + half)
        params.sort(axis=-1)  # crossing quantiles are swapped back into order
        out = np.matmul(params[:, :, None, :], self._combine)[:, :, 0]  # (H, K, J)
        got = {name: out[..., j] for j, name in enumerate(self._outputs)}
        return StepForecast(got["point"], got.get("lower"), got.get("upper"))

    def _calendar_rows(self, need: int) -> np.ndarray:
        """Calendar features of steps 0.. at least `need`, cached in growing chunks."""
        cached = self._calendar
        if cached is None or len(cached) < need or self._calendar_start != self.start:
            if self.start is None:
                raise ConfigError("calendar features need times: set `start` or use warm_up()")
            size = max(need, 2 * (0 if cached is None else len(cached)), 1024)
            index = pd.date_range(self.start, periods=size, freq=self.layout.freq)
            self._calendar = calendar_features(index, self.layout.freq)
            self._calendar_start = self.start
        assert self._calendar is not None
        return self._calendar

    # --- persistence -----------------------------------------------------------------------

    def exact_state(self) -> dict[str, np.ndarray]:
        """The stream's working set, copied bit for bit: restoring it continues exactly.

        `ring` (season, K) raw targets, `position` [oldest ring slot, steps], and per encoder
        layer the lean step's `layer<i>.vector` ([input, h, 1]) and, for an LSTM, `layer<i>.cell`;
        `future`, the head's horizon features, where the model has them.
        """
        lean = self._state
        arrays = {
            "ring": np.array(self._ring, np.float64),
            "position": np.array([self._ptr, self.steps], np.int64),
        }
        for i, vector in enumerate(lean.vectors):
            arrays[f"layer{i}.vector"] = vector.copy()
        for i, cell in enumerate(lean.cells):
            if cell is not None:
                arrays[f"layer{i}.cell"] = cell.copy()
        future = lean.tail[lean.hidden_size + 1 :]
        if future.size:
            arrays["future"] = future.copy()
        return arrays

    def restore_exact_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Load what `exact_state` returned; names and shapes are checked against this model.

        Raises:
            DataError: an array is missing or has another shape (named).
        """
        lean = self._state
        buffers = [(f"layer{i}.vector", v) for i, v in enumerate(lean.vectors)]
        buffers += [(f"layer{i}.cell", c) for i, c in enumerate(lean.cells) if c is not None]
        future = lean.tail[lean.hidden_size + 1 :]
        if future.size:
            buffers.append(("future", future))
        buffers.append(("ring", self._ring))
        for name, buffer in buffers:
            if name not in arrays or np.shape(arrays[name]) != buffer.shape:
                raise DataError(f"stream state does not fit this model ({name} {buffer.shape})")
        if np.shape(arrays.get("position")) != (2,):
            raise DataError("stream state does not fit this model (position (2,))")
        for name, buffer in buffers[:-1]:
            buffer[...] = arrays[name]  # in place: the lean step holds views into these
        self._ring = np.array(arrays["ring"], np.float64)
        self._ptr, self.steps = (int(v) for v in arrays["position"])

    def state_bytes(self) -> bytes:
        """The stream's state as a safetensors blob (`exact_state`, plus the start time)."""
        tensors = {
            k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.exact_state().items()
        }
        meta = {
            "format": "exact-1",
            "start": "" if self.start is None else self.start.isoformat(),
        }
        return save_tensors(tensors, metadata=meta)

    def load_state_bytes(self, blob: bytes) -> None:
        """Restore what `state_bytes` saved; shapes are checked against this model.

        Blobs of the earlier format (a scaled float32 buffer and the encoder state in PyTorch's
        layout, which continued to ~1e-5 rather than exactly) still load.
        """
        try:
            tensors = load_tensors(blob)
        except Exception as exc:  # safetensors raises its own types for damaged headers
            raise DataError(f"not a stream state blob: {exc}") from exc
        if "ring" in tensors:
            self.restore_exact_state({k: t.numpy() for k, t in tensors.items()})
            return
        shape = self._ring.shape
        if tuple(tensors.get("buffer", torch.empty(0)).shape) != shape:
            raise DataError(f"stream state does not fit this model (buffer {shape})")
        self.reset()
        self._ring = Scaler.inverse(
            tensors["buffer"].double().numpy(), self._shift, self._out_scale
        )
        self.steps = int(tensors["steps"][0])
        parts = [tensors[k] for k in sorted(k for k in tensors if k.startswith("state."))]
        if parts:
            self._lean.load_torch(self._state, tuple(parts) if len(parts) == 2 else parts[0])

    def save(self, path: str | Path) -> None:
        atomic_write_bytes(path, self.state_bytes())

    def load(self, path: str | Path) -> None:
        self.load_state_bytes(Path(path).read_bytes())


def _output_combination(model: Forecaster) -> tuple[list[str], np.ndarray]:
    """How the outputs follow from the raw parameters, with calibration and scale folded in.

    Quantile: (names, (K, Q, J)) weights that turn the sorted quantiles into the point and the
    calibrated 80% interval ends: each is a linear interpolation between quantile levels, and
    the calibrated end point + s * (end - point) is linear too. Gaussian: (names, (K,)) the
    half-width per unit of scale, Z80 * s. None: a point only.
    """
    c = model.config
    s = model.interval_scale.detach().double().cpu().numpy()  # (K,)
    if c.likelihood == "gaussian":
        return ["point", "lower", "upper"], Z80 * s
    if c.likelihood == "none":
        return ["point"], np.ones(1)
    levels = list(c.quantiles)
    weights = {"point": _level_weights(levels, 0.5)}
    if levels[0] <= 0.1:
        weights["lower"] = _level_weights(levels, 0.1)
    if levels[-1] >= 0.9:
        weights["upper"] = _level_weights(levels, 0.9)
    names = list(weights)
    combine = np.zeros((c.num_targets, len(levels), len(names)))
    for k in range(c.num_targets):
        for j, name in enumerate(names):
            w = weights[name]
            if "lower" in weights and "upper" in weights and name != "point":
                w = weights["point"] + s[k] * (w - weights["point"])
            combine[k, :, j] = w
    # Each column's weights sum to 1, so they commute with the (un)scaling of the quantiles.
    return names, combine.astype(np.float32)


def _level_weights(levels: list[float], level: float) -> np.ndarray:
    """(Q,) weights that interpolate the `level` quantile from quantiles at `levels`."""
    w = np.zeros(len(levels))
    if level in levels:
        w[levels.index(level)] = 1.0
        return w
    upper = next((i for i, v in enumerate(levels) if v > level), len(levels) - 1)
    lower = max(upper - 1, 0)
    if upper == lower:
        w[upper] = 1.0
        return w
    frac = (level - levels[lower]) / (levels[upper] - levels[lower])
    w[lower], w[upper] = 1 - frac, frac
    return w
