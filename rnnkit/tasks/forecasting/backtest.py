"""Rolling-origin backtests: the model and the baselines, scored the same way.

Every step of the test span (or every `stride`-th) is a forecast origin: each method sees the
series up to the origin and forecasts the `horizon` steps after it, and every forecast whose
steps all lie in the test span is scored. The model is not refitted per origin (it is conditioned
on the history only), which is how it will be used. The baselines are naive, seasonal naive and,
with the `ets` extra, ETS refitted along the origins (`rnnkit.tasks.forecasting.ets`).

Metrics, per series and target, then averaged over them (so a big series does not drown a small
one; MAE and RMSE are in each series' own units):

- MAE, RMSE.
- sMAPE = 200 * mean(|y - f| / (|y| + |f|)), in percent; a step where both are 0 counts as 0.
- MASE = MAE / (in-sample MAE of the seasonal-naive forecast on the history before the test span;
  Hyndman & Koehler, 2006). Below 1 beats the one-step seasonal naive on the training data.
- coverage of the 80% interval and the mean pinball loss at 0.1/0.5/0.9, where intervals exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rnnkit.models.forecaster import Forecaster
from rnnkit.tasks.forecasting.ets import INSTALL_HINT, EtsError, backtest_ets, load_auto_ets
from rnnkit.tasks.forecasting.windows import (
    Baseline,
    Scaler,
    StackedSeries,
    WindowLoader,
    base_offsets,
    baseline_values,
)

METHODS = ("model", "naive", "seasonal_naive", "ets")

logger = logging.getLogger(__name__)


def mase_scale(history: np.ndarray, season: int) -> np.ndarray:
    """(K,) in-sample MAE of the seasonal-naive forecast on `history` (N, K); m=1 if too short.

    A flat history (scale 0) gets NaN: MASE is undefined there (it would divide by 0), and
    `point_metrics` reports it as None with the reason rather than a misleading 0 or MAE.
    """
    m = season if len(history) > season else 1
    if len(history) <= m:
        return np.ones(history.shape[1])
    scale = np.abs(history[m:] - history[:-m]).mean(axis=0)
    return np.where(scale > 0, scale, np.nan)


#: why a series' MASE (and scaled pinball loss) is None.
MASE_UNDEFINED = (
    "undefined: the history before the test span is flat (its seasonal-naive error is 0, the "
    "MASE denominator)"
)


def point_metrics(
    actual: np.ndarray,
    point: np.ndarray,
    scale: float,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> dict[str, Any]:
    """MAE, RMSE, sMAPE, MASE (and coverage, pinball) of forecasts of one series and target.

    Args:
        actual: (N, H) actual values at each origin's horizon.
        point: (N, H) point forecasts.
        scale: the MASE denominator of this series (see `mase_scale`).
        lower: (N, H) 80% interval lower ends, or None.
        upper: (N, H) upper ends, or None.
    """
    err = point - actual
    denom = np.abs(actual) + np.abs(point)
    ratio = np.divide(np.abs(err), denom, out=np.zeros_like(denom), where=denom > 0)
    mae = float(np.abs(err).mean())
    defined = bool(np.isfinite(scale) and scale > 0)
    out: dict[str, Any] = {
        "mae": mae,
        "rmse": float(np.sqrt((err**2).mean())),
        "smape": float(200 * ratio.mean()),
        "mase": mae / float(scale) if defined else None,
    }
    if lower is not None and upper is not None:
        out["coverage"] = float(((actual >= lower) & (actual <= upper)).mean())
        levels = ((0.1, lower), (0.5, point), (0.9, upper))
        pinball = float(np.mean([_pinball(actual, pred, q) for q, pred in levels]))
        out["pinball"] = pinball / float(scale) if defined else None
    if not defined:
        out["mase_note"] = MASE_UNDEFINED
    return out


def _pinball(actual: np.ndarray, pred: np.ndarray, q: float) -> float:
    diff = actual - pred
    return float(np.maximum(q * diff, (q - 1) * diff).mean())


@dataclass
class BacktestForecasts:
    """Forecasts of every method at every origin, in the data's units.

    Attributes:
        origins: (N,) global origins into the stacked series.
        series: (N,) position of each origin's series.
        actual: (N, H, K) actual values.
        methods: method name -> {"point": (N, H, K), "lower"/"upper": (N, H, K) or absent}.
        notes: method name -> why it is absent (ETS without its extra).
    """

    origins: np.ndarray
    series: np.ndarray
    actual: np.ndarray
    methods: dict[str, dict[str, np.ndarray]]
    notes: dict[str, str] = field(default_factory=dict)


@torch.no_grad()
def backtest_forecasts(
    model: Forecaster,
    stacked: StackedSeries,
    origins: np.ndarray,
    series: np.ndarray,
    *,
    shift: np.ndarray,
    scale: np.ndarray,
    input_length: int,
    horizon: int,
    season: int,
    baseline: Baseline,
    batch_size: int = 512,
    streaming: bool = False,
    ets: bool = False,
) -> BacktestForecasts:
    """The model's and the baselines' forecasts at `origins`, unscaled.

    Args:
        model: the trained forecaster (evaluated in eval mode on its device).
        stacked: the full series (history and test span), scaled.
        origins: (N,) global origins; each needs `input_length` steps before and `horizon` after.
        series: (N,) series position of each origin.
        shift: (S, K) per-series shift of the targets (`Scaler.shift_scale`).
        scale: (S, K) per-series scale; raw values are `Scaler.inverse(scaled, shift, scale)`.
        input_length, horizon, season, baseline: as the model was trained.
        batch_size: windows per forward pass.
        streaming: also score the model run once over each whole series, state carried from
            the first step (what a streaming predictor sees), as method "streaming".
        ets: also forecast with ETS fitted on each series' history up to the origins, as
            method "ets"; where the `ets` extra is missing or a fit fails, `notes["ets"]` says
            why instead.
    """
    device = next(model.parameters()).device
    loader = WindowLoader(
        stacked,
        origins,
        input_length=input_length,
        horizon=horizon,
        baseline=baseline,
        season=season,
        batch_size=batch_size,
    )
    was_training = model.training
    model.eval()
    try:
        points, lowers, uppers = [], [], []
        for batch in loader:
            batch = batch.to(device)
            params, _ = model(batch.x, batch.future, batch.base)
            fc = model.forecast(params)
            points.append(fc.point.cpu())
            if fc.lower is not None and fc.upper is not None:
                lowers.append(fc.lower.cpu())
                uppers.append(fc.upper.cpu())
        stream = _streaming(model, stacked, origins, series, horizon, season, baseline)
    finally:
        model.train(was_training)
    sh, sc = shift[series][:, None, :], scale[series][:, None, :]  # (N, 1, K)

    def raw(t: torch.Tensor | np.ndarray) -> np.ndarray:
        return Scaler.inverse(np.asarray(t, dtype=np.float64), sh, sc)

    idx = torch.as_tensor(origins)
    ahead = idx[:, None] + torch.arange(1, horizon + 1)
    values = stacked.values
    methods: dict[str, dict[str, np.ndarray]] = {"model": {"point": raw(torch.cat(points))}}
    if lowers:
        methods["model"]["lower"] = raw(torch.cat(lowers))
        methods["model"]["upper"] = raw(torch.cat(uppers))
    last = base_offsets(horizon, season, "last")  # the naive forecast is the "last" baseline
    seasonal = base_offsets(horizon, season, "seasonal_naive")
    methods["naive"] = {"point": raw(baseline_values(values, idx, last, horizon))}
    methods["seasonal_naive"] = {"point": raw(baseline_values(values, idx, seasonal, horizon))}
    if streaming and stream is not None:
        methods["streaming"] = {k: raw(v) for k, v in stream.items()}
    notes: dict[str, str] = {}
    if ets:
        point, note = _ets(stacked, origins, series, shift, scale, horizon, season)
        if point is not None:
            methods["ets"] = {"point": point}
        else:
            notes["ets"] = str(note)
            # a missing extra is a choice; a fit that failed is worth a warning
            log = logger.info if INSTALL_HINT in str(note) else logger.warning
            log("ETS baseline %s", note)
    return BacktestForecasts(origins, series, raw(values[ahead]), methods, notes)


def _ets(
    stacked: StackedSeries,
    origins: np.ndarray,
    series: np.ndarray,
    shift: np.ndarray,
    scale: np.ndarray,
    horizon: int,
    season: int,
) -> tuple[np.ndarray | None, str | None]:
    """((N, H, K) ETS forecasts in the data's units, None) or (None, why there are none)."""
    auto_ets, why = load_auto_ets()
    if auto_ets is None:
        return None, why
    ids = np.unique(series)
    rows = [np.flatnonzero(series == s) for s in ids]
    rows = [r[np.argsort(origins[r], kind="stable")] for r in rows]  # ascending per series
    # each series' whole history in its own units: ETS is fitted where the data lives
    values = [
        Scaler.inverse(
            stacked.values[stacked.starts[s] : stacked.starts[s + 1]].numpy().astype(np.float64),
            shift[s],
            scale[s],
        )
        for s in ids
    ]
    local = [origins[r] - stacked.starts[s] for s, r in zip(ids, rows, strict=True)]
    try:
        names = [stacked.ids[s] for s in ids]
        point = backtest_ets(values, local, horizon, season, auto_ets, names)
    except EtsError as exc:
        return None, f"not computed: {exc}"
    out = np.empty_like(point)
    out[np.concatenate(rows)] = point
    return out, None


def _streaming(model, stacked, origins, series, horizon, season, baseline):
    """Forecasts at `origins` from one stateful pass over each whole series (scaled units)."""
    device = next(model.parameters()).device
    back = base_offsets(horizon, season, baseline)
    out: dict[str, list[torch.Tensor]] = {}
    order = []
    for s in np.unique(series):
        start, end = int(stacked.starts[s]), int(stacked.starts[s + 1])
        wanted = torch.as_tensor(origins[series == s])
        steps = torch.arange(start, int(wanted.max()) + 1)  # every step up to the last origin
        ahead = (steps[:, None] + torch.arange(1, horizon + 1)).clamp(max=end - 1)
        # before a full season, the baseline repeats the first value (as streaming does)
        base = baseline_values(stacked.values, steps, back, horizon, first=start)
        params, _ = model(
            stacked.features[steps].unsqueeze(0).to(device),
            stacked.future[ahead].unsqueeze(0).to(device),
            base.unsqueeze(0).to(device),
            all_steps=True,
        )
        fc = model.forecast(params[0, wanted - start])
        for key, value in (("point", fc.point), ("lower", fc.lower), ("upper", fc.upper)):
            if value is not None:
                out.setdefault(key, []).append(value.cpu())
        order.append(np.flatnonzero(series == s))
    if not out:
        return None
    positions = np.argsort(np.concatenate(order))
    return {k: torch.cat(v)[positions] for k, v in out.items()}


def summarize(
    forecasts: BacktestForecasts, mase_scales: np.ndarray, series_ids: list[str], targets: list[str]
) -> dict[str, dict]:
    """Metrics per method, averaged over series and targets, and per series.

    Args:
        forecasts: from `backtest_forecasts`.
        mase_scales: (S, K) MASE denominators.
        series_ids: names of the series positions.
        targets: names of the K targets.

    Returns:
        method -> {mae, rmse, smape, mase[, coverage, pinball], "per_series": {id: {...}}}.
    """
    out: dict[str, dict] = {}
    for method, fc in forecasts.methods.items():
        per_series: dict[str, dict[str, float]] = {}
        for s in np.unique(forecasts.series):
            rows = forecasts.series == s
            for k, target in enumerate(targets):
                name = series_ids[s] if len(targets) == 1 else f"{series_ids[s]}/{target}"
                per_series[name] = point_metrics(
                    forecasts.actual[rows, :, k],
                    fc["point"][rows, :, k],
                    float(mase_scales[s, k]),
                    fc["lower"][rows, :, k] if "lower" in fc else None,
                    fc["upper"][rows, :, k] if "upper" in fc else None,
                )
        keys = [k for k in next(iter(per_series.values())) if k != "mase_note"]
        summary: dict[str, Any] = {}
        for key in keys:  # the mean over the series where the metric is defined
            values = [m[key] for m in per_series.values() if m.get(key) is not None]
            summary[key] = float(np.mean(values)) if values else None
        if summary.get("mase") is None:
            summary["mase_note"] = MASE_UNDEFINED
        out[method] = {**summary, "per_series": per_series}
    return out
