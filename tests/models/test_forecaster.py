"""The forecaster module: shapes, starting at the baseline, losses and intervals."""

from __future__ import annotations

import pytest
import torch

from rnnkit.errors import ConfigError
from rnnkit.models.forecaster import Forecaster, ForecasterConfig, pinball
from rnnkit.tasks.forecasting.ensemble import member_count, merge_forecasters


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


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("likelihood", ["none", "gaussian", "quantile"])
def test_merged_ensemble_is_the_mean_of_its_members(
    cell: str, num_layers: int, likelihood: str
) -> None:
    cfg = ForecasterConfig(
        cell=cell,
        hidden_size=6,
        num_layers=num_layers,
        head_size=5,
        num_features=3,
        num_future=2,
        horizon=4,
        likelihood=likelihood,
    )
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        member = Forecaster(cfg)
        for p in member.parameters():  # nonzero everywhere, the last layer included
            p.data.normal_(0, 0.5)
        members.append(member.eval())
    merged = merge_forecasters(members)
    assert merged.config.hidden_size == 18 and merged.config.head_size == 15
    x, future, base = torch.randn(2, 7, 3), torch.randn(2, 7, 4, 2), torch.randn(2, 7, 4, 1)
    want = torch.stack([m(x, future, base, all_steps=True)[0] for m in members])
    got, state = merged(x, future, base, all_steps=True)
    if likelihood == "gaussian":  # the mean is averaged; the scale before its softplus
        torch.testing.assert_close(got[..., 0], want[..., 0].mean(0), atol=1e-5, rtol=1e-5)
    else:
        torch.testing.assert_close(got, want.mean(0), atol=1e-5, rtol=1e-5)
    # the merged state is the members' states side by side
    first = state[0] if isinstance(state, tuple) else state
    _, member_state = members[1](x, future[:, -1], base[:, -1])
    member_first = member_state[0] if isinstance(member_state, tuple) else member_state
    torch.testing.assert_close(first[..., 6:12], member_first, atol=1e-5, rtol=1e-5)


def test_merge_refuses_mixed_members_and_member_count_rule() -> None:
    a = Forecaster(ForecasterConfig(hidden_size=4))
    b = Forecaster(ForecasterConfig(hidden_size=5))
    with pytest.raises(ValueError, match="share one configuration"):
        merge_forecasters([a, b])
    assert member_count(100, 2048, None) == 5  # short series: cycled epochs, an ensemble
    assert member_count(5000, 2048, None) == 1
    assert member_count(100, 2048, 1) == 1
    with pytest.raises(ConfigError, match="ensemble must be at least 1"):
        member_count(100, 2048, 0)


def test_calibration_only_widens() -> None:
    model = Forecaster(ForecasterConfig(num_features=1, horizon=2))
    point = torch.zeros(50, 2, 1)
    target = torch.linspace(-0.2, 0.2, 100).view(50, 2, 1)  # well inside +-1
    assert model.calibrate(point, point - 1, point + 1, target).item() == 1.0


@pytest.mark.parametrize("levels", [(1e-300, 0.5, 0.9), (0.1, 0.9995), (0.0, 0.5), (0.5, 1.0)])
def test_quantile_levels_outside_what_a_series_can_teach_are_refused(levels) -> None:
    from rnnkit.models.forecaster import QUANTILE_RANGE

    with pytest.raises(ConfigError, match=r"quantiles must lie in \[0\.001, 0\.999\]"):
        ForecasterConfig(likelihood="quantile", quantiles=levels)
    low, high = QUANTILE_RANGE
    ForecasterConfig(likelihood="quantile", quantiles=(low, 0.5, high))  # the bounds are valid
