"""Contiguous rows and truncated-BPTT windows, as drawn in `rnnkit.tasks.language_model.batches`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.errors import ConfigError
from rnnkit.tasks.language_model.batches import LMWindows, batchify


def test_batchify_cuts_contiguous_rows_and_drops_the_remainder() -> None:
    rows = batchify(np.arange(26), 3)
    assert rows.tolist() == [list(range(0, 8)), list(range(8, 16)), list(range(16, 24))]


def test_windows_follow_the_diagram() -> None:
    windows = list(LMWindows(np.arange(24), batch_size=3, bptt=3))
    assert len(windows) == len(LMWindows(np.arange(24), 3, 3)) == 3
    first = windows[0]
    assert first.first and not windows[1].first
    assert first.inputs.tolist() == [[0, 1, 2], [8, 9, 10], [16, 17, 18]]
    assert first.targets.tolist() == [[1, 2, 3], [9, 10, 11], [17, 18, 19]]
    # window k+1 of a row continues where window k stopped; the last one is shorter
    assert windows[1].inputs[:, 0].tolist() == [3, 11, 19]
    assert windows[2].inputs.tolist() == [[6], [14], [22]]
    assert windows[2].targets.tolist() == [[7], [15], [23]]
    assert sum(w.num_tokens for w in windows) == 3 * 7  # every id but each row's first is a target


def test_every_target_is_the_next_id_of_the_stream() -> None:
    ids = torch.randint(0, 50, (1000,))
    flat_in = torch.cat([w.inputs for w in LMWindows(ids, 4, 7)], dim=1)
    flat_out = torch.cat([w.targets for w in LMWindows(ids, 4, 7)], dim=1)
    rows = batchify(ids, 4)
    assert torch.equal(flat_in, rows[:, :-1]) and torch.equal(flat_out, rows[:, 1:])


def test_set_epoch_moves_boundaries_reproducibly_and_only_when_asked() -> None:
    ids = np.arange(10_000)
    a = LMWindows(ids, 4, 16, shift_per_epoch=True, seed=1)
    b = LMWindows(ids, 4, 16, shift_per_epoch=True, seed=1)
    offsets = []
    for epoch in range(1, 6):
        a.batch_sampler.set_epoch(epoch)  # how `fit` reaches it
        b.set_epoch(epoch)
        assert 0 <= a.offset < 16 and a.offset == b.offset
        assert int(next(iter(a)).inputs[0, 0]) == a.offset
        offsets.append(a.offset)
    assert len(set(offsets)) > 1
    fixed = LMWindows(ids, 4, 16)
    fixed.set_epoch(3)
    assert fixed.offset == 0


def test_too_little_text_is_refused_with_a_reason() -> None:
    with pytest.raises(ConfigError, match="cannot fill 8 rows"):
        LMWindows(np.arange(10), batch_size=8, bptt=4)
    with pytest.raises(ConfigError, match="bptt must be at least 1"):
        LMWindows(np.arange(100), batch_size=2, bptt=0)
