"""The forecaster module: shapes, starting at the baseline, losses and intervals."""

from __future__ import annotations

import pytest
import torch

from rnnkit.errors import ConfigError
from rnnkit.models.forecaster import Forecaster, ForecasterConfig, pinball


@pytest.mark.parametrize("likelihood", ["none", "gaussian", "quantile"])
def test_shapes_and_baseline_start(likelihood: str) -> None:
    cfg = ForecasterConfig(
        cell="gru", hidden_size=8, num_features=3, num_future=2, horizon=4, likelihood=likelihood
    )
    model = Forecaster(cfg).eval()
    x, future, base = torch.randn(5, 6, 3), torch.randn(5, 4, 2), torch.randn(5, 4, 1)
    params, state = model(x, future, base)
    assert params.shape == (5, 4, 1, cfg.num_params) and state.shape == (1, 5, 8)
    fc = model.forecast(params)
    # A fresh model forecasts its baseline (the last layer starts at zero).
    torch.testing.assert_close(fc.point, base)
    assert model.loss(params, base).ndim == 0
    if likelihood != "none":
        assert (fc.lower <= fc.point).all() and (fc.point <= fc.upper).all()
    steps, _ = model(x, future.unsqueeze(1).expand(-1, 6, -1, -1), base.unsqueeze(1).expand(
        -1, 6, -1, -1), all_steps=True)  # fmt: skip
    torch.testing.assert_close(steps[:, -1], params)


def test_pinball_and_calibration() -> None:
    target = torch.tensor([1.0, 2.0])
    pred = torch.tensor([[0.0, 1.0, 2.0], [2.0, 2.0, 2.0]])
    levels = torch.tensor([0.1, 0.5, 0.9])
    # errors: row 0 -> 0.1*1, 0, 0.1*1 ; row 1 -> 0
    assert pinball(pred, target, levels).item() == pytest.approx(0.2 / 6)
    model = Forecaster(ForecasterConfig(num_features=1, horizon=2))
    point = torch.zeros(50, 2, 1)
    target = torch.linspace(-2, 2, 100).view(50, 2, 1)
    scale = model.calibrate(point, point - 1, point + 1, target)
    covered = (target.abs() <= scale).float().mean()
    assert 0.78 <= covered <= 0.82


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown likelihood"):
        ForecasterConfig(likelihood="poisson")
    with pytest.raises(ConfigError, match="increasing"):
        ForecasterConfig(quantiles=(0.9, 0.1))
    with pytest.raises(ConfigError, match="unknown cell"):
        Forecaster(ForecasterConfig(cell="transformer"))
