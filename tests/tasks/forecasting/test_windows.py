"""Windows, scaling and calendar features: what the model reads is what the data says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks.forecasting.windows import (
    Scaler,
    SeriesLayout,
    StackedSeries,
    WindowLoader,
    base_offsets,
    baseline_steps,
    baseline_values,
    calendar_features,
    default_season,
    future_index,
    seasonal_offsets,
)


def frames() -> dict[str, pd.DataFrame]:
    index = pd.date_range("2020-01-01", periods=30, freq="D")
    return {
        "a": pd.DataFrame({"y": np.arange(30.0), "c": np.ones(30)}, index=index),
        "b": pd.DataFrame({"y": 100 + 2 * np.arange(30.0), "c": np.zeros(30)}, index=index),
    }


def layout(**more) -> SeriesLayout:
    options = dict(freq="D", targets=("y",), covariates=("c",), future_covariates=(), season=7)
    options |= {"calendar": True, **more}
    return SeriesLayout(**options)


def test_default_seasons_and_offsets() -> None:
    assert [default_season(f) for f in ("h", "D", "MS", "YS", "W-SUN")] == [24, 7, 12, 1, 52]
    assert seasonal_offsets(5, 2).tolist() == [2, 2, 4, 4, 6]
    assert seasonal_offsets(3, 12).tolist() == [12, 12, 12]


def test_baseline_reads_one_or_more_seasons_back_and_stops_at_first() -> None:
    back = base_offsets(3, 2, "seasonal_naive")  # (2, 2, 4)
    assert baseline_steps(torch.tensor([5, 9]), back).tolist() == [[4, 5, 4], [8, 9, 8]]
    assert baseline_steps(torch.tensor(0), back, first=0).tolist() == [0, 0, 0]  # no season yet
    assert baseline_steps(torch.tensor(3), base_offsets(3, 2, "last")).tolist() == [3, 3, 3]
    values = torch.arange(10.0)[:, None]  # (N, K=1)
    origins = torch.tensor([[1, 5]])  # any shape: (1, 2)
    got = baseline_values(values, origins, back, 3, first=torch.tensor([[[1], [2]]]))
    assert got.shape == (1, 2, 3, 1)
    assert got[0, :, :, 0].tolist() == [[1.0, 1.0, 1.0], [4.0, 5.0, 4.0]]
    assert baseline_values(values, origins, None, 3).shape == (1, 2, 3, 1)  # no baseline: zeros


def test_future_index_starts_after_the_last_time() -> None:
    index = future_index(pd.Timestamp("2021-01-01"), "MS", 2)
    assert index.tolist() == [pd.Timestamp("2021-02-01"), pd.Timestamp("2021-03-01")]


def test_calendar_is_periodic() -> None:
    index = pd.date_range("2021-03-01", periods=15, freq="D")
    cal = calendar_features(index, "D")  # weekday sin/cos, year sin/cos
    assert cal.shape == (15, 4)
    np.testing.assert_allclose(cal[0, :2], cal[7, :2], atol=1e-6)
    assert calendar_features(index, "YS").shape == (15, 0)


def test_scaler_fits_each_series_on_what_it_is_given() -> None:
    train = {k: f.iloc[:10] for k, f in frames().items()}
    scaler = Scaler.fit(train, ["y", "c"], "standard")
    assert scaler.params["a"]["y"][0] == pytest.approx(4.5)  # mean of 0..9, not of 0..29
    assert scaler.params["b"]["c"] == (0.0, 1.0)  # a constant column keeps scale 1
    minmax = Scaler.fit(train, ["y"], "minmax")
    assert minmax.params["b"]["y"] == (100.0, 18.0)
    assert Scaler.from_dict(scaler.to_dict()) == scaler
    shift, scale = Scaler.shift_scale(scaler.params["a"], ["y", "c"])
    assert shift.tolist() == [4.5, 1.0] and scale[1] == 1.0
    x = train["a"][["y", "c"]].to_numpy()
    np.testing.assert_allclose(Scaler.inverse(Scaler.transform(x, shift, scale), shift, scale), x)
    with pytest.raises(DataError, match="not seen in training"):
        scaler.for_series("zzz")
    with pytest.raises(ConfigError, match="unknown scaling"):
        Scaler.fit(train, ["y"], "robust")


def test_windows_gather_the_right_steps() -> None:
    data = frames()
    lay = layout()
    stacked = StackedSeries.build(data, lay, Scaler.fit(data, ["y", "c"], "none"))
    assert stacked.starts.tolist() == [0, 30, 60]
    assert lay.num_features == stacked.features.shape[1] == 2 + 1 + 4
    origins = np.array([10, 30 + 20])
    loader = WindowLoader(
        stacked, origins, input_length=8, horizon=3, baseline="seasonal_naive", season=7,
        batch_size=4,
    )  # fmt: skip
    (batch,) = list(loader)
    assert batch.x.shape == (2, 8, 7) and batch.target.shape == (2, 3, 1)
    assert batch.x[0, :, 0].tolist() == list(np.arange(3.0, 11.0))  # steps 3..10 of "a"
    assert batch.target[1, :, 0].tolist() == [142.0, 144.0, 146.0]  # steps 21..23 of "b"
    assert batch.base[1, :, 0].tolist() == [128.0, 130.0, 132.0]  # a week earlier
    assert batch.x[0, -1, 1].item() == 7.0  # seasonal difference y_t - y_{t-7}
    last = WindowLoader(
        stacked, origins, input_length=8, horizon=3, baseline="last", season=7, batch_size=4
    )
    assert next(iter(last)).base[0, :, 0].tolist() == [10.0, 10.0, 10.0]


def test_shuffle_is_seeded_per_epoch() -> None:
    data = frames()
    stacked = StackedSeries.build(data, layout(), Scaler.fit(data, ["y", "c"], "none"))
    loader = WindowLoader(
        stacked, np.arange(10, 20), input_length=5, horizon=2, baseline="none", season=7,
        batch_size=3, shuffle=True, seed=1,
    )  # fmt: skip

    def order() -> list[int]:
        return torch.cat([b.origin for b in loader]).tolist()

    first = order()
    assert sorted(first) == list(range(10, 20)) and len(loader) == 4
    assert order() == first
    loader.set_epoch(2)
    assert order() != first
