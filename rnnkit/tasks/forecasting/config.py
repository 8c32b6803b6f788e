"""The forecaster's run configuration: data, windows, model and training, each default explained."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rnnkit.config import check_range, check_seeds
from rnnkit.errors import ConfigError
from rnnkit.models.forecaster import MAX_HORIZON, ForecasterConfig
from rnnkit.tasks.forecasting.windows import Baseline, default_season
from rnnkit.training import TrainConfig
from rnnkit.training.distill import DistillConfig

TASK = "forecasting"
#: one line for `--help` and listings.
SUMMARY = "a recurrent time-series forecaster (one or many series, intervals, backtest)"
#: steps of a window, season or hold-out: a year of minutes (525,600) fits.
MAX_STEPS = 1_000_000
#: members of a seed ensemble (each trains in full; the merged model grows with each).
MAX_ENSEMBLE = 64


@dataclass(frozen=True)
class SeriesDataConfig:
    """Where the series come from and how they are split and scaled.

    Attributes:
        data: a registry dataset name or a CSV/TSV/JSONL/Parquet path.
        time_column: the time column of a table.
        target_columns: the columns to forecast (a table; registry datasets name their own).
        series_column: the column naming each series in a long table; None for one series.
        covariates: past covariates (known up to the forecast origin); None takes a registry
            dataset's own covariates, and none for a table.
        future_covariates: covariates also known over the horizon (prices, holidays).
        fill_missing: "error" (the default: a gap or a NaN is more often a mistake than an
            intention), "interpolate" or "ffill".
        validation: share of each series that picks the best epoch.
        test: share of each series held out for the backtest (the issue's protocol: 20%).
        test_steps: hold out exactly this many steps instead of `test` (e.g. 8760 hours).
        scaling: per-series "standard" (robust default), "minmax" or "none"; fitted on the
            training part only, saved with the model.
    """

    data: str = "airline-passengers"
    time_column: str = "time"
    target_columns: tuple[str, ...] = ("value",)
    series_column: str | None = None
    covariates: tuple[str, ...] | None = None
    future_covariates: tuple[str, ...] = ()
    fill_missing: Literal["error", "interpolate", "ffill"] = "error"
    validation: float = 0.1
    test: float = 0.2
    test_steps: int | None = None
    scaling: Literal["standard", "minmax", "none"] = "standard"

    def __post_init__(self) -> None:
        for name in ("validation", "test"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"data.{name} must be a share in [0, 1), got {value!r}")
        check_range("data.test_steps", self.test_steps, 1, MAX_STEPS, "steps", optional=True)


@dataclass(frozen=True)
class WindowConfig:
    """How series become examples.

    Attributes:
        horizon: steps forecast at once; one season is the usual protocol.
        input_length: steps the model reads; None means 4 seasons (and at least 2 horizons):
            enough to see the seasonal shape and its trend, short enough for small series.
        season: the seasonal period m (seasonal differences, baseline, MASE); None infers it
            from the frequency (24 hourly, 7 daily, 12 monthly, 1 yearly).
        calendar: add hour/weekday/month features derived from the frequency.
        baseline: what the model predicts a residual over: "seasonal_naive" (so an untrained
            model already matches it), "last" value, or "none".
        min_epoch_windows: a small series is cycled so an epoch holds at least this many
            windows; otherwise a 144-point series makes one optimizer step per epoch.
        backtest_stride: steps between backtest origins; 1 scores every origin.
    """

    horizon: int = 12
    input_length: int | None = None
    season: int | None = None
    calendar: bool = True
    baseline: Baseline = "seasonal_naive"
    min_epoch_windows: int = 2048
    backtest_stride: int = 1

    def __post_init__(self) -> None:
        # `season 0` used to fall back silently to the frequency's season; now it is refused.
        check_range("window.horizon", self.horizon, 1, MAX_HORIZON, "a year of hourly steps")
        check_range("window.input_length", self.input_length, 1, MAX_STEPS, "steps", True)
        check_range("window.season", self.season, 1, MAX_STEPS, "steps", optional=True)
        check_range("window.min_epoch_windows", self.min_epoch_windows, 1, 10**8, "windows")
        check_range("window.backtest_stride", self.backtest_stride, 1, MAX_STEPS, "steps")

    def resolved(self, freq: str) -> tuple[int, int]:
        """(season, input_length) for data of frequency `freq`."""
        season = self.season or default_season(freq)
        input_length = self.input_length or max(4 * season, 2 * self.horizon)
        for name, value in (("horizon", self.horizon), ("input_length", input_length)):
            if value < 1:
                raise ConfigError(f"window.{name} must be at least 1, got {value}")
        if season < 1:
            raise ConfigError(f"window.season must be at least 1, got {season}")
        return season, input_length


def _train_defaults() -> TrainConfig:
    # Forecasting models are small: fp32 is as fast as bf16 here and keeps intervals precise;
    # more epochs with patience because each epoch is short.
    return TrainConfig(epochs=30, batch_size=64, lr=3e-3, precision="fp32", patience=8)


@dataclass(frozen=True)
class ForecastingRunConfig:
    """Everything `rnnkit train forecaster` needs; config files and --set map onto this."""

    data: SeriesDataConfig = field(default_factory=SeriesDataConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    model: ForecasterConfig = field(default_factory=ForecasterConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    distill: DistillConfig = field(default_factory=DistillConfig)
    backtest: bool = True  # run the rolling-origin backtest after training
    # "windows": shuffled windows, each from a zero state (what the backtest's `model` row
    # does). "stateful": each series' training part in order as a few long streams, the state
    # carried (detached) from window to window and the head scored after every step (what a
    # `StreamingForecaster`, the backtest's `streaming` row, does).
    train_mode: Literal["windows", "stateful"] = "windows"
    # Members of a seed ensemble, merged into one wider model (`rnnkit.tasks.forecasting.ensemble`).
    # None: 5 when the training part makes fewer windows than `window.min_epoch_windows` (a
    # short series: its seed-to-seed spread is widest and each member is cheap), else 1.
    ensemble: int | None = None

    def __post_init__(self) -> None:
        # each member trains in full; past a few dozen seeds the spread stops narrowing
        check_range("ensemble", self.ensemble, 1, MAX_ENSEMBLE, "seed ensembles", optional=True)
        check_seeds(self)
