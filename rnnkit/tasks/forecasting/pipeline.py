"""Time-series forecasting: series in, a trained forecaster run folder and a backtest out.

`train_forecaster(config, run_dir)` is the pipeline the CLI and Python share: load series ->
contiguous train/validation/test parts -> per-series scaler fitted on train -> stacked feature
tensors -> windows by origin -> `Forecaster` -> `fit` (for a short series, several seeds merged
into one model: `rnnkit.tasks.forecasting.ensemble`) -> rolling-origin backtest over the test
span against naive, seasonal-naive and ETS (the `ets` extra) -> plots and report.
`ForecastPredictor` (`rnnkit.tasks.forecasting.predictor`) is what `rnnkit.load()` returns for
such a run.

Configuration lives in `config`, data preparation, split points and loaders in `data`, the
training task in `objective` (all under `rnnkit.tasks.forecasting`); this module is the pipeline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit import run_folder
from rnnkit.config import from_dict, to_dict
from rnnkit.data import TimeSeriesDataset
from rnnkit.errors import ConfigError
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.run_folder import Files
from rnnkit.tasks.forecasting.backtest import backtest_forecasts, mase_scale, summarize
from rnnkit.tasks.forecasting.config import (
    TASK,
    ForecastingRunConfig,
    SeriesDataConfig,
    WindowConfig,
)
from rnnkit.tasks.forecasting.data import (
    Prepared,
    count_origins,
    load_series,
    make_loader,
    origins_for,
    prepare,
)
from rnnkit.tasks.forecasting.ensemble import member_count, merged_config
from rnnkit.tasks.forecasting.objective import (
    ForecastingObjective,
    calibrate_intervals,
    train_members,
)
from rnnkit.tasks.forecasting.predictor import ForecastPredictor
from rnnkit.tasks.forecasting.windows import Scaler
from rnnkit.training import Callback, FitResult, fit
from rnnkit.training.distill import Teacher, require_live
from rnnkit.training.distributed import is_main_process

__all__ = [
    "ForecastingRunConfig",
    "SeriesDataConfig",
    "WindowConfig",
    "evaluate_run",
    "load_series",
    "prepare",
    "train_forecaster",
]

logger = logging.getLogger(__name__)


def run_backtest(
    model: Forecaster, prep: Prepared, config: ForecastingRunConfig, *, ets: bool = True
) -> tuple[dict[str, Any], Any]:
    """The rolling-origin backtest over the test span: (metrics, forecasts).

    `ets` adds the ETS baseline (the `ets` extra; seconds per series): off where only the
    model's numbers are read. Where it is on but cannot run, `notes["ets"]` says why.
    """
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
    pairs = [Scaler.shift_scale(stats, targets) for stats in prep.stacked.stats]
    shift, scale = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])  # (S, K)
    histories = zip(prep.dataset.series.values(), prep.points.validation_end, strict=True)
    scales = np.stack(  # (S, K) MASE denominators, on each series' history before the test span
        [mase_scale(frame[targets].to_numpy()[:end], prep.season) for frame, end in histories]
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
        ets=ets,
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
    if forecasts.notes:
        result["notes"] = dict(forecasts.notes)
    return result, forecasts


@dataclass
class ForecasterRun:
    """What `train_forecaster` returns."""

    run_dir: Path
    fit: FitResult
    backtest: dict[str, Any] | None
    seconds: float
    predictor: Any  # ForecastPredictor


@run_folder.claims_run_dir
def train_forecaster(
    config: ForecastingRunConfig,
    run_dir: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    dataset: TimeSeriesDataset | None = None,
) -> ForecasterRun | None:
    """Train, backtest and save a forecaster; see the module docstring for the steps.

    Under torchrun, every rank trains and rank 0 alone backtests and writes; the other ranks
    return None.

    Args:
        config: the run configuration.
        run_dir: the run folder to write.
        callbacks: training callbacks (progress bars).
        resume: continue the run in `run_dir` from its last checkpoint.
        dataset: series to use instead of loading `config.data.data` (Python use).
    """
    from rnnkit.tasks.forecasting.report import write_outputs

    started = time.perf_counter()
    run_dir = Path(run_dir)
    resume = run_folder.check_run_dir(run_dir, to_dict(config), resume)
    teacher = _teacher(config)
    # a student sees the series scaled exactly as its teacher did: the soft targets live there
    prep = prepare(config, dataset, scaler=teacher.scaler if teacher is not None else None)
    layout = prep.layout
    model_cfg = replace(
        config.model,
        num_features=layout.num_features,
        num_future=layout.num_future,
        num_targets=len(layout.targets),
        horizon=config.window.horizon,
    )
    if teacher is not None:
        _check_teacher(teacher, layout, prep.input_length, model_cfg, config.distill.teacher)
    w = config.window
    train_windows = len(
        origins_for(
            prep.stacked,
            prep.points,
            "train",
            input_length=prep.input_length,
            horizon=w.horizon,
            season=prep.season,
        )[0]
    )
    members = member_count(train_windows, w.min_epoch_windows, config.ensemble)
    # the saved model is the members merged side by side: k times as wide (see ensemble.py)
    saved_cfg = merged_config(model_cfg, members)
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
        count_origins(train_loader),
        count_origins(val_loader),
    )
    if not resume and is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        run_folder.write_config(
            run_dir,
            TASK,
            {
                "config": to_dict(config),
                "model": to_dict(saved_cfg),
                "ensemble": {"members": members, "member": to_dict(model_cfg)},
                "layout": to_dict(layout),
                "scaler": prep.scaler.to_dict(),
                "input_length": prep.input_length,
                "series": prep.stacked.ids,
                "data_source": prep.dataset.source or config.data.data,
            },
        )
    if members > 1:
        logger.info(
            "training an ensemble of %d members (%d training windows)", members, train_windows
        )

        def member_loader(seed: int):
            return make_loader(
                prep, replace(config, train=replace(config.train, seed=seed)), "train", shuffle=True
            )

        model, result = train_members(
            model_cfg,
            members,
            member_loader,
            val_loader,
            config.train,
            run_dir,
            callbacks=callbacks,
            resume=resume,
            teacher=Teacher(teacher.model, config.distill) if teacher is not None else None,
        )
    else:
        torch.manual_seed(config.train.seed)
        model = Forecaster(model_cfg)
        result = fit(
            model,
            ForecastingObjective(
                Teacher(teacher.model, config.distill) if teacher is not None else None
            ),
            train_loader,
            val_loader,
            config.train,
            run_dir=run_dir,
            callbacks=callbacks,
            resume=resume,
        )
    if not is_main_process():
        return None  # rank 0 calibrates, backtests and writes the outputs
    interval = calibrate_intervals(model, val_loader)
    if interval is not None:
        logger.info("80%% interval widened x%s on validation windows", interval)
    if interval is not None or members > 1:
        from rnnkit.training.checkpoint import save_weights

        save_weights(model, run_dir / Files.WEIGHTS)
    backtest, forecasts = (None, None)
    if config.backtest:
        backtest, forecasts = run_backtest(model, prep, config)
    seconds = time.perf_counter() - started
    write_outputs(
        run_dir, config, model_cfg, prep, result, backtest, forecasts, seconds, members=members
    )
    predictor = ForecastPredictor(model, layout, prep.scaler, prep.input_length, config.window)
    return ForecasterRun(run_dir, result, backtest, seconds, predictor)


def _teacher(config: ForecastingRunConfig) -> ForecastPredictor | None:
    """The forecaster named by `distill.teacher`, on the CPU (None when not distilling)."""
    if not config.distill.teacher:
        return None
    require_live(config.distill, "forecaster")
    path = Path(config.distill.teacher)
    return ForecastPredictor.from_run(path, run_folder.config_for_task(path, TASK, "distill"))


def _check_teacher(
    teacher: ForecastPredictor,
    layout: Any,
    input_length: int,
    student: ForecasterConfig,
    where: str,
) -> None:
    """Refuse a teacher whose inputs or outputs differ from the student's (named)."""
    t = teacher.model.config
    differences = [
        (what, theirs, ours)
        for what, theirs, ours in (
            ("series layout", to_dict(teacher.layout), to_dict(layout)),
            ("input length", teacher.input_length, input_length),
            ("horizon", t.horizon, student.horizon),
            ("likelihood", t.likelihood, student.likelihood),
            ("quantiles", list(t.quantiles), list(student.quantiles)),
        )
        if theirs != ours
    ]
    if differences:
        what, theirs, ours = differences[0]
        raise ConfigError(
            f"the teacher {where} has {what} {theirs}, the student {ours}: a student keeps its "
            "teacher's data, window, horizon and likelihood (change only the model's size)"
        )


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
        "ets" (with the `ets` extra), "per_series"[, "notes"]}; each method holds mae, rmse,
        smape, mase (and coverage, pinball); "notes" says why a method is absent.
    """
    config = run_folder.read_config_file(run_dir)
    run_cfg = from_dict(ForecastingRunConfig, config["config"])
    stride = options.pop("stride", None)
    data_cfg = replace(run_cfg.data, **({"data": data} if data else {}), **options)
    window = replace(run_cfg.window, backtest_stride=stride or run_cfg.window.backtest_stride)
    run_cfg = replace(run_cfg, data=data_cfg, window=window)
    predictor = ForecastPredictor.from_run(Path(run_dir), config)
    prep = prepare(run_cfg, scaler=predictor.scaler)
    metrics, _ = run_backtest(predictor.model, prep, run_cfg)
    return metrics


def _load(run_dir: Path, config: dict[str, Any], device: str = "cpu"):
    return ForecastPredictor.from_run(run_dir, config, device)
