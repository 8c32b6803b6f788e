"""Series for a forecaster run: load, check, split into parts, scale, stack, and batch.

Parts of a series of N steps (as `TimeSeriesDataset.split`): the first steps train, the next
`validation` share validates (windows whose last target falls there), the last `test` share (or
`test_steps`) is the backtest span.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.config import from_dict
from rnnkit.data import TimeSeriesDataset, load_dataset
from rnnkit.errors import ConfigError
from rnnkit.tasks.forecasting.config import ForecastingRunConfig, SeriesDataConfig
from rnnkit.tasks.forecasting.streams import StreamLoader
from rnnkit.tasks.forecasting.windows import Scaler, SeriesLayout, StackedSeries, WindowLoader
from rnnkit.tasks.spec import HeldOut

#: windows per validation batch (a few MB of inputs even for long windows)
EVAL_BATCH = 1024


def load_series(config: SeriesDataConfig) -> TimeSeriesDataset:
    """The series named by `config.data`, checked to be fit for forecasting."""
    is_path = Path(config.data).expanduser().exists()
    options: dict[str, Any] = {}
    if is_path:
        options = {
            "task": "forecasting",
            "time_column": config.time_column,
            "target_columns": list(config.target_columns),
            "series_column": config.series_column,
            "covariate_columns": [*(config.covariates or ()), *config.future_covariates],
            "fill_missing": config.fill_missing,
        }
    dataset = load_dataset(config.data, **options)
    if not isinstance(dataset, TimeSeriesDataset):
        raise ConfigError(
            f"--data {config.data} is a {dataset.task} dataset; a forecaster needs time series"
        )
    return dataset


def layout_for(dataset: TimeSeriesDataset, config: ForecastingRunConfig) -> SeriesLayout:
    """The feature layout for `dataset`; unknown covariate names are refused here."""
    covariates = dataset.covariates if config.data.covariates is None else config.data.covariates
    future = tuple(config.data.future_covariates)
    past = tuple(c for c in covariates if c not in future)
    missing = sorted(set(past + future) - set(dataset.covariates))
    if missing:
        raise ConfigError(
            f"covariate(s) {missing} are not columns of {config.data.data}; it has "
            f"{dataset.covariates or 'no covariates'}"
        )
    season, _ = config.window.resolved(dataset.freq)
    return SeriesLayout(
        dataset.freq, tuple(dataset.targets), past, future, season, config.window.calendar
    )


@dataclass(frozen=True)
class SplitPoints:
    """Per-series step counts: train, validation, test (test span = the last `test` steps)."""

    train: list[int]
    validation: list[int]
    test: list[int]


def split_points(dataset: TimeSeriesDataset, data: SeriesDataConfig) -> SplitPoints:
    """Where each series' parts end; the same rounding as `TimeSeriesDataset.split`."""
    train, val, test = [], [], []
    for frame in dataset.series.values():
        n = len(frame)
        n_test = data.test_steps if data.test_steps is not None else round(n * data.test)
        n_val = round(n * data.validation)
        if n_test >= n - n_val:
            raise ConfigError(f"test_steps {n_test} leaves nothing to train on ({n} steps)")
        train.append(n - n_val - n_test)
        val.append(n_val)
        test.append(n_test)
    return SplitPoints(train, val, test)


def origins_for(
    stacked: StackedSeries,
    points: SplitPoints,
    part: str,
    *,
    input_length: int,
    horizon: int,
    season: int,
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Global origins (and series positions) whose windows belong to `part`.

    train: every target in the training part. validation: the last target in the validation
    part. test: every target in the test span, every `stride`-th origin. All origins keep
    `input_length` steps (and one season) behind them.
    """
    first, last = [], []
    earliest = max(input_length, season) - 1
    for s in range(len(stacked.ids)):
        n_train, n_val = points.train[s], points.validation[s]
        n = n_train + n_val + points.test[s]
        if part == "train":
            lo, hi = earliest, n_train - horizon - 1
        elif part == "validation":
            lo, hi = max(earliest, n_train - horizon), n_train + n_val - horizon - 1
        else:
            lo, hi = max(earliest, n - points.test[s] - 1), n - horizon - 1
        first.append(lo)
        last.append(hi)
    origins, series = stacked.origins(first, last)
    if part == "test" and stride > 1:
        keep = np.concatenate([np.arange(len(g)) % stride == 0 for g in _groups(series)])
        origins, series = origins[keep], series[keep]
    return origins, series


def _groups(series: np.ndarray) -> list[np.ndarray]:
    return [series[series == s] for s in np.unique(series)] if len(series) else []


@dataclass
class Prepared:
    """A dataset turned into tensors for one run configuration."""

    dataset: TimeSeriesDataset
    layout: SeriesLayout
    scaler: Scaler
    stacked: StackedSeries
    points: SplitPoints
    season: int
    input_length: int


def prepare(
    config: ForecastingRunConfig,
    dataset: TimeSeriesDataset | None = None,
    scaler: Scaler | None = None,
) -> Prepared:
    """Load (unless given), split, fit the scaler (unless given) and stack the series."""
    dataset = dataset or load_series(config.data)
    layout = layout_for(dataset, config)
    season, input_length = config.window.resolved(dataset.freq)
    points = split_points(dataset, config.data)
    if scaler is None:
        train_parts = {
            key: frame.iloc[:n]
            for (key, frame), n in zip(dataset.series.items(), points.train, strict=True)
        }
        columns = [*layout.targets, *layout.covariates, *layout.future_covariates]
        scaler = Scaler.fit(train_parts, columns, config.data.scaling)
    stacked = StackedSeries.build(dataset.series, layout, scaler)
    return Prepared(dataset, layout, scaler, stacked, points, season, input_length)


def make_loader(
    prep: Prepared, config: ForecastingRunConfig, part: str, *, shuffle: bool = False
) -> WindowLoader | StreamLoader:
    """Windows of one part as batches; training windows are cycled up to `min_epoch_windows`."""
    w = config.window
    if config.train_mode == "stateful":
        return _stream_loader(prep, config, part)
    origins, _ = origins_for(
        prep.stacked,
        prep.points,
        part,
        input_length=prep.input_length,
        horizon=w.horizon,
        season=prep.season,
    )
    if len(origins) == 0:
        raise ConfigError(
            f"the {part} part makes no windows of input_length {prep.input_length} + horizon "
            f"{w.horizon} (series lengths {[len(f) for f in prep.dataset.series.values()]}); "
            "shorten --input-length or --horizon"
        )
    if part == "train" and len(origins) < w.min_epoch_windows:
        origins = np.tile(origins, -(-w.min_epoch_windows // len(origins)))
    return WindowLoader(
        prep.stacked,
        origins,
        input_length=prep.input_length,
        horizon=w.horizon,
        baseline=w.baseline,
        season=prep.season,
        # evaluation needs no gradient, so it takes windows in big batches: a validation
        # pass is then one or a few forward calls instead of one per training-sized batch
        batch_size=config.train.batch_size if part == "train" else EVAL_BATCH,
        shuffle=shuffle,
        seed=config.train.seed,
    )


def _stream_loader(prep: Prepared, config: ForecastingRunConfig, part: str) -> StreamLoader:
    """Streams from each series' first step; training scores the training part's origins,
    validation runs on through it (one stream per series) and scores the validation origins."""
    w, points = config.window, prep.points
    runs, scored = [], []
    for n_train, n_val in zip(points.train, points.validation, strict=True):
        last_train = n_train - w.horizon - 1
        if part == "train":
            runs.append((0, last_train))
            scored.append((0, last_train))
        else:
            runs.append((0, n_train + n_val - w.horizon - 1))
            scored.append((last_train + 1, n_train + n_val - w.horizon - 1))
    loader = StreamLoader(
        prep.stacked,
        runs,
        scored,
        window=prep.input_length,
        horizon=w.horizon,
        baseline=w.baseline,
        season=prep.season,
        streams=config.train.batch_size if part == "train" else 1,
        min_epoch_windows=w.min_epoch_windows if part == "train" else 0,
        # as many optimizer steps per epoch as shuffled windows would make
        min_epoch_steps=-(-w.min_epoch_windows // config.train.batch_size)
        if part == "train"
        else 0,
    )
    if len(loader) == 0:
        raise ConfigError(f"the {part} part makes no stream windows; shorten --horizon")
    return loader


def count_origins(loader: WindowLoader | StreamLoader) -> int:
    """Scored origins per epoch."""
    if isinstance(loader, StreamLoader):
        return loader.passes * sum(b.num_tokens for b in loader._pass())
    return len(loader.origins)


def held_out(run_dir: Path, config: dict[str, Any]) -> HeldOut:
    """The run's series (`TimeSeriesDataset`); the backtest scores their last `test_steps`."""
    cfg = from_dict(ForecastingRunConfig, config["config"]).data
    span = f"{cfg.test_steps} steps" if cfg.test_steps else f"{cfg.test:.0%}"
    return HeldOut(load_series(cfg), f"{cfg.data} (the last {span} of each series)")
