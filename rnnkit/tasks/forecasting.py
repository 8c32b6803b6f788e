"""Time-series forecasting: series in, a trained forecaster run folder and a backtest out.

`train_forecaster(config, run_dir)` is the pipeline the CLI and Python share: load series ->
contiguous train/validation/test parts -> per-series scaler fitted on train -> stacked feature
tensors -> windows by origin -> `Forecaster` -> `fit` -> rolling-origin backtest over the test
span against naive and seasonal-naive -> plots and report. `ForecastPredictor`
(`rnnkit.tasks.forecast_predictor`) is what `rnnkit.load()` returns for such a run.

Parts of a series of N steps (as `TimeSeriesDataset.split`): the first steps train, the next
`validation` share validates (windows whose last target falls there), the last `test` share (or
`test_steps`) is the backtest span.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from rnnkit import runs
from rnnkit.config import from_dict, to_dict
from rnnkit.data import TimeSeriesDataset, load_dataset
from rnnkit.data.windows import (
    Baseline,
    Scaler,
    SeriesLayout,
    StackedSeries,
    WindowLoader,
    default_season,
)
from rnnkit.errors import ConfigError
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.tasks.backtest import backtest_forecasts, mase_scale, summarize
from rnnkit.training import Callback, EvalContext, FitResult, TrainConfig, fit
from rnnkit.training.precision import eval_mode

logger = logging.getLogger(__name__)

TASK = "forecasting"


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
class ForecasterRunConfig:
    """Everything `rnnkit train forecaster` needs; config files and --set map onto this."""

    data: SeriesDataConfig = field(default_factory=SeriesDataConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    model: ForecasterConfig = field(default_factory=ForecasterConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    backtest: bool = True  # run the rolling-origin backtest after training


class ForecastingTask:
    """The model's own loss (pinball / Gaussian NLL / L1) on windows; validation loss monitored."""

    monitor = "loss"
    monitor_mode: Literal["max", "min"] = "min"

    def compute_loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        params, _ = model(batch.x, batch.future, batch.base)
        return model.loss(params.float(), batch.target)

    def evaluate(self, model: torch.nn.Module, loader: Any, ctx: EvalContext) -> dict[str, float]:
        total, mae, count = 0.0, 0.0, 0
        with eval_mode(model):
            for batch in loader:
                batch = batch.to(ctx.device)
                with ctx.precision.autocast():
                    params, _ = model(batch.x, batch.future, batch.base)
                params = params.float()
                n = len(batch)
                total += float(model.loss(params, batch.target)) * n
                mae += float((model.forecast(params).point - batch.target).abs().mean()) * n
                count += n
        return {"loss": total / max(count, 1), "mae_scaled": mae / max(count, 1)}


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


def layout_for(dataset: TimeSeriesDataset, config: ForecasterRunConfig) -> SeriesLayout:
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
    config: ForecasterRunConfig,
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
    prep: Prepared, config: ForecasterRunConfig, part: str, *, shuffle: bool = False
) -> WindowLoader:
    """Windows of one part as batches; training windows are cycled up to `min_epoch_windows`."""
    w = config.window
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
        batch_size=config.train.batch_size,
        shuffle=shuffle,
        seed=config.train.seed,
    )


def run_backtest(
    model: Forecaster, prep: Prepared, config: ForecasterRunConfig
) -> tuple[dict[str, Any], Any]:
    """The rolling-origin backtest over the test span: (metrics, forecasts)."""
    w = config.window
    origins, series = origins_for(
        prep.stacked,
        prep.points,
        "test",
        input_length=prep.input_length,
        horizon=w.horizon,
        season=prep.season,
        stride=w.backtest_stride,
    )
    if len(origins) == 0:
        raise ConfigError(f"the test span is shorter than the horizon {w.horizon}")
    targets = list(prep.layout.targets)
    stats = prep.stacked.stats
    shift = np.array([[st[t][0] for t in targets] for st in stats])
    scale = np.array([[st[t][1] for t in targets] for st in stats])
    scales = np.stack(
        [
            mase_scale(frame[targets].to_numpy()[: n_tr + n_va], prep.season)
            for frame, n_tr, n_va in zip(
                prep.dataset.series.values(), prep.points.train, prep.points.validation, strict=True
            )
        ]
    )
    forecasts = backtest_forecasts(
        model,
        prep.stacked,
        origins,
        series,
        shift=shift,
        scale=scale,
        input_length=prep.input_length,
        horizon=w.horizon,
        season=prep.season,
        baseline=w.baseline,
        streaming=True,
    )
    methods = summarize(forecasts, scales, prep.stacked.ids, targets)
    per_series = {
        name: {m: methods[m]["per_series"][name] for m in methods}
        for name in methods["model"]["per_series"]
    }
    result: dict[str, Any] = {
        "data": config.data.data,
        "horizon": w.horizon,
        "season": prep.season,
        "input_length": prep.input_length,
        "origins": len(origins),
        "series": len(prep.stacked.ids),
    }
    for method, values in methods.items():
        result[method] = {k: v for k, v in values.items() if k != "per_series"}
    result["per_series"] = per_series
    return result, forecasts


@dataclass
class ForecasterRun:
    """What `train_forecaster` returns."""

    run_dir: Path
    fit: FitResult
    backtest: dict[str, Any] | None
    seconds: float
    predictor: Any  # ForecastPredictor


def train_forecaster(
    config: ForecasterRunConfig,
    run_dir: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    dataset: TimeSeriesDataset | None = None,
) -> ForecasterRun:
    """Train, backtest and save a forecaster; see the module docstring for the steps.

    Args:
        config: the run configuration.
        run_dir: the run folder to write.
        callbacks: training callbacks (progress bars).
        resume: continue the run in `run_dir` from its last checkpoint.
        dataset: series to use instead of loading `config.data.data` (Python use).
    """
    from rnnkit.tasks.forecast_outputs import write_outputs
    from rnnkit.tasks.forecast_predictor import ForecastPredictor

    started = time.perf_counter()
    run_dir = Path(run_dir)
    if resume:
        if runs.read_config(run_dir)["config"] != to_dict(config):
            raise ConfigError(
                f"--resume: the options differ from those in {run_dir / runs.CONFIG_FILE}; "
                "resume with the same options"
            )
    elif (run_dir / runs.CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --out or pass --resume")
    prep = prepare(config, dataset)
    layout = prep.layout
    model_cfg = replace(
        config.model,
        num_features=layout.num_features,
        num_future=layout.num_future,
        num_targets=len(layout.targets),
        horizon=config.window.horizon,
    )
    train_loader = make_loader(prep, config, "train", shuffle=True)
    val_loader = make_loader(prep, config, "validation")
    logger.info(
        "data: %d series at %s, season %d, input %d -> horizon %d; %d train windows/epoch, "
        "%d validation",
        len(prep.stacked.ids),
        prep.dataset.freq,
        prep.season,
        prep.input_length,
        config.window.horizon,
        len(train_loader.origins),
        len(val_loader.origins),
    )
    if not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        runs.write_config(
            run_dir,
            TASK,
            {
                "config": to_dict(config),
                "model": to_dict(model_cfg),
                "layout": to_dict(layout),
                "scaler": prep.scaler.to_dict(),
                "input_length": prep.input_length,
                "series": prep.stacked.ids,
                "data_source": prep.dataset.source or config.data.data,
            },
        )
    torch.manual_seed(config.train.seed)
    model = Forecaster(model_cfg)
    result = fit(
        model,
        ForecastingTask(),
        train_loader,
        val_loader,
        config.train,
        run_dir=run_dir,
        callbacks=callbacks,
        resume=resume,
    )
    interval = _calibrate(model, val_loader)
    if interval is not None:
        from rnnkit.training.checkpoint import save_weights

        logger.info("80%% interval widened x%s on validation windows", interval)
        save_weights(model, run_dir / runs.WEIGHTS_FILE)
    backtest, forecasts = (None, None)
    if config.backtest:
        backtest, forecasts = run_backtest(model, prep, config)
    seconds = time.perf_counter() - started
    write_outputs(run_dir, config, model_cfg, prep, result, backtest, forecasts, seconds)
    predictor = ForecastPredictor(model, layout, prep.scaler, prep.input_length, config.window)
    return ForecasterRun(run_dir, result, backtest, seconds, predictor)


@torch.no_grad()
def _calibrate(model: Forecaster, loader: WindowLoader) -> list[float] | None:
    """Fit the model's interval widening on the validation windows (None: no intervals)."""
    if model.config.likelihood == "none":
        return None
    device = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {"point": [], "lower": [], "upper": [], "target": []}
    with eval_mode(model):
        for batch in loader:
            batch = batch.to(device)
            params, _ = model(batch.x, batch.future, batch.base)
            fc = model.forecast(params, calibrated=False)
            for key, value in (("point", fc.point), ("lower", fc.lower), ("upper", fc.upper)):
                parts[key].append(value)
            parts["target"].append(batch.target)
    joined = {k: torch.cat(v) for k, v in parts.items()}
    scale = model.calibrate(joined["point"], joined["lower"], joined["upper"], joined["target"])
    return [round(float(v), 3) for v in scale]


def evaluate_run(run_dir: str | Path, data: str | None = None, **options: Any) -> dict[str, Any]:
    """The rolling-origin backtest of a saved forecaster on its test span (or on `data`'s).

    Args:
        run_dir: the run folder.
        data: a registry name or path to backtest on instead; it is split like the training
            data and scaled with the saved statistics (unseen series: their own history).
        **options: `stride` (steps between origins) and data-config overrides such as
            `test_steps`.

    Returns:
        {"data", "horizon", "origins", "model", "naive", "seasonal_naive", "streaming",
        "per_series"}; each method holds mae, rmse, smape, mase (and coverage, pinball).
    """
    from rnnkit.tasks.forecast_predictor import ForecastPredictor

    config = runs.read_config(run_dir)
    run_cfg = from_dict(ForecasterRunConfig, config["config"])
    stride = options.pop("stride", None)
    data_cfg = replace(run_cfg.data, **({"data": data} if data else {}), **options)
    window = replace(run_cfg.window, backtest_stride=stride or run_cfg.window.backtest_stride)
    run_cfg = replace(run_cfg, data=data_cfg, window=window)
    predictor = ForecastPredictor.from_run(Path(run_dir), config)
    prep = prepare(run_cfg, scaler=predictor.scaler)
    metrics, _ = run_backtest(predictor.model, prep, run_cfg)
    return metrics


def _load(run_dir: Path, config: dict[str, Any], device: str = "cpu"):
    from rnnkit.tasks.forecast_predictor import ForecastPredictor

    return ForecastPredictor.from_run(run_dir, config, device)


runs.register_task(TASK, load=_load, evaluate=evaluate_run)
