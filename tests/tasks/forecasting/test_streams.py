"""Stream windows: consecutive, aligned rows, ragged ends masked, only scored origins valid."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnnkit.tasks.forecasting.streams import StreamLoader
from rnnkit.tasks.forecasting.windows import Scaler, SeriesLayout, StackedSeries


def stacked() -> StackedSeries:
    index = pd.date_range("2020-01-01", periods=20, freq="D")
    data = {
        "a": pd.DataFrame({"y": np.arange(20.0)}, index=index),
        "b": pd.DataFrame({"y": 100 + np.arange(13.0)}, index=index[:13]),
    }
    layout = SeriesLayout("D", ("y",), (), (), 2, False)
    return StackedSeries.build(data, layout, Scaler.fit(data, ["y"], "none"))


def test_streams_run_in_order_and_mask_what_is_not_scored() -> None:
    loader = StreamLoader(
        stacked(), [(0, 17), (0, 10)], [(5, 17), (0, 10)], window=4, horizon=2,
        baseline="seasonal_naive", season=2, streams=4, min_stream_windows=2,
    )  # fmt: skip
    # 29 steps over at most 4 streams: pieces of 8 steps; a: 0-7, 8-15, 16-17; b: 0-7, 8-10.
    assert loader.num_streams == 5 and loader.windows_per_pass == 2 and len(loader) == 2
    first, second = list(loader)
    assert first.first and not second.first
    assert first.x[0, :, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert second.x[0, :, 0].tolist() == [4.0, 5.0, 6.0, 7.0]  # the same stream, next window
    assert first.target[3, 0, :, 0].tolist() == [101.0, 102.0]  # b's origin 0 -> steps 1, 2
    assert first.base[3, 0, :, 0].tolist() == [100.0, 100.0]  # before a season: the first value
    assert first.valid[0].tolist() == [False] * 4  # a's origins before 5 are not scored
    assert second.valid[0].tolist() == [False, True, True, True]
    assert first.valid[2].tolist() == [True, True, False, False]  # a's 16-17, then ragged end
    assert first.num_tokens == int(first.valid.sum())


def test_passes_fill_an_epoch() -> None:
    loader = StreamLoader(
        stacked(), [(0, 17)], [(0, 17)], window=6, horizon=2, baseline="none", season=2,
        streams=1, min_stream_windows=1, min_epoch_windows=40,
    )  # fmt: skip
    assert loader.passes == 3 and len(loader) == 9  # 18 scored origins per pass
    assert [b.first for b in loader] == [True, False, False] * 3
