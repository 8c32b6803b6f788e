"""Tests for rnnkit.data.batching: bucketed sampling, DDP sharding, padding and collation."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from rnnkit.data.batching import Batch, BucketBatchSampler, PadCollate, SequenceDataset
from rnnkit.errors import ConfigError, DataError

lengths_strategy = st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=300)
sampler_settings = settings(max_examples=60, deadline=None)


def padded_fraction(batches: list[list[int]], lengths: np.ndarray) -> float:
    """Reference: padded slots / all slots, computed the slow, obvious way."""
    slots = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    tokens = sum(lengths[i] for b in batches for i in b)
    return 1.0 - tokens / slots


def all_ranks(lengths, batch_size, num_replicas, **kwargs) -> list[list[list[int]]]:
    """Batches of every rank for epoch `kwargs.get('epoch', 0)`."""
    epoch = kwargs.pop("epoch", 0)
    out = []
    for rank in range(num_replicas):
        sampler = BucketBatchSampler(
            lengths, batch_size, num_replicas=num_replicas, rank=rank, **kwargs
        )
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


# --- sampler invariants -----------------------------------------------------------------------


@sampler_settings
@given(
    lengths=lengths_strategy,
    batch_size=st.integers(1, 40),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 1000),
    multiplier=st.integers(1, 60),
)
def test_every_index_once_per_epoch(lengths, batch_size, shuffle, seed, epoch, multiplier):
    sampler = BucketBatchSampler(
        lengths, batch_size, shuffle=shuffle, seed=seed, bucket_size_multiplier=multiplier
    )
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert len(batches) == len(sampler) == math.ceil(len(lengths) / batch_size)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    # Only one batch can be short: pools are whole batches.
    assert sum(len(b) < batch_size for b in batches) <= 1
    assert sampler.padding_fraction() == pytest.approx(padded_fraction(batches, np.array(lengths)))


@sampler_settings
@given(lengths=lengths_strategy, batch_size=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_drop_last_gives_full_batches_of_distinct_indices(lengths, batch_size, seed):
    if len(lengths) < batch_size:
        return  # refused, see test_bad_arguments
    sampler = BucketBatchSampler(lengths, batch_size, seed=seed, drop_last=True)
    batches = list(sampler)
    flat = [i for b in batches for i in b]
    assert len(batches) == len(sampler) == len(lengths) // batch_size
    assert all(len(b) == batch_size for b in batches)
    assert len(set(flat)) == len(flat)


@sampler_settings
@given(
    lengths=lengths_strategy,
    batch_size=st.integers(1, 20),
    num_replicas=st.integers(1, 5),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    epoch=st.integers(0, 50),
)
def test_ranks_share_one_plan(lengths, batch_size, num_replicas, drop_last, shuffle, epoch):
    if drop_last and len(lengths) < batch_size * num_replicas:
        return  # refused, see test_bad_arguments
    per_rank = all_ranks(
        lengths, batch_size, num_replicas, drop_last=drop_last, shuffle=shuffle, epoch=epoch
    )
    counts = {len(batches) for batches in per_rank}
    assert len(counts) == 1, "every rank must run the same number of steps"
    steps = counts.pop()
    seen = Counter(i for batches in per_rank for b in batches for i in b)
    n_batches = len(lengths) // batch_size if drop_last else math.ceil(len(lengths) / batch_size)
    if drop_last:
        # Disjoint: nothing is repeated, only the incomplete last step is dropped.
        assert set(seen.values()) <= {1}
        assert steps == n_batches // num_replicas
    else:
        # Cover everything; the only repeats are whole batches filling the last step.
        assert set(seen) == set(range(len(lengths)))
        assert steps == math.ceil(n_batches / num_replicas)
        repeated_batches = steps * num_replicas - n_batches
        assert repeated_batches < num_replicas
        assert sum(seen.values()) - len(lengths) <= repeated_batches * batch_size
        if repeated_batches == 0:
            assert set(seen.values()) == {1}


def test_ranks_are_disjoint_when_batches_divide_evenly():
    lengths = np.random.default_rng(0).integers(1, 100, size=96)
    per_rank = all_ranks(lengths, 8, 4, seed=3, epoch=2)  # 12 batches, 3 steps of 4 ranks
    sets = [{i for b in batches for i in b} for batches in per_rank]
    assert all(len(batches) == 3 for batches in per_rank)
    assert set().union(*sets) == set(range(96))
    assert sum(len(s) for s in sets) == 96


def test_uneven_batches_repeat_the_first_batches_of_the_plan():
    # 5 batches of 2 over 2 ranks: the last step is filled with the plan's first batch.
    lengths = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    rank0, rank1 = all_ranks(lengths, 2, 2, shuffle=False)
    assert rank0 == [[0, 1], [4, 5], [8, 9]]
    assert rank1 == [[2, 3], [6, 7], [0, 1]]
    rank0, rank1 = all_ranks(lengths, 2, 2, shuffle=False, drop_last=True)
    assert (rank0, rank1) == ([[0, 1], [4, 5]], [[2, 3], [6, 7]])


def test_epochs_differ_and_are_reproducible():
    lengths = np.random.default_rng(1).integers(1, 100, size=500)
    sampler = BucketBatchSampler(lengths, 16, seed=7, bucket_size_multiplier=4)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch0 != epoch1
    again = BucketBatchSampler(lengths, 16, seed=7, bucket_size_multiplier=4)
    assert list(again) == epoch0
    again.set_epoch(1)
    assert list(again) == epoch1
    other_seed = BucketBatchSampler(lengths, 16, seed=8, bucket_size_multiplier=4)
    assert list(other_seed) != epoch0


def test_shuffle_false_is_sorted_by_length_and_fixed():
    lengths = [5, 3, 9, 1, 3, 7, 2]
    sampler = BucketBatchSampler(lengths, 3, shuffle=False)
    first = list(sampler)
    assert first == [[3, 6, 1], [4, 0, 5], [2]]  # ties (3, 3) keep index order
    sampler.set_epoch(5)
    assert list(sampler) == first


def test_ranks_of_one_step_get_similar_lengths():
    # Batches of one step come from one sorted pool, so no rank waits long for the others.
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 150, size=4096)
    per_rank = all_ranks(lengths, 32, 2, seed=0)
    spreads = [
        abs(int(lengths[b0].max()) - int(lengths[b1].max()))
        for b0, b1 in zip(*per_rank, strict=True)
    ]
    assert np.median(spreads) <= 2


# --- padding ---------------------------------------------------------------------------------


def test_padding_fraction_on_a_hand_example():
    # Sorted: [1, 2] [3, 6] [6] -> slots 2*2 + 2*6 + 1*6 = 22, tokens 3 + 9 + 6 = 18.
    sampler = BucketBatchSampler([6, 1, 3, 2, 6], 2, shuffle=False)
    assert list(sampler) == [[1, 3], [2, 0], [4]]
    assert sampler.padding_fraction() == pytest.approx(1 - 18 / 22)
    # Two ranks repeat batch [1, 3] (slots 4, tokens 3) to fill the last step.
    two = BucketBatchSampler([6, 1, 3, 2, 6], 2, shuffle=False, num_replicas=2)
    assert two.padding_fraction() == pytest.approx(1 - 21 / 26)


def test_equal_lengths_have_no_padding():
    assert BucketBatchSampler([4] * 10, 3).padding_fraction() == 0.0


def test_buckets_pad_far_less_than_random_batches_on_skewed_lengths():
    # Review-like: median 53 tokens, a long tail to 400 (lognormal), as in real text corpora.
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(4.0, 0.6, size=5000).astype(int), 1, 400)
    bucketed = BucketBatchSampler(lengths, 64, seed=0).padding_fraction()
    random_order = BucketBatchSampler(
        lengths, 64, seed=0, bucket_size_multiplier=1
    )  # pools of one batch: sorting inside a batch changes nothing, this is random batching
    random_fraction = random_order.padding_fraction()
    assert random_fraction > 0.6
    assert bucketed < 0.1 and bucketed < random_fraction / 5
    for epoch in range(1, 4):
        assert BucketBatchSampler(lengths, 64, seed=0).padding_fraction(epoch) < 0.1


def test_padding_fraction_follows_set_epoch():
    lengths = np.random.default_rng(3).integers(1, 100, size=300)
    sampler = BucketBatchSampler(lengths, 8, bucket_size_multiplier=2)
    sampler.set_epoch(4)
    assert sampler.padding_fraction() == sampler.padding_fraction(4)
    assert sampler.padding_fraction() == pytest.approx(
        padded_fraction(list(sampler), np.asarray(lengths))
    )


# --- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
        ({"batch_size": 2.5}, "batch_size must be an int >= 1, got 2.5"),
        ({"num_replicas": 0}, "num_replicas must be an int >= 1 (the DDP world size), got 0"),
        ({"rank": -1}, "rank must be an int >= 0, got -1"),
        ({"num_replicas": 2, "rank": 2}, "rank must be in [0, num_replicas) = [0, 2), got 2"),
        ({"seed": -3}, "seed must be an int >= 0, got -3"),
        ({"bucket_size_multiplier": 0}, "bucket_size_multiplier must be an int >= 1, got 0"),
        ({"lengths": []}, "lengths is empty: there is nothing to batch"),
        ({"lengths": [3, -1, 2]}, "lengths must be >= 0, got lengths[1] = -1"),
        ({"lengths": [1.5, 2]}, "lengths must be ints, got dtype float64"),
        ({"lengths": [[1, 2]]}, "lengths must be a 1-D sequence of ints, got shape (1, 2)"),
        (
            {"lengths": [1, 2, 3], "batch_size": 2, "num_replicas": 2, "drop_last": True},
            "drop_last=True leaves no batch: 3 items are fewer than batch_size=2 x "
            "num_replicas=2; use drop_last=False or a smaller batch_size",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"lengths": [3, 1, 2], "batch_size": 2, **kwargs}
    with pytest.raises(ConfigError) as info:
        BucketBatchSampler(args.pop("lengths"), args.pop("batch_size"), **args)
    assert str(info.value) == message


def test_bad_epoch():
    with pytest.raises(ConfigError, match=r"^epoch must be an int >= 0, got -1$"):
        BucketBatchSampler([1, 2], 1).set_epoch(-1)


# --- collate ---------------------------------------------------------------------------------


def test_collate_pads_to_the_longest_and_keeps_values():
    items = [([5, 6, 7], 1), (torch.tensor([8]), 0), (np.array([9, 10], dtype=np.int32), 2)]
    batch = PadCollate(pad_id=0)(items)
    assert batch.ids.dtype == torch.int64 and batch.ids.shape == (3, 3)
    assert batch.ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert batch.lengths.tolist() == [3, 1, 2]
    assert batch.labels.tolist() == [1, 0, 2]
    assert batch.num_tokens == 6 and len(batch) == 3
    assert batch.mask().tolist() == [[True] * 3, [True, False, False], [True, True, False]]


def test_collate_pad_id_and_missing_labels():
    batch = PadCollate(pad_id=1)([([4, 4], None), ([3], None)])
    assert batch.ids.tolist() == [[4, 4], [3, 1]]
    assert batch.labels is None


def test_collate_truncates_only_when_asked():
    long = list(range(1, 21))
    assert PadCollate()([(long, 0)]).ids.shape == (1, 20)
    batch = PadCollate(max_length=5)([(long, 0), ([7, 8], 1)])
    assert batch.ids.tolist() == [[1, 2, 3, 4, 5], [7, 8, 0, 0, 0]]
    assert batch.lengths.tolist() == [5, 2]
    # The batch is padded to its longest sequence after truncation, not to max_length.
    assert PadCollate(max_length=50)([([1, 2], 0)]).ids.shape == (1, 2)


def test_batch_to_keeps_lengths_on_cpu():
    batch = PadCollate()([([1, 2], 0), ([3], 1)]).to("cpu")
    assert isinstance(batch, Batch)
    assert batch.lengths.device.type == "cpu"
    # pack_padded_sequence accepts the lengths as they come.
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        batch.ids, batch.lengths, batch_first=True, enforce_sorted=False
    )
    assert packed.data.tolist() == [1, 3, 2]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([([1, 2], 0), ([], 1)], "item 1 of the batch is an empty sequence: an RNN cannot take"),
        ([([1, 2], 0), (torch.tensor([]), 1)], "item 1 of the batch: token ids must be integers"),
        ([([1], 0), ([2], None)], "item 1 of the batch has no label but item 0 has one"),
        ([([1, 2], 0), [3, 4]], "item 1 of the batch: token ids must be a list of ints"),
        ([([[1, 2]], 0)], "item 0 of the batch: token ids must be 1-D, got shape (1, 2)"),
        ([([1], 0, 5)], "item 0 of the batch: expected an (ids, label) pair"),
        ([], "cannot collate an empty batch"),
    ],
)
def test_collate_errors_name_the_item(items, message):
    with pytest.raises(DataError) as info:
        PadCollate()(items)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pad_id": -1}, "pad_id must be an int >= 0, got -1"),
        ({"max_length": 0}, "max_length must be None or an int >= 1, got 0"),
    ],
)
def test_collate_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError) as info:
        PadCollate(**kwargs)
    assert str(info.value) == message


# --- dataset + DataLoader --------------------------------------------------------------------


def test_dataset_and_loader_work_together():
    rng = np.random.default_rng(0)
    ids_list = [rng.integers(1, 50, size=rng.integers(1, 30)).tolist() for _ in range(100)]
    labels = rng.integers(0, 3, size=100)
    dataset = SequenceDataset(ids_list, labels)
    sampler = BucketBatchSampler(dataset.lengths, 16, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=PadCollate(pad_id=0))
    seen = 0
    for batch, indices in zip(loader, sampler, strict=True):
        for row, i in enumerate(indices):
            n = len(ids_list[i])
            assert batch.lengths[row] == n
            assert batch.ids[row, :n].tolist() == ids_list[i]
            assert batch.labels[row] == labels[i]
        seen += len(batch)
    assert seen == 100


def test_dataset_errors():
    with pytest.raises(DataError, match=r"^row 2 is an empty sequence"):
        SequenceDataset([[1], [2, 3], []])
    with pytest.raises(DataError, match=r"^labels has 1 entries for 2 sequences"):
        SequenceDataset([[1], [2]], [0])
    with pytest.raises(DataError, match=r"^labels must be integer class ids"):
        SequenceDataset([[1], [2]], ["pos", "neg"])
    assert SequenceDataset([[1, 2]])[0][1] is None
