"""A teacher's outputs read once (`distill.top_k`): the table matches the teacher, the batches
find their rows in it, and what cannot be held in memory is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.errors import ConfigError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.tasks.language_model.batches import LMWindows
from rnnkit.tasks.language_model.soft_targets import store_teacher


def teacher(vocab: int = 13) -> LanguageModel:
    torch.manual_seed(0)
    cfg = LanguageModelConfig(vocab_size=vocab, embedding_dim=5, hidden_size=8, num_layers=2)
    return LanguageModel(cfg).eval()


def test_one_row_is_the_teacher_over_the_whole_stream() -> None:
    model, ids = teacher(), np.random.default_rng(0).integers(0, 13, 700)
    stored = store_teacher(model, ids, 13, 2.0, rows=1, window=64)
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(ids)[None], None)
    expected = torch.log_softmax(logits[0] / 2.0, -1)  # (N, V)
    got = torch.full_like(expected, float("nan"))
    got.scatter_(
        1,
        torch.from_numpy(stored.indices.astype(np.int64)),
        torch.from_numpy(stored.log_probs.astype(np.float32)),
    )
    assert stored.log_probs.shape == (700, 13) and stored.log_probs.dtype == np.float16
    assert torch.allclose(got, expected, atol=2e-3)


def test_rows_restart_from_zeros_but_cover_every_position_in_order() -> None:
    model, ids = teacher(), np.random.default_rng(1).integers(0, 13, 1000)
    stored = store_teacher(model, ids, 3, 1.0, rows=4, window=32)
    assert stored.indices.shape == (1000, 3) and stored.k == 3
    length = 250  # 1000 ids in 4 rows
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(ids[length : 2 * length])[None], None)
    top = torch.log_softmax(logits[0], -1).topk(3, -1)
    assert np.array_equal(stored.indices[length : 2 * length], top.indices.numpy())
    assert np.allclose(stored.log_probs[length : 2 * length], top.values.numpy(), atol=2e-3)


def test_windows_give_the_stream_positions_their_inputs_come_from() -> None:
    ids = np.arange(1000) % 97
    windows = LMWindows(ids, 4, 16, shift_per_epoch=True, seed=3)
    windows.set_epoch(2)  # a shifted epoch
    windows.shard(2, 1)
    for batch in windows:
        steps = batch.inputs.size(1)
        rows = batch.positions.numpy()[:, None] + np.arange(steps)
        assert np.array_equal(batch.inputs.numpy(), ids[rows])
    moved = batch.to("cpu")
    assert moved.positions is batch.positions


def test_lookup_returns_the_rows_of_each_window() -> None:
    model, ids = teacher(), np.random.default_rng(2).integers(0, 13, 600)
    stored = store_teacher(model, ids, 5, 2.0, rows=2, window=50)
    log_probs, indices = stored.lookup(torch.tensor([0, 300]), 7, "cpu")
    assert log_probs.shape == indices.shape == (2, 7, 5) and indices.dtype == torch.int64
    assert np.array_equal(indices[1].numpy(), stored.indices[300:307])


def test_a_streamed_corpus_and_a_table_too_large_are_refused(tmp_path, monkeypatch) -> None:
    path = tmp_path / "tokens.bin"
    np.arange(100, dtype=np.uint16).tofile(path)
    mapped = np.memmap(path, dtype=np.uint16, mode="r")
    with pytest.raises(ConfigError, match=r"distill\.top_k=0"):
        store_teacher(teacher(), mapped, 4, 2.0)
    import rnnkit.tasks.language_model.soft_targets as soft

    monkeypatch.setattr(soft, "MAX_BYTES", 1000)
    with pytest.raises(ConfigError, match=r"smaller distill\.top_k"):
        store_teacher(teacher(), np.zeros(500, dtype=np.int64), 4, 2.0)
