"""The backtest's ETS baseline: fitted along the origins, scored like the others, optional."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.config import apply_overrides
from rnnkit.models.forecaster import Forecaster
from rnnkit.tasks.forecasting import ets
from rnnkit.tasks.forecasting.cli import format_metrics
from rnnkit.tasks.forecasting.data import prepare
from rnnkit.tasks.forecasting.pipeline import ForecastingRunConfig, run_backtest
from rnnkit.tasks.forecasting.report import backtest_table

AutoETS = pytest.importorskip("statsforecast.models", reason="the ets extra").AutoETS


def seasonal(n: int, season: int = 12) -> np.ndarray:
    """A clean additive seasonal series: level 100, amplitude 10, no noise, no trend."""
    return 100 + 10 * np.sin(2 * np.pi * np.arange(n) / season)


def test_constant_series_is_forecast_as_that_constant() -> None:
    y = np.full(60, 42.0)
    out = ets.ets_forecasts(y, np.array([30, 40, 50]), 6, 12, AutoETS)
    assert out.shape == (3, 6)
    np.testing.assert_allclose(out, 42.0, rtol=1e-6)


def test_clean_seasonal_series_is_forecast_close_to_the_truth() -> None:
    y = seasonal(120)
    origins = np.arange(71, 108)
    # two fits for 37 origins: the origins between re-smooth with the last fit's parameters
    out = ets.ets_forecasts(y, origins, 12, 12, AutoETS, max_fits=2)
    truth = y[origins[:, None] + np.arange(1, 13)]
    assert np.abs(out - truth).max() < 0.2  # of an amplitude of 10


def test_a_season_longer_than_ets_models_is_fitted_without_one() -> None:
    y = seasonal(200, season=30)
    out = ets.ets_forecasts(y, np.array([150]), 5, 30, AutoETS)
    assert out.shape == (1, 5) and np.isfinite(out).all()


def test_fits_per_series_is_capped_in_total_but_never_below_one() -> None:
    assert ets.fits_per_series(1) == ets.MAX_FITS
    assert ets.fits_per_series(50) == ets.MAX_TOTAL_FITS // 50
    assert ets.fits_per_series(10_000) == 1


def test_a_failing_fit_is_an_ets_error_naming_the_origin() -> None:
    class Broken:
        def __init__(self, season_length: int) -> None:
            pass

        def fit(self, y: np.ndarray) -> Broken:
            raise ValueError("tiny datasets")

    with pytest.raises(ets.EtsError, match=r"origin 9 \(10 steps of history\).*tiny datasets"):
        ets.ets_forecasts(np.arange(20.0), np.array([9]), 3, 1, Broken)


def write_two_series(path: Path, days: int = 120) -> Path:
    """Two daily series (long format) with a weekly season and a slow trend."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2022-01-03", periods=days, freq="D")
    rows = [
        {"day": t, "shop": shop, "sales": level * (1 + 0.3 * np.sin(2 * np.pi * i / 7))
         + i * 0.1 + rng.normal(0, 0.5)}
        for shop, level in (("north", 50.0), ("south", 10.0))
        for i, t in enumerate(times)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def backtest_inputs(tmp_path):
    """An untrained tiny forecaster and its prepared series: the backtest needs no training."""
    config = apply_overrides(
        ForecastingRunConfig(),
        [
            f"data.data={write_two_series(tmp_path / 'sales.csv')}",
            "data.time_column=day",
            "data.target_columns=sales",
            "data.series_column=shop",
            "window.horizon=7",
            "window.input_length=14",
            "model.hidden_size=4",
            "model.head_size=8",
        ],
    )
    prep = prepare(config)
    layout = prep.layout
    model_cfg = replace(
        config.model,
        num_features=layout.num_features,
        num_future=layout.num_future,
        num_targets=len(layout.targets),
        horizon=config.window.horizon,
    )
    torch.manual_seed(0)
    return Forecaster(model_cfg), prep, config


def test_ets_is_a_backtest_method_scored_like_the_others(backtest_inputs) -> None:
    model, prep, config = backtest_inputs
    metrics, forecasts = run_backtest(model, prep, config)
    assert forecasts.methods["ets"]["point"].shape == forecasts.actual.shape
    assert {"mae", "rmse", "smape", "mase"} <= set(metrics["ets"])
    assert set(metrics["per_series"]["north"]) >= {"model", "seasonal_naive", "ets"}
    assert "notes" not in metrics
    # the same MASE scaling as every method: MASE / MAE is each series' own denominator
    for name, per in metrics["per_series"].items():
        ratio = per["ets"]["mase"] / per["ets"]["mae"]
        assert ratio == pytest.approx(per["seasonal_naive"]["mase"] / per["seasonal_naive"]["mae"])
        # a weekly season ETS sees in the history beats repeating the last value
        assert per["ets"]["mae"] < per["naive"]["mae"], name
    assert "ets" in format_metrics(metrics)
    assert [row[0] for row in backtest_table(metrics).rows][-1] == "ets"
    without, _ = run_backtest(model, prep, config, ets=False)
    assert "ets" not in without and "notes" not in without


def test_without_the_extra_there_is_no_ets_row_and_no_error(
    backtest_inputs, monkeypatch, caplog
) -> None:
    model, prep, config = backtest_inputs
    monkeypatch.setitem(sys.modules, "statsforecast.models", None)  # import fails
    with caplog.at_level("INFO", logger="rnnkit"):
        metrics, forecasts = run_backtest(model, prep, config)
    assert "ets" not in metrics and "ets" not in forecasts.methods
    assert "ets" not in metrics["per_series"]["north"]
    assert "pip install 'rnnkit[ets]'" in metrics["notes"]["ets"]
    assert "pip install 'rnnkit[ets]'" in caplog.text
    text = format_metrics(metrics)
    assert "ets: not computed: pip install 'rnnkit[ets]'" in text.splitlines()[-1]
    assert {"model", "naive", "seasonal_naive"} <= set(metrics)


def test_a_failed_fit_leaves_the_other_rows_and_says_which_series(
    backtest_inputs, monkeypatch, caplog
) -> None:
    model, prep, config = backtest_inputs

    def fail(*args, **kwargs):
        raise ets.EtsError("ETS failed at origin 3")

    monkeypatch.setattr(ets, "ets_forecasts", fail)
    with caplog.at_level("WARNING", logger="rnnkit"):
        metrics, _ = run_backtest(model, prep, config)
    assert "ets" not in metrics and "seasonal_naive" in metrics
    assert metrics["notes"]["ets"].startswith("not computed: series 'north', target 0: ETS failed")
    assert "ETS failed at origin 3" in caplog.text


def test_a_long_history_gets_fewer_fits_each_reading_all_of_it(monkeypatch) -> None:
    assert ets.fits_for_history(700) == ets.MAX_FITS  # a daily series: ten fits
    assert ets.fits_for_history(17_544) == 1  # two years of hours: one fit on all of them
    assert ets.fits_for_history(5_000) == ets.FIT_STEPS // 5_000
    assert ets.fits_for_history(10**6) == 1  # never below one

    fitted: list[int] = []

    class Recording(AutoETS):
        def fit(self, y, *args, **kwargs):
            fitted.append(len(y))
            return super().fit(y, *args, **kwargs)

    monkeypatch.setattr(ets, "FIT_STEPS", 3_000)  # a small budget, so the test stays quick
    y = seasonal(1_600)
    ets.ets_forecasts(y, np.arange(1_400, 1_560, 10), 12, 12, Recording)
    assert fitted == [1_401, 1_551]  # two fits of the whole history fit in 3,000 steps
