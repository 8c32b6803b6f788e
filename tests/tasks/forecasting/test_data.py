"""Split points: one rounding for every part, the same as `TimeSeriesDataset.split`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnkit.data import TimeSeriesDataset
from rnnkit.errors import ConfigError
from rnnkit.tasks.forecasting.config import SeriesDataConfig
from rnnkit.tasks.forecasting.data import split_points, split_sizes


@pytest.mark.parametrize("n", [10, 25, 144, 1001])
def test_split_sizes_round_as_the_dataset_splits(n: int) -> None:
    index = pd.date_range("2020-01-01", periods=n, freq="D")
    dataset = TimeSeriesDataset(
        "toy", {"y": pd.DataFrame({"y": np.arange(n)}, index=index)}, "D", ["y"]
    )
    parts = dataset.split(validation=0.15, test=0.25)
    sizes = split_sizes(n, SeriesDataConfig(validation=0.15, test=0.25))
    assert sizes == (
        len(parts.train.series["y"]),
        len(parts.validation.series["y"]),
        len(parts.test.series["y"]),
    )


def test_split_points_end_where_the_parts_end() -> None:
    index = pd.date_range("2020-01-01", periods=100, freq="D")
    series = {
        k: pd.DataFrame({"y": np.arange(n)}, index=index[:n]) for k, n in (("a", 100), ("b", 50))
    }
    points = split_points(
        TimeSeriesDataset("toy", series, "D", ["y"]), SeriesDataConfig(test_steps=20)
    )
    assert (points.train, points.validation, points.test) == ([70, 25], [10, 5], [20, 20])
    assert points.validation_end == [80, 30]  # where each test span starts
    with pytest.raises(ConfigError, match="test_steps 48 leaves nothing to train on"):
        split_sizes(50, SeriesDataConfig(test_steps=48))
