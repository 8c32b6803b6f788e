"""Series -> model inputs: per-series scaling, calendar features, and windows kept as tensors.

Every series of a dataset is scaled with its own statistics (fitted on the training part only),
turned into one feature matrix per step, and all series are stacked end to end into one tensor.
A training example is then just an *origin* (an index into that tensor): the model reads the
`input_length` steps ending at the origin and predicts the `horizon` steps after it. Batches are
gathered with one indexing operation, so there is no Python work per example::

    series A: a0 a1 a2 a3 a4 a5 a6 | series B: b0 b1 b2 b3 b4 ...
                  [--- input ---]o [h1 h2]       (input_length 3, horizon 2, origin o = a4)

Features per step (F columns): the scaled targets (K), their seasonal differences
`z_t - z_{t-m}` (K; 0 for the first m steps, which have no season behind them), the scaled
covariates, and calendar features. The calendar and known-future covariates of the horizon
steps are handed to the model's head separately (`future`), since they are known in advance.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rnnkit.errors import ConfigError, DataError

#: the largest magnitude accepted in a training series or a history: float32 (what the model
#: computes in) ends at 3.4e38, and the scaler squares deviations in float64 (1e308), so 1e300
#: would give an infinite std and NaN everywhere.
MAX_ABS_VALUE = 1e30

#: Calendar features each frequency gets: which cycles are meaningful at that resolution.
_CALENDAR: dict[str, tuple[str, ...]] = {
    "min": ("hour", "weekday"),
    "h": ("hour", "weekday", "year"),
    "D": ("weekday", "year"),
    "B": ("weekday", "year"),
    "W": ("year",),
    "MS": ("month",),
    "ME": ("month",),
    "M": ("month",),
    "QS": ("month",),
    "QE": ("month",),
}

#: The usual season of each frequency, used when none is given (yearly data has none).
_SEASONS = {"min": 60, "h": 24, "D": 7, "B": 5, "W": 52, "MS": 12, "ME": 12, "M": 12, "QS": 4}


def _base_alias(freq: str) -> str:
    """Strip multiples and anchors: "15min" -> "min", "W-SUN" -> "W", "QS-JAN" -> "QS"."""
    alias = freq.split("-")[0].lstrip("0123456789")
    return {"H": "h", "T": "min", "A": "YS", "AS": "YS", "Y": "YS", "YE": "YS"}.get(alias, alias)


def check_freq(freq: str, key: str) -> pd.DateOffset:
    """`freq` as a pandas offset; a `ConfigError` naming `key` if pandas does not know it."""
    try:
        return pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError):
        raise ConfigError(
            f"{key} {freq!r} is not a pandas frequency (e.g. 'h', 'D', 'W-SUN', 'MS', 'QS-JAN')"
        ) from None


def default_season(freq: str) -> int:
    """The season length a frequency usually has: 24 for hourly, 7 for daily, 12 monthly, else 1."""
    return _SEASONS.get(_base_alias(freq), 1)


def calendar_names(freq: str) -> tuple[str, ...]:
    """The calendar cycles used for `freq` (each becomes a sin and a cos column)."""
    return _CALENDAR.get(_base_alias(freq), ())


def calendar_features(index: pd.DatetimeIndex, freq: str) -> np.ndarray:
    """Sin/cos encodings of the calendar cycles of `freq` at each time.

    Args:
        index: the times, length N.
        freq: the series frequency; picks the cycles (hour of day, day of week, month, ...).

    Returns:
        (N, 2 * len(calendar_names(freq))) float32 array.
    """
    columns = []
    for name in calendar_names(freq):
        if name == "hour":
            phase = (index.hour + index.minute / 60) / 24
        elif name == "weekday":
            phase = index.day_of_week / 7
        elif name == "month":
            phase = (index.month - 1) / 12
        else:  # "year": position within the year
            phase = (index.day_of_year - 1) / 366
        angle = 2 * np.pi * np.asarray(phase, dtype=np.float64)
        columns += [np.sin(angle), np.cos(angle)]
    if not columns:
        return np.zeros((len(index), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)


def future_index(last: pd.Timestamp, freq: str, steps: int) -> pd.DatetimeIndex:
    """The `steps` times after `last` at frequency `freq`."""
    return pd.date_range(last, periods=steps + 1, freq=freq)[1:]


@dataclass(frozen=True)
class Scaler:
    """Per-series, per-column affine scaling `z = (x - shift) / scale`, fitted on training data.

    Attributes:
        kind: "standard" (mean 0, std 1) or "minmax" (0..1) or "none".
        params: series id -> column -> (shift, scale).
    """

    kind: str
    params: dict[str, dict[str, tuple[float, float]]]

    @staticmethod
    def fit_one(
        frame: pd.DataFrame, columns: Sequence[str], kind: str
    ) -> dict[str, tuple[float, float]]:
        """(shift, scale) per column of one series; a constant column gets scale 1."""
        out = {}
        for column in columns:
            values = frame[column].to_numpy(dtype=np.float64)
            if kind == "standard":
                shift, scale = float(values.mean()), float(values.std())
            elif kind == "minmax":
                shift, scale = float(values.min()), float(values.max() - values.min())
            elif kind == "none":
                shift, scale = 0.0, 1.0
            else:
                raise ConfigError(f"unknown scaling {kind!r}; choose standard, minmax or none")
            out[column] = (shift, scale if scale > 1e-12 else 1.0)
        return out

    @classmethod
    def fit(cls, series: dict[str, pd.DataFrame], columns: Sequence[str], kind: str) -> Scaler:
        """Fit one set of statistics per series on `series` (the training parts)."""
        return cls(kind, {key: cls.fit_one(frame, columns, kind) for key, frame in series.items()})

    def for_series(self, key: str, frame: pd.DataFrame | None = None) -> dict[str, tuple]:
        """The statistics of series `key`; an unseen series is fitted on `frame` (its history)."""
        if key in self.params:
            return self.params[key]
        if frame is None:
            raise DataError(f"series {key!r} was not seen in training; known: {list(self.params)}")
        columns = list(next(iter(self.params.values())))
        return self.fit_one(frame, columns, self.kind)

    @staticmethod
    def shift_scale(
        stats: dict[str, tuple[float, float]], columns: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(shift, scale) float64 arrays (len(columns),) of one series' statistics `stats`."""
        shift = np.array([stats[column][0] for column in columns], dtype=np.float64)
        scale = np.array([stats[column][1] for column in columns], dtype=np.float64)
        return shift, scale

    @staticmethod
    def transform(
        x: np.ndarray, shift: float | np.ndarray, scale: float | np.ndarray
    ) -> np.ndarray:
        """`x` in scaled units: `(x - shift) / scale`; the statistics broadcast against `x`."""
        return (x - shift) / scale

    @staticmethod
    def inverse(z: np.ndarray, shift: float | np.ndarray, scale: float | np.ndarray) -> np.ndarray:
        """`z` back in the data's units: `z * scale + shift`, undoing `transform`.

        The statistics broadcast against `z`: one column's floats, (K,) arrays from
        `shift_scale`, or (N, 1, K) per-origin ones. The result has the dtype NumPy gives the
        expression (a float32 `z` with Python floats stays float32).
        """
        return z * scale + shift

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": {k: dict(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> Scaler:
        """The scaler `to_dict` wrote; a `ConfigError` naming the key of anything unusable.

        Every series needs each column's (shift, scale) as two finite numbers, the scale
        positive: a scale of 0 would turn every forecast into NaN.
        """
        if not isinstance(data, dict) or data.get("kind") not in ("standard", "minmax", "none"):
            kind = data.get("kind") if isinstance(data, dict) else data
            raise ConfigError(f"scaler.kind must be standard, minmax or none, got {kind!r}")
        raw = data.get("params")
        if not isinstance(raw, dict) or not raw:
            raise ConfigError("scaler.params must map each series to its columns' statistics")
        params: dict[str, dict[str, tuple[float, float]]] = {}
        for key, cols in raw.items():
            if not isinstance(cols, dict) or not cols:
                raise ConfigError(f"scaler.params.{key} must map columns to [shift, scale]")
            params[key] = {c: _shift_scale(v, f"scaler.params.{key}.{c}") for c, v in cols.items()}
        return cls(str(data["kind"]), params)


def _shift_scale(value: object, key: str) -> tuple[float, float]:
    """One column's [shift, scale] from a saved scaler, checked."""
    pair = value if isinstance(value, list | tuple) and len(value) == 2 else None
    if pair is None or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in pair
    ):
        raise ConfigError(
            f"{key} must be [shift, scale], two finite numbers, got {str(value)[:80]}"
        )
    shift, scale = float(pair[0]), float(pair[1])
    if not scale > 0:
        raise ConfigError(f"{key}: the scale must be positive, got {scale!r}")
    return shift, scale


@dataclass(frozen=True)
class SeriesLayout:
    """What the features are made of; fixed at training time and saved with the model.

    Attributes:
        freq: the series frequency.
        targets: target columns (K).
        covariates: past covariates, known up to the origin only.
        future_covariates: covariates also known over the horizon (e.g. planned promotions).
        season: seasonal period m for the seasonal differences and the seasonal-naive baseline.
        calendar: add calendar features derived from `freq`.
    """

    freq: str
    targets: tuple[str, ...]
    covariates: tuple[str, ...]
    future_covariates: tuple[str, ...]
    season: int
    calendar: bool

    def __post_init__(self) -> None:
        check_freq(self.freq, "layout.freq")
        if not 1 <= self.season <= 1_000_000:
            raise ConfigError(f"layout.season must be from 1 to 1,000,000 steps, got {self.season}")
        if not self.targets:
            raise ConfigError("layout.targets must name at least one target column")
        columns = [*self.targets, *self.covariates, *self.future_covariates]
        if len(set(columns)) != len(columns):
            raise ConfigError(f"layout names a column twice: {columns}")

    @property
    def num_features(self) -> int:
        """F: features per input step."""
        n_cal = 2 * len(calendar_names(self.freq)) if self.calendar else 0
        k = len(self.targets)
        return 2 * k + len(self.covariates) + len(self.future_covariates) + n_cal

    @property
    def num_future(self) -> int:
        """Ff: features per horizon step handed to the head."""
        n_cal = 2 * len(calendar_names(self.freq)) if self.calendar else 0
        return len(self.future_covariates) + n_cal

    def scaled(self, frame: pd.DataFrame, stats: dict[str, tuple]) -> np.ndarray:
        """(N, K + C + Cf) scaled targets, then past covariates, then future covariates."""
        columns = [*self.targets, *self.covariates, *self.future_covariates]
        out = np.empty((len(frame), len(columns)), dtype=np.float32)
        for i, column in enumerate(columns):
            shift, scale = stats[column]
            out[:, i] = Scaler.transform(frame[column].to_numpy(dtype=np.float64), shift, scale)
        return out

    def step_features(self, scaled: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
        """(N, F) input features of one series from its scaled columns and times."""
        k, m = len(self.targets), self.season
        z = scaled[:, :k]
        seasonal = np.zeros_like(z)
        if m < len(z):
            seasonal[m:] = z[m:] - z[:-m]
        parts = [z, seasonal, scaled[:, k:]]
        if self.calendar:
            parts.append(calendar_features(index, self.freq))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def future_features(self, scaled: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
        """(N, Ff) per-step features a forecast made earlier may know: calendar, future covs."""
        n_future = len(self.future_covariates)
        parts = [scaled[:, scaled.shape[1] - n_future :]] if n_future else []
        if self.calendar:
            parts.append(calendar_features(index, self.freq))
        if not parts:
            return np.zeros((len(index), 0), dtype=np.float32)
        return np.concatenate(parts, axis=1).astype(np.float32)


def seasonal_offsets(horizon: int, season: int) -> np.ndarray:
    """For h = 1..H, how far back the seasonal-naive forecast of step o+h looks from o+h.

    The seasonal-naive forecast of step o+h is the last observed value one or more whole seasons
    earlier: o + h - m * ceil(h / m). Returns (H,) offsets m * ceil(h / m).
    """
    h = np.arange(1, horizon + 1)
    return season * np.ceil(h / season).astype(np.int64)


@dataclass
class StackedSeries:
    """All series end to end as tensors, with the offset where each starts.

    Attributes:
        ids: series ids in order.
        starts: (S + 1,) offset of each series in the stacked tensors, then the total length.
        values: (N, K) scaled targets.
        features: (N, F) input features.
        future: (N, Ff) features known ahead (calendar, future covariates).
        index: the times of each series.
        stats: the scaler statistics each series was scaled with.
    """

    ids: list[str]
    starts: np.ndarray
    values: Tensor
    features: Tensor
    future: Tensor
    index: list[pd.DatetimeIndex]
    stats: list[dict[str, tuple]]

    @classmethod
    def build(
        cls, series: dict[str, pd.DataFrame], layout: SeriesLayout, scaler: Scaler
    ) -> StackedSeries:
        values, features, future, index, stats = [], [], [], [], []
        for key, frame in series.items():
            stats.append(scaler.for_series(key, frame))
            scaled = layout.scaled(frame, stats[-1])
            values.append(scaled[:, : len(layout.targets)])
            features.append(layout.step_features(scaled, frame.index))
            future.append(layout.future_features(scaled, frame.index))
            index.append(frame.index)
        starts = np.concatenate([[0], np.cumsum([len(v) for v in values])]).astype(np.int64)
        return cls(
            list(series),
            starts,
            torch.from_numpy(np.concatenate(values)),
            torch.from_numpy(np.concatenate(features)),
            torch.from_numpy(np.concatenate(future)),
            index,
            stats,
        )

    def origins(self, first: Sequence[int], last: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Global origins for per-series inclusive ranges [first[s], last[s]] of local indices.

        Returns:
            (origins, series position) arrays; empty ranges contribute nothing.
        """
        out, which = [], []
        for s in range(len(self.ids)):
            local = np.arange(max(first[s], 0), last[s] + 1)
            out.append(local + self.starts[s])
            which.append(np.full(len(local), s))
        if not out:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(out).astype(np.int64), np.concatenate(which).astype(np.int64)


@dataclass
class WindowBatch:
    """One batch of windows.

    Attributes:
        x: (B, L, F) input features.
        future: (B, H, Ff) features of the horizon steps.
        target: (B, H, K) scaled targets of the horizon steps (NaN-free).
        base: (B, H, K) the baseline the model predicts a residual over (scaled units).
        origin: (B,) global origin indices (kept on CPU).
    """

    x: Tensor
    future: Tensor
    target: Tensor
    base: Tensor
    origin: Tensor

    def to(self, device: torch.device | str) -> WindowBatch:
        return WindowBatch(
            self.x.to(device),
            self.future.to(device),
            self.target.to(device),
            self.base.to(device),
            self.origin,
        )

    @property
    def num_tokens(self) -> int:
        """Windows in the batch (the engine's throughput unit: samples/s)."""
        return int(self.x.size(0))

    def __len__(self) -> int:
        return int(self.x.size(0))


Baseline = Literal["seasonal_naive", "last", "none"]


class WindowLoader:
    """Batches of windows gathered from a `StackedSeries` by origin; shuffled per epoch by seed.

    The targets of an origin must exist (training, validation, backtests); forecasting past the
    end of the data builds its inputs directly (see `ForecastPredictor`).
    """

    def __init__(
        self,
        stacked: StackedSeries,
        origins: np.ndarray,
        *,
        input_length: int,
        horizon: int,
        baseline: Baseline,
        season: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.stacked = stacked
        self.origins = torch.as_tensor(origins, dtype=torch.long)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.num_replicas, self.rank = 1, 0
        self._start = 0  # the next pass's first batch (start_at)
        self.batch_sampler = self  # the engine calls set_epoch / shard / start_at on it
        self._past = torch.arange(-input_length + 1, 1)  # (L,)
        self._ahead = torch.arange(1, horizon + 1)  # (H,)
        self._base_back = base_offsets(horizon, season, baseline)  # (H,) or None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self, num_replicas: int, rank: int) -> None:
        """Become rank `rank` of `num_replicas` data-parallel processes.

        Each step takes the next `batch_size x num_replicas` origins of the epoch's order (the
        batch one process would take with that batch size) and rank r takes the r-th
        `batch_size` of them. A short last step is filled with origins from the start of the
        order, so every rank makes the same number of non-empty batches.
        """
        if not 0 <= rank < num_replicas:
            raise ConfigError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.num_replicas, self.rank = num_replicas, rank

    def start_at(self, position: int) -> None:
        """Begin the next pass at batch `position` of the epoch's order (mid-epoch resume)."""
        if not 0 <= position <= len(self):
            raise ConfigError(f"position must be in [0, {len(self)}], got {position}")
        self._start = position

    def __len__(self) -> int:
        return math.ceil(len(self.origins) / (self.batch_size * self.num_replicas))

    def __iter__(self) -> Iterator[WindowBatch]:
        order = self.origins
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = order[torch.randperm(len(order), generator=g)]
        step = self.batch_size * self.num_replicas
        if self.num_replicas > 1 and len(order) % step:  # even out the last step's ranks
            fill = step - len(order) % step
            order = torch.cat([order, order.repeat(-(-fill // len(order)))[:fill]])
        start, self._start = self._start, 0
        for i in range(start * step, len(order), step):
            lo = i + self.rank * self.batch_size
            yield self.batch(order[lo : lo + self.batch_size])

    def batch(self, origins: Tensor) -> WindowBatch:
        """The windows ending at `origins` (B,), as one batch."""
        s = self.stacked
        ahead = origins[:, None] + self._ahead  # (B, H)
        return WindowBatch(
            s.features[origins[:, None] + self._past],  # (B, L, F)
            s.future[ahead],  # (B, H, Ff)
            s.values[ahead],  # (B, H, K)
            baseline_values(s.values, origins, self._base_back, len(self._ahead)),
            origins,
        )


# The baselines, in one place: `base_offsets` says how far back each horizon step looks,
# `baseline_steps` which step that is for an origin, `baseline_values` what is there. Training
# windows, stream batches, the backtest's naive rows, the predictor and the streaming
# forecaster's ring buffer all read the baseline through these.


def base_offsets(horizon: int, season: int, baseline: Baseline) -> Tensor | None:
    """(H,) how far back from o + h each horizon step's baseline value lies; None for none."""
    if baseline == "none":
        return None
    if baseline == "last":
        return torch.arange(1, horizon + 1)  # o + h - h = o
    if baseline == "seasonal_naive":
        return torch.from_numpy(seasonal_offsets(horizon, season))
    raise ConfigError(f"unknown baseline {baseline!r}; choose seasonal_naive, last or none")


def baseline_steps(origins: Tensor, back: Tensor, first: Tensor | int | None = None) -> Tensor:
    """(..., H) the step each horizon step's baseline reads for `origins` (...): o + h - back.

    Args:
        origins: origin steps, any shape (a 0-d tensor for one origin).
        back: (H,) offsets from `base_offsets`.
        first: no step earlier than this (e.g. each origin's series start, broadcast against
            the result): before a full season behind it, the baseline repeats that value.
    """
    steps = origins[..., None] + torch.arange(1, len(back) + 1) - back
    return steps if first is None else torch.maximum(steps, torch.as_tensor(first))


def baseline_values(
    values: Tensor,
    origins: Tensor,
    back: Tensor | None,
    horizon: int,
    first: Tensor | int | None = None,
) -> Tensor:
    """(..., H, K) baseline values for the horizons of `origins` (...) from `values` (N, K).

    `back` None (no baseline) gives zeros; `first` as for `baseline_steps`.
    """
    if back is None:
        return values.new_zeros(*origins.shape, horizon, values.size(1))
    return values[baseline_steps(origins, back, first)]
