"""The lean NumPy step agrees with the modules it was copied from (1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.models.encoder import EncoderConfig, RecurrentEncoder
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.lean import LeanEncoder, LeanHead


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_lean_step_matches_the_module(cell: str, num_layers: int) -> None:
    torch.manual_seed(0)
    config = EncoderConfig(cell=cell, input_size=3, hidden_size=6, num_layers=num_layers)
    encoder = RecurrentEncoder(config).eval()
    x = torch.randn(1, 9, 3)
    with torch.no_grad():
        outputs, final = encoder(x)
    lean = LeanEncoder(encoder)
    state = lean.zero_state()
    for t in range(9):
        state.x[:] = x[0, t].numpy()
        h = lean.step(state)
        np.testing.assert_allclose(h, outputs[0, t].numpy(), rtol=1e-5, atol=1e-5)
    # The state converts to PyTorch's layout and back.
    pairs = zip(_parts(lean.to_torch(state)), _parts(final), strict=True)
    for mine, theirs in pairs:
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)
    fresh = lean.zero_state()
    lean.load_torch(fresh, final)
    for mine, theirs in zip(_parts(lean.to_torch(fresh)), _parts(final), strict=True):
        torch.testing.assert_close(mine, theirs)


def _parts(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def test_lean_head_matches_the_module() -> None:
    torch.manual_seed(0)
    config = ForecasterConfig(hidden_size=5, head_size=7, num_future=2, horizon=3, num_features=2)
    model = Forecaster(config).eval()
    torch.nn.init.normal_(model.head[-1].weight)  # not the zero start, so the test sees it
    head = LeanHead(model.head[1], model.head[3], hidden_size=5)
    features = torch.randn(4, 5 + 3 * 2) * 3
    with torch.no_grad():
        expected = model.head(features).numpy()
    for row, want in zip(features.numpy(), expected, strict=True):
        v = head.new_input()
        v[:5], v[6:] = row[:5], row[5:]
        np.testing.assert_allclose(head(v), want, rtol=1e-5, atol=1e-5)
