"""The lean streaming step equals one whole pass of the module, for every head and cell (1e-5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.tasks.forecasting.streaming import StreamingForecaster
from rnnkit.tasks.forecasting.windows import Scaler, SeriesLayout, StackedSeries, base_offsets


@pytest.mark.parametrize(
    ("cell", "likelihood", "baseline", "covariates"),
    [
        ("lstm", "quantile", "seasonal_naive", True),
        ("lstm", "none", "none", False),
        ("gru", "gaussian", "last", True),
        ("rnn", "quantile", "seasonal_naive", False),
    ],
)
def test_lean_stream_matches_one_pass(cell, likelihood, baseline, covariates) -> None:
    rng = np.random.default_rng(0)
    index = pd.date_range("2022-01-03", periods=25, freq="D")
    frame = pd.DataFrame({"y": 50 + 10 * rng.standard_normal(25)}, index=index)
    if covariates:
        frame["c"] = rng.standard_normal(25)
    layout = SeriesLayout("D", ("y",), ("c",) if covariates else (), (), 3, True)
    scaler = Scaler.fit({"s": frame}, list(frame.columns), "standard")
    torch.manual_seed(0)
    config = ForecasterConfig(
        cell=cell, hidden_size=6, head_size=8, num_layers=2, num_features=layout.num_features,
        num_future=layout.num_future, horizon=4, likelihood=likelihood,
    )  # fmt: skip
    model = Forecaster(config).eval()
    torch.nn.init.normal_(model.head[-1].weight, std=0.3)  # leave the baseline start
    model.interval_scale.fill_(1.3)
    stream = StreamingForecaster(model, layout, scaler.params["s"], baseline)
    stream.start = index[0]
    values = frame.to_numpy()
    stepped = [stream.update(row[0], row[1:] if covariates else None) for row in values]
    # The module over the whole series, head after every step.
    stacked = StackedSeries.build({"s": frame}, layout, scaler)
    t, h = len(frame), config.horizon
    longer = pd.date_range(index[0], periods=t + h, freq="D")
    future = torch.from_numpy(layout.future_features(np.zeros((t + h, 0), np.float32), longer))
    ahead = torch.arange(t)[:, None] + torch.arange(1, h + 1)
    back = base_offsets(h, 3, baseline)
    base = torch.zeros(t, h, 1) if back is None else stacked.values[(ahead - back).clamp(min=0)]
    with torch.no_grad():
        params, _ = model(stacked.features[None], future[ahead][None], base[None], all_steps=True)
    fc = model.forecast(params[0])
    shift, scale = scaler.params["s"]["y"]
    for name in ("point", "lower", "upper"):
        want = getattr(fc, name)
        for step, got in enumerate(stepped):
            if want is None:
                assert getattr(got, name) is None
                continue
            np.testing.assert_allclose(
                getattr(got, name)[:, 0], want[step, :, 0].numpy() * scale + shift, rtol=1e-5,
                atol=1e-4,
            )  # fmt: skip


def test_scalar_and_array_values_agree() -> None:
    index = pd.date_range("2022-01-03", periods=12, freq="D")
    frame = pd.DataFrame({"y": np.linspace(10, 30, 12)}, index=index)
    layout = SeriesLayout("D", ("y",), (), (), 3, False)
    scaler = Scaler.fit({"s": frame}, ["y"], "standard")
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(hidden_size=4, head_size=4, horizon=2, num_features=2))
    scalar = StreamingForecaster(model.eval(), layout, scaler.params["s"])
    array = StreamingForecaster(model, layout, scaler.params["s"])
    for value in frame["y"]:
        a, b = scalar.update(value), array.update(np.array([value]))
    np.testing.assert_allclose(a.point, b.point, rtol=1e-6)
    assert scalar.buffer.shape == (3, 1) and scalar.steps == 12
