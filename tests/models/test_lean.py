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


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize(("num_layers", "norm", "tie"), [(1, "none", False), (2, "layer", True)])
def test_lean_language_model_matches_the_module(cell, num_layers, norm, tie) -> None:
    from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
    from rnnkit.models.lean import LeanLanguageModel

    torch.manual_seed(0)
    config = LanguageModelConfig(
        vocab_size=17,
        embedding_dim=8,
        hidden_size=8,
        num_layers=num_layers,
        cell=cell,
        norm=norm,
        tie_weights=tie,
    )
    model = LanguageModel(config).eval()
    ids = torch.randint(0, 17, (1, 12))
    with torch.no_grad():
        logits, _ = model(ids, None)
        _, primed = model(ids[:, :4], None)
    lean = LeanLanguageModel(model)
    state = lean.state(primed)  # continues from a state the modules made
    for t in range(4, 12):
        step = lean.step(state, int(ids[0, t]))
        np.testing.assert_allclose(step, logits[0, t].numpy(), rtol=1e-5, atol=1e-5)


def test_one_sample_generates_the_same_tokens_lean_or_through_the_modules() -> None:
    from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
    from rnnkit.tasks.language_model.generate import SamplingConfig, generate_ids, lean_model

    torch.manual_seed(1)
    model = LanguageModel(LanguageModelConfig(vocab_size=40, hidden_size=16, num_layers=2))
    config = SamplingConfig(max_tokens=200, temperature=1.0, seed=5)
    lean = [int(i) for i in generate_ids(model, [4, 5, 6], config)]
    modules = [int(i) for i in generate_ids(model, [4, 5, 6], config, lean=False)]
    assert lean == modules
    first = lean_model(model)
    assert first is lean_model(model)  # made once per set of weights
    with torch.no_grad():
        model.decoder.bias.add_(1.0)  # weights changed in place: a new step is made
    assert lean_model(model) is not first


@pytest.mark.parametrize(
    "options",
    [
        {"temperature": 0.8},
        {"temperature": 0.0},
        {"temperature": 1.3, "top_k": 5},
        {"temperature": 0.7, "top_p": 0.9},
        {"temperature": 0.9, "repetition_penalty": 1.3},
    ],
)
def test_one_sample_draws_what_the_tensor_path_draws(options: dict) -> None:
    """The NumPy sampler (temperature, top-k) and the lean step with torch's sampler (top-p,
    repetition penalty) give the tokens of the batched tensor path, seed for seed."""
    from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
    from rnnkit.tasks.language_model.generate import SamplingConfig, generate_ids

    torch.manual_seed(2)
    model = LanguageModel(LanguageModelConfig(vocab_size=30, hidden_size=12, cell="gru"))
    for seed in range(3):
        config = SamplingConfig(max_tokens=150, seed=seed, **options)
        lean = [int(i) for i in generate_ids(model, [7, 8], config)]
        modules = [int(i) for i in generate_ids(model, [7, 8], config, lean=False)]
        assert lean == modules
        assert not {0, 1, 2, 3} & set(lean)  # special tokens are never generated
