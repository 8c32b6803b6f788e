"""The backtest's ETS baseline: exponential smoothing, refitted along the rolling origins.

Needs the `ets` extra (`pip install 'rnnkit[ets]'`): statsforecast's `AutoETS`, a port of R's
`forecast::ets` (Hyndman, Koehler, Snyder & Grose, 2002; Hyndman & Khandakar, 2008). It picks the
error, trend and season forms (none, additive, multiplicative, damped) by AICc and fits them by
maximum likelihood: the statistical method practitioners compare against, and one that did well in
the M3 and M4 competitions. Without the extra the backtest has no `ets` row, only a note.

Why statsforecast 2.0.x and not 2.1: statsforecast 2.1 requires pandas<3, and so does fugue
(installed by statsforecast for distributed runs) from 0.9.5, while rnnkit runs on pandas 3.
statsforecast 2.0.3 with fugue 0.9.4 declares no such cap and runs on pandas 3 (checked on 3.1.1
with numpy 2.4), so the extra pins `statsforecast>=2.0.3,<2.1` and `fugue<0.9.5`.

Time stays bounded however many origins a backtest has. Each series (and target) is fitted at
no more than `MAX_FITS` evenly spaced origins (fewer when there are many series, see
`fits_per_series`), each fit reading at most the last `MAX_FIT_STEPS` steps, and a series is
fitted over at most `FIT_STEPS` steps in all: a long history gets fewer fits, each reading all
of it. An origin between two fits keeps the last fit's parameters and initial states and re-runs
the smoothing over the history up to itself (statsforecast's `forward`, well under a
millisecond on a short series), so every origin still forecasts from everything it has seen, as
a refitted model would, only with older parameters.

Why long histories over many fits: on electricity (hourly, 17,544 steps before the test year,
8,737 origins) one fit on the whole history scores MASE 0.873 (what statsforecast's own AutoETS
scores in the peer table), ten fits on the last 4,000 steps 0.915, ten on the last 1,000 steps
1.028 and one on the last 1,000 1.203 (docs/benchmarks.md, "ETS beside the naive baselines").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: what the backtest says where the extra is missing.
INSTALL_HINT = "pip install 'rnnkit[ets]' adds the ETS baseline (statsforecast's AutoETS)"
#: fits per series and target at most: an AutoETS fit is ~0.1 s on 600 daily points and
#: ~0.6 s on 1,000 hourly ones, and parameters move little between neighbouring origins.
MAX_FITS = 10
#: fits over all series and targets at most (each series still gets one).
MAX_TOTAL_FITS = 100
#: history a fit reads at most: two years of hourly data (a fit on 17,544 hourly points takes
#: ~15 s and forecasts better than ten on the last 1,000; see the module docstring).
MAX_FIT_STEPS = 20_000
#: steps fitted over all of one series' fits at most: short series get `MAX_FITS` fits, a long
#: one fewer, each reading its whole history (`fits_for_history`).
FIT_STEPS = 20_000
#: the longest season ETS models; statsforecast keeps at most 24 seasonal states (as R's
#: `ets`, which refuses longer ones), so a longer season is fitted without seasonality.
MAX_SEASON = 24


class EtsError(RuntimeError):
    """ETS could not be fitted to a series; the backtest then goes without the `ets` row."""


def load_auto_ets() -> tuple[Any | None, str | None]:
    """(statsforecast's `AutoETS` class, None), or (None, why not) when it cannot be imported.

    Any failure to import counts as absent, not only a missing package: a baseline beside the
    model must never stop a backtest.
    """
    try:
        from statsforecast.models import AutoETS
    except ImportError:
        return None, f"not computed: {INSTALL_HINT}"
    except Exception as exc:  # e.g. an incompatible pandas deep inside its imports
        return None, f"not computed: statsforecast failed to import ({type(exc).__name__}: {exc})"
    return AutoETS, None


def fits_per_series(count: int) -> int:
    """How many origins each of `count` series (times targets) is fitted at."""
    return max(1, min(MAX_FITS, MAX_TOTAL_FITS // max(count, 1)))


def fits_for_history(history: int, max_fits: int = MAX_FITS, max_steps: int = MAX_FIT_STEPS) -> int:
    """Fits for a series whose first origin has `history` steps: within `FIT_STEPS` in all."""
    return max(1, min(max_fits, FIT_STEPS // max(1, min(history, max_steps))))


def ets_forecasts(
    y: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    season: int,
    auto_ets: Any,
    *,
    max_fits: int = MAX_FITS,
    max_steps: int = MAX_FIT_STEPS,
) -> np.ndarray:
    """(N, H) ETS point forecasts of one series from each of `origins`.

    Args:
        y: (T,) the series in its own units.
        origins: (N,) ascending indices into `y`; origin o forecasts the `horizon` steps after
            it from `y[: o + 1]`.
        horizon: H, steps forecast from each origin.
        season: the seasonal period (above `MAX_SEASON`: fitted without a season).
        auto_ets: the `AutoETS` class (`load_auto_ets`).
        max_fits: origins fitted at, evenly spaced, the first always; the others reuse the
            last fit (see the module docstring). Fewer when the history is long
            (`fits_for_history`).
        max_steps: history a fit reads at most.

    Raises:
        EtsError: a fit failed or gave non-finite forecasts.
    """
    y = np.asarray(y, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    m = season if season <= MAX_SEASON else 1
    fits = fits_for_history(int(origins[0]) + 1, max_fits, max_steps) if len(origins) else 1
    picks = np.linspace(0, len(origins) - 1, min(fits, len(origins))).round().astype(int)
    fit_at = set(origins[picks].tolist())
    out = np.empty((len(origins), horizon))
    model, start = None, 0
    for i, origin in enumerate(origins.tolist()):
        try:
            if origin in fit_at or model is None:
                # a later origin re-smooths from this same start, so the fitted initial season
                # states stay in phase with the data they are applied to
                start = max(0, origin + 1 - max_steps)
                model = auto_ets(season_length=m).fit(y[start : origin + 1])
            out[i] = model.forward(y=y[start : origin + 1], h=horizon)["mean"]
        except Exception as exc:  # statsforecast raises ValueError, NotImplementedError, ...
            raise EtsError(
                f"ETS failed at origin {origin} ({origin + 1 - start} steps of history): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not np.isfinite(out[i]).all():
            raise EtsError(f"ETS forecast non-finite values at origin {origin}")
    return out


def backtest_ets(
    values: list[np.ndarray],
    origins: list[np.ndarray],
    horizon: int,
    season: int,
    auto_ets: Any,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """ETS forecasts of several series (and targets) from their origins, concatenated.

    Args:
        values: per series, (T_s, K) values in the data's units.
        origins: per series, (N_s,) ascending local origins.
        horizon, season: as the backtest's.
        auto_ets: the `AutoETS` class.
        names: the series' names, for the error message.

    Returns:
        (sum N_s, H, K) point forecasts, series after series.

    Raises:
        EtsError: naming the series and the target (by index) that failed.
    """
    started = time.perf_counter()
    k = values[0].shape[1] if values else 0
    fits = fits_per_series(len(values) * k)
    parts = []
    for s, (y, local) in enumerate(zip(values, origins, strict=True)):
        columns = []
        for j in range(k):
            try:
                point = ets_forecasts(y[:, j], local, horizon, season, auto_ets, max_fits=fits)
            except EtsError as exc:
                name = names[s] if names is not None else s
                raise EtsError(f"series {name!r}, target {j}: {exc}") from exc
            columns.append(point)
        parts.append(np.stack(columns, axis=-1) if columns else np.zeros((len(local), horizon, 0)))
    if season > MAX_SEASON:
        logger.info("ETS: season %d is longer than %d, fitted without one", season, MAX_SEASON)
    logger.info(
        "ETS baseline: %d series x %d targets, up to %d fits each, %.1f s",
        len(values),
        k,
        fits,
        time.perf_counter() - started,
    )
    return np.concatenate(parts) if parts else np.zeros((0, horizon, k))
