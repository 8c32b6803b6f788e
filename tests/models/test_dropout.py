"""Embedding and locked dropout: identity in eval, whole rows / whole features in training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnkit.errors import ConfigError
from rnnkit.models.dropout import EmbeddingDropout, LockedDropout

BAD_P = [-0.1, 1.0, 1.5, math.nan, "0.5", True, None]


def make_embedding(num_embeddings: int = 6, dim: int = 4, padding_idx: int | None = 0):
    torch.manual_seed(0)
    return nn.Embedding(num_embeddings, dim, padding_idx=padding_idx)


@pytest.mark.parametrize("p", BAD_P)
def test_bad_probability_names_value_and_range(p) -> None:
    expected = f"p must be a dropout probability in [0, 1), got {p!r}"
    with pytest.raises(ConfigError) as err:
        LockedDropout(p)
    assert str(err.value) == expected
    with pytest.raises(ConfigError) as err:
        EmbeddingDropout(make_embedding(), p)
    assert str(err.value) == expected


def test_repr_shows_p() -> None:
    assert "p=0.25" in repr(LockedDropout(0.25))
    assert "p=0.1" in repr(EmbeddingDropout(make_embedding(), 0.1))


# --- EmbeddingDropout -------------------------------------------------------------------------

IDS = torch.tensor([[1, 2, 1, 3, 0], [3, 4, 5, 1, 0]])  # repeats across and within rows; 0 = pad


def test_embedding_dropout_eval_and_p0_are_the_embedding() -> None:
    embedding = make_embedding()
    expected = embedding(IDS)
    assert torch.equal(EmbeddingDropout(embedding, 0.5).eval()(IDS), expected)
    assert torch.equal(EmbeddingDropout(embedding, 0.0).train()(IDS), expected)


def test_embedding_dropout_drops_word_types_everywhere() -> None:
    embedding = make_embedding()
    dropout = EmbeddingDropout(embedding, 0.5).train()
    weight = embedding.weight.detach()
    torch.manual_seed(1)
    saw_dropped = saw_kept = False
    for _ in range(20):
        out = dropout(IDS)  # (B, T, D)
        assert out.shape == (*IDS.shape, weight.size(1))
        fate: dict[int, bool] = {}
        for b in range(IDS.size(0)):
            for t in range(IDS.size(1)):
                word, vector = int(IDS[b, t]), out[b, t]
                if word == 0:
                    assert torch.equal(vector, torch.zeros_like(vector))  # pad row stays zero
                    continue
                kept = bool(vector.abs().sum() > 0)
                # the whole row is either zero or the vector scaled by 1/(1-p)
                expected = weight[word] / 0.5 if kept else torch.zeros_like(vector)
                torch.testing.assert_close(vector, expected)
                assert fate.setdefault(word, kept) == kept  # same word, same fate in the batch
                saw_dropped |= not kept
                saw_kept |= kept
    assert saw_dropped and saw_kept


def test_embedding_dropout_gradients_skip_dropped_words_and_pad() -> None:
    embedding = make_embedding()
    dropout = EmbeddingDropout(embedding, 0.5).train()
    torch.manual_seed(3)
    out = dropout(IDS)
    out.sum().backward()
    grad = embedding.weight.grad
    assert torch.equal(grad[0], torch.zeros_like(grad[0]))  # padding_idx: no gradient
    for word in IDS.unique().tolist():
        if word == 0:
            continue
        kept = bool(out[word == IDS].abs().sum() > 0)
        count = int((word == IDS).sum())
        assert torch.allclose(grad[word], torch.full_like(grad[word], count / 0.5 if kept else 0))


def test_embedding_dropout_preserves_expectation() -> None:
    embedding = make_embedding(padding_idx=None)
    dropout = EmbeddingDropout(embedding, 0.3).train()
    ids = torch.arange(6).unsqueeze(0)  # (1, 6)
    torch.manual_seed(0)
    with torch.no_grad():
        mean = torch.stack([dropout(ids) for _ in range(4000)]).mean(0)
        torch.testing.assert_close(mean, embedding(ids), atol=0.05, rtol=0.05)


# --- LockedDropout ----------------------------------------------------------------------------


def test_locked_dropout_eval_and_p0_are_identity() -> None:
    x = torch.randn(3, 5, 4)
    assert LockedDropout(0.5).eval()(x) is x
    assert LockedDropout(0.0).train()(x) is x


def test_locked_dropout_same_features_at_every_step() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 7, 16).abs() + 0.1  # (B, T, D), no zeros of its own
    out = LockedDropout(0.4).train()(x)
    kept = out != 0  # (B, T, D)
    assert torch.equal(kept, kept[:, :1].expand_as(kept))  # one mask per sequence, all steps
    torch.testing.assert_close(out[kept], x[kept] / 0.6)
    assert not torch.equal(kept[0, 0], kept[1, 0])  # each sequence draws its own mask
    assert 0 < kept.float().mean() < 1


def test_locked_dropout_preserves_expectation_and_passes_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, requires_grad=True)
    dropout = LockedDropout(0.5).train()
    mean = torch.stack([dropout(x) for _ in range(4000)]).mean(0)
    torch.testing.assert_close(mean, x, atol=0.1, rtol=0.05)
    mean.sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, torch.ones_like(x), atol=0.1)


def test_locked_dropout_wants_batch_time_features() -> None:
    with pytest.raises(ValueError, match=r"expects \(B, T, D\) inputs, got shape \(3, 4\)"):
        LockedDropout(0.5).train()(torch.ones(3, 4))
