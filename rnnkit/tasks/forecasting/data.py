"""Series for a forecaster run: load, check, split into parts, scale, stack, and batch.

Parts of a series of N steps (as `TimeSeriesDataset.split`): the first steps train, the next
`validation` share validates (windows whose last target falls there), the last `test` share (or
`test_steps`) is the backtest span.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnkit.config import from_dict
from rnnkit.data import TimeSeriesDataset, load_dataset
from rnnkit.data.tables import reopens_config_data
from rnnkit.data.types import contiguous_sizes
from rnnkit.errors import ConfigError, DataError
from rnnkit.io import atomic_open
from rnnkit.tasks.forecasting.config import ForecastingRunConfig, SeriesDataConfig
from rnnkit.tasks.forecasting.streams import StreamLoader
from rnnkit.tasks.forecasting.windows import (
    MAX_ABS_VALUE,
    Scaler,
    SeriesLayout,
    StackedSeries,
    WindowLoader,
)
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
    check_magnitudes(dataset, config.data)
    return dataset


def check_magnitudes(dataset: TimeSeriesDataset, source: str) -> None:
    """Refuse values beyond `MAX_ABS_VALUE`: they would train to NaN metrics and exit 0.

    Raises:
        DataError: naming the file, the series, the time (and its row within the series) and
            the column of the first such value.
    """
    for key, frame in dataset.series.items():
        for column in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                continue
            values = frame[column].to_numpy(dtype=np.float64)
            bad = np.flatnonzero(np.abs(values) > MAX_ABS_VALUE)
            if len(bad):
                row = int(bad[0])
                raise DataError(
                    f"series {key!r} at {frame.index[row]}: {values[row]:g} is beyond "
                    f"+-{MAX_ABS_VALUE:g}, more than a model computing in float32 can scale; "
                    "fix or rescale the data",
                    path=source,
                    row=row,
                    column=str(column),
                )


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
    """Per-series step counts of the parts, in time order: train, validation, test span.

    A series' training part ends at `train[s]` and its validation part at `validation_end[s]`,
    where the test span (its last `test[s]` steps) starts.
    """

    train: list[int]
    validation: list[int]
    test: list[int]

    @property
    def validation_end(self) -> list[int]:
        """Per series, the step after validation: the history before the test span."""
        return [t + v for t, v in zip(self.train, self.validation, strict=True)]


def split_sizes(n: int, data: SeriesDataConfig) -> tuple[int, int, int]:
    """(train, validation, test) steps of an `n`-step series; `data.test_steps` or shares.

    Shares round to the nearest step, as `TimeSeriesDataset.split` rounds them (both cut with
    `rnnkit.data.types.contiguous_sizes`).
    """
    n_train, n_val, n_test = contiguous_sizes(n, data.validation, data.test, data.test_steps)
    if n_train <= 0:
        raise ConfigError(f"test_steps {n_test} leaves nothing to train on ({n} steps)")
    return n_train, n_val, n_test


def split_points(dataset: TimeSeriesDataset, data: SeriesDataConfig) -> SplitPoints:
    """Where each series' parts end (`split_sizes` of each)."""
    sizes = [split_sizes(len(frame), data) for frame in dataset.series.values()]
    train, val, test = (list(part) for part in zip(*sizes, strict=True))
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
    ends = zip(points.train, points.validation_end, points.test, strict=True)
    for train_end, val_end, n_test in ends:
        if part == "train":
            lo, hi = earliest, train_end - horizon - 1
        elif part == "validation":
            lo, hi = max(earliest, train_end - horizon), val_end - horizon - 1
        else:
            lo, hi = max(earliest, val_end - 1), val_end + n_test - horizon - 1
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
    for train_end, val_end in zip(points.train, points.validation_end, strict=True):
        last_train = train_end - w.horizon - 1
        if part == "train":
            runs.append((0, last_train))
            scored.append((0, last_train))
        else:
            runs.append((0, val_end - w.horizon - 1))
            scored.append((last_train + 1, val_end - w.horizon - 1))
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


@reopens_config_data
def held_out(run_dir: Path, config: dict[str, Any]) -> HeldOut:
    """The run's series (`TimeSeriesDataset`); the backtest scores their last `test_steps`."""
    cfg = from_dict(ForecastingRunConfig, config["config"]).data
    span = f"{cfg.test_steps} steps" if cfg.test_steps else f"{cfg.test:.0%}"
    return HeldOut(load_series(cfg), f"{cfg.data} (the last {span} of each series)")


#: the file `write_data` writes into a run's data folder
DATA_FILE = "series.csv"


def write_data(data: Any, folder: Path, config: ForecastingRunConfig) -> ForecastingRunConfig:
    """Series in memory, written as `folder/series.csv` for `rnnkit.train`.

    Args:
        data: one series: a pandas DataFrame indexed by a `DatetimeIndex` (or with a
            `data.time_column` column) holding the target (and covariate) columns, or a pandas
            Series with a `DatetimeIndex`, whose values become the target column; or many:
            `{series id: Series or DataFrame}`, written long with a `data.series_column`
            column ("series" when the config names none).
        folder: where the file goes (the run's `data/` folder).
        config: the run config; `data.time_column` and `data.target_columns` name the columns.

    Returns:
        `config` with `data.data` the file's absolute path (and the series column it wrote).

    Raises:
        ConfigError: data of another type.
        DataError: no series, one without a `DatetimeIndex` (or time column), or without the
            target columns.
    """
    cfg = config.data
    if isinstance(data, Mapping):
        if not data:
            raise DataError("the dict holds no series; expected {series id: pandas Series}")
        column = cfg.series_column or "series"
        parts = []
        for key, value in data.items():
            part = _table(value, cfg, f"series {key!r}")
            if column in part.columns:
                raise DataError(
                    f"series {key!r} has a {column!r} column, the name that tells the series "
                    "apart in the file; rename it or pick another with series_column="
                )
            part.insert(1, column, str(key))
            parts.append(part)
        frame = pd.concat(parts, ignore_index=True)
        cfg = replace(cfg, series_column=column)
    elif isinstance(data, (pd.DataFrame, pd.Series)):
        frame = _table(data, cfg, f"the {type(data).__name__}")
    else:
        got = f"the text {data[:40]!r}" if isinstance(data, str) else type(data).__name__
        raise ConfigError(
            "forecasting data is a registry dataset name, a path, a pandas DataFrame (indexed "
            "by time, or with a time column), a pandas Series with a DatetimeIndex, or "
            f"{{series id: Series}}; got {got}"
        )
    path = Path(folder) / DATA_FILE
    with atomic_open(path, "w") as f:
        frame.to_csv(f, index=False)
    return replace(config, data=replace(cfg, data=str(path.resolve())))


def _table(value: Any, cfg: SeriesDataConfig, what: str) -> pd.DataFrame:
    """One series as rows: the time column first, then the value columns."""
    time = cfg.time_column
    if isinstance(value, pd.Series):
        if len(cfg.target_columns) != 1:
            raise ConfigError(
                f"{what} is one column of values but {len(cfg.target_columns)} targets are "
                f"set ({list(cfg.target_columns)}); give a DataFrame with those columns"
            )
        value = value.to_frame(cfg.target_columns[0])
    if not isinstance(value, pd.DataFrame):
        raise ConfigError(f"{what} is a {type(value).__name__}; expected a pandas Series")
    names = [str(c) for c in value.columns]
    if isinstance(value.index, pd.DatetimeIndex):
        if time in names:
            raise DataError(
                f"{what} has both a DatetimeIndex and a {time!r} column; keep one of them"
            )
        value = value.rename_axis(time).reset_index()
    elif time in names:
        value = value.reset_index(drop=True)
    else:
        raise DataError(
            f"{what} is indexed by {type(value.index).__name__}, not by time; expected a "
            f"pandas DatetimeIndex or a {time!r} column (time_column= names it)"
        )
    missing = [c for c in cfg.target_columns if c not in names]
    if missing:
        raise DataError(
            f"{what} has no column {missing[0]!r} (its columns: {names}); name the column(s) "
            "to forecast with target_column="
        )
    return value
