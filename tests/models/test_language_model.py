"""LanguageModel: shapes, state in/out parity, weight tying, config errors."""

from __future__ import annotations

import pytest
import torch

from rnnkit.errors import ConfigError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig


def tiny(cell: str = "lstm", **more) -> LanguageModel:
    torch.manual_seed(0)
    config = LanguageModelConfig(
        vocab_size=11, embedding_dim=6, cell=cell, hidden_size=8, num_layers=2, **more
    )
    return LanguageModel(config).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_carrying_the_state_equals_one_long_pass(cell: str) -> None:
    model = tiny(cell)
    ids = torch.randint(0, 11, (3, 20))
    with torch.no_grad():
        whole, final = model(ids)
        first, state = model(ids[:, :12])
        second, state = model(ids[:, 12:], state)
    assert whole.shape == (3, 20, 11)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    if cell == "lstm":
        torch.testing.assert_close(state[0], final[0])
        torch.testing.assert_close(state[1], final[1])
    else:
        torch.testing.assert_close(state, final)


def test_tied_weights_share_one_parameter() -> None:
    config = LanguageModelConfig(vocab_size=11, embedding_dim=8, hidden_size=8, tie_weights=True)
    model = LanguageModel(config)
    assert model.decoder.weight is model.embedding.weight
    untied = LanguageModel(LanguageModelConfig(vocab_size=11, embedding_dim=8, hidden_size=8))
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in untied.parameters()) - 11 * 8


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="tie_weights needs embedding_dim == hidden_size"):
        LanguageModelConfig(vocab_size=5, embedding_dim=4, hidden_size=8, tie_weights=True)
    with pytest.raises(ConfigError, match="unknown cell 'lstn'"):
        LanguageModelConfig(cell="lstn")
    with pytest.raises(ConfigError, match="dropout"):
        LanguageModelConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="vocab_size must be set"):
        LanguageModel(LanguageModelConfig())


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_single_steps_match_the_fused_pass(cell: str) -> None:
    model = tiny(cell)  # eval mode: one-token calls take the cell-function path
    ids = torch.randint(0, 11, (4, 9))
    with torch.no_grad():
        whole, final = model(ids)
        logits, state = model(ids[:, :1])
        steps = [logits]
        for t in range(1, 9):
            logits, state = model(ids[:, t : t + 1], state)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole)
    torch.testing.assert_close(state, final)
