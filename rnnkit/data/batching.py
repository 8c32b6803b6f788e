"""Batches of variable-length sequences with little padding.

An LSTM over a padded batch (B, T) costs B * T steps of work whatever the real lengths are, so the
padding is paid for in time. Batches drawn in random order are padded to their longest member; on
review text that wastes 40-45% of the work. Sorting by length fixes that but gives the same batches
in the same order every epoch, so we sort only within random pools (the "bucketing" of AllenNLP's
`BucketIterator` and fairseq): shuffle, cut into pools of `batch_size * bucket_size_multiplier`,
sort each pool by length, cut batches, shuffle the batch order.

Typical use::

    dataset = SequenceDataset(ids_list, labels)
    sampler = BucketBatchSampler(dataset.lengths, batch_size=64, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=PadCollate(pad_id=0))
    for epoch in range(epochs):
        sampler.set_epoch(epoch)  # a new plan each epoch, the same on every DDP rank
        for batch in loader:
            ...  # batch.ids (B, T), batch.lengths (B,), batch.labels (B,)

Padding is on the right: `batch.ids[i, : batch.lengths[i]]` are the real tokens of item i.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset, Sampler

from rnnkit.errors import ConfigError, DataError

__all__ = ["Batch", "BucketBatchSampler", "PadCollate", "SequenceDataset"]

SequenceLike = Sequence[int] | np.ndarray | torch.Tensor


def _check_int(name: str, value: object, *, minimum: int, accepted: str) -> int:
    """`value` as an int, or a ConfigError naming the argument and what it accepts."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be {accepted}, got {value!r}")
    return int(value)


class BucketBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices whose lengths are close, so batches carry little padding.

    Each epoch's plan, with `shuffle=True`:

    1. permute all indices with a generator seeded by `(seed, epoch)`;
    2. cut the permutation into pools of `batch_size * num_replicas * bucket_size_multiplier`;
    3. sort each pool by length (stable, so ties keep their random order) and cut it into
       batches of `batch_size`; only the very last batch of the epoch can be short, because
       every pool but the last is a whole number of batches;
    4. group each run of `num_replicas` consecutive batches into one *step* and shuffle the
       steps. Rank `r` takes batch `r` of every step.

    Grouping by step keeps the ranks of one DDP step on similar lengths, so no rank waits for
    another that drew much longer sequences. Every rank computes the same plan from `seed` and
    the epoch, so no communication is needed.

    With `shuffle=False` the plan is all indices sorted by length (shortest first, ties by
    index) cut into batches, the same every epoch: the least padding, for evaluation.

    Equal step counts across ranks (DDP hangs otherwise): when the batches do not divide evenly
    among the ranks, `drop_last=False` repeats batches from the start of the plan to fill the
    last step (so a few items are seen twice per epoch, as with `DistributedSampler`), and
    `drop_last=True` drops the incomplete last step. `drop_last=True` also drops a final batch
    shorter than `batch_size`.

    Args:
        lengths: the length of every item, in dataset order. If the collate truncates to
            `max_length`, pass lengths clipped to it, or the buckets (and `padding_fraction`)
            describe sequences the model never sees.
        batch_size: items per batch on each rank.
        shuffle: a new random plan each epoch (training) or one sorted plan (evaluation).
        seed: seeds the plan together with the epoch; the same on every rank.
        drop_last: drop the short final batch and an incomplete final step (see above).
        num_replicas: the number of data-parallel ranks (the DDP world size).
        rank: this process's rank, in `[0, num_replicas)`.
        bucket_size_multiplier: pool size in units of one step's batches. Larger pools sort
            more items together (less padding) but make batch composition less random; 50
            keeps padding under 10% on review text while pools still mix thousands of items.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
        bucket_size_multiplier: int = 50,
    ) -> None:
        super().__init__()
        self.batch_size = _check_int("batch_size", batch_size, minimum=1, accepted="an int >= 1")
        self.num_replicas = _check_int(
            "num_replicas", num_replicas, minimum=1, accepted="an int >= 1 (the DDP world size)"
        )
        self.rank = _check_int("rank", rank, minimum=0, accepted="an int >= 0")
        if self.rank >= self.num_replicas:
            raise ConfigError(
                f"rank must be in [0, num_replicas) = [0, {self.num_replicas}), got {rank}"
            )
        self.seed = _check_int("seed", seed, minimum=0, accepted="an int >= 0")
        self.bucket_size_multiplier = _check_int(
            "bucket_size_multiplier", bucket_size_multiplier, minimum=1, accepted="an int >= 1"
        )
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.lengths = self._check_lengths(lengths)
        self.epoch = 0
        self._start = 0  # the next pass's first step (start_at)
        if len(self) == 0:
            raise ConfigError(
                f"drop_last=True leaves no batch: {len(self.lengths)} items are fewer than "
                f"batch_size={self.batch_size} x num_replicas={self.num_replicas}; "
                "use drop_last=False or a smaller batch_size"
            )

    @staticmethod
    def _check_lengths(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
        arr = np.asarray(lengths)
        if arr.ndim != 1:
            raise ConfigError(f"lengths must be a 1-D sequence of ints, got shape {arr.shape}")
        if arr.size == 0:
            raise ConfigError("lengths is empty: there is nothing to batch")
        if arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            else:
                raise ConfigError(f"lengths must be ints, got dtype {arr.dtype}")
        negative = np.flatnonzero(arr < 0)
        if negative.size:
            i = int(negative[0])
            raise ConfigError(f"lengths must be >= 0, got lengths[{i}] = {int(arr[i])}")
        return arr.astype(np.int64, copy=False)

    def set_epoch(self, epoch: int) -> None:
        """Selects the plan of `epoch`; call it before each epoch on every rank, as in DDP."""
        self.epoch = _check_int("epoch", epoch, minimum=0, accepted="an int >= 0")

    def shard(self, num_replicas: int, rank: int) -> None:
        """Become rank `rank` of `num_replicas` (what the training engine calls under torchrun).

        With `batch_size` per rank, a step of N ranks covers the same items as one process's
        batch of N x `batch_size` (pools and steps are cut alike), so N processes train on the
        batches one process would, split by rows.
        """
        num_replicas = _check_int(
            "num_replicas", num_replicas, minimum=1, accepted="an int >= 1 (the DDP world size)"
        )
        rank = _check_int("rank", rank, minimum=0, accepted="an int >= 0")
        if rank >= num_replicas:
            raise ConfigError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.num_replicas, self.rank = num_replicas, rank
        if len(self) == 0:
            raise ConfigError(
                f"{len(self.lengths)} items make no step of batch_size={self.batch_size} on "
                f"each of {num_replicas} processes; use fewer processes or a smaller batch_size"
            )

    def start_at(self, position: int) -> None:
        """Begin the next pass at step `position` of the epoch's plan (a mid-epoch resume).

        The plan is a function of (seed, epoch), so skipping is index arithmetic: nothing is
        replayed. Later passes start at 0 again.
        """
        position = _check_int("position", position, minimum=0, accepted="an int >= 0")
        if position > len(self):
            raise ConfigError(f"position must be in [0, {len(self)}], got {position}")
        self._start = position

    def _num_batches(self) -> int:
        """Batches in the whole plan, before they are shared among ranks."""
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        """Batches this rank yields per epoch (the same on every rank and every epoch)."""
        batches = self._num_batches()
        if self.drop_last:
            return batches // self.num_replicas
        return math.ceil(batches / self.num_replicas)

    def _batches(self, epoch: int) -> list[np.ndarray]:
        """The plan's batches, before steps are formed: sorted runs, one pool after another."""
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(len(self.lengths))
            pool = self.batch_size * self.num_replicas * self.bucket_size_multiplier
            chunks = []
            for start in range(0, len(order), pool):
                chunk = order[start : start + pool]
                chunks.append(chunk[np.argsort(self.lengths[chunk], kind="stable")])
            order = np.concatenate(chunks)
        else:
            order = np.argsort(self.lengths, kind="stable")
        # Pools hold whole batches, so cutting the concatenation never mixes two pools.
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def _steps(self, epoch: int) -> list[list[np.ndarray]]:
        """The plan: one list of `num_replicas` batches per step, step `s` rank `r` at [s][r]."""
        batches = self._batches(epoch)
        replicas = self.num_replicas
        steps = [batches[i : i + replicas] for i in range(0, len(batches), replicas)]
        if steps and len(steps[-1]) < replicas:
            if self.drop_last:
                steps.pop()
            else:
                missing = replicas - len(steps[-1])
                steps[-1] = steps[-1] + [batches[i % len(batches)] for i in range(missing)]
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch, 1])  # apart from the permutation's
            steps = [steps[i] for i in rng.permutation(len(steps))]
        assert len(steps) == len(self), "plan and __len__ disagree"
        return steps

    def __iter__(self) -> Iterator[list[int]]:
        start, self._start = self._start, 0
        for step in self._steps(self.epoch)[start:]:
            yield step[self.rank].tolist()

    def padding_fraction(self, epoch: int | None = None) -> float:
        """Padded slots / all slots of one epoch's plan, over all ranks.

        A batch of lengths `l_1..l_B` occupies `B * max(l)` slots, `sum(l)` of them real tokens.
        Batches repeated to even out the ranks count as often as they run.

        Args:
            epoch: the epoch whose plan to measure; None for the one set by `set_epoch`.

        Returns:
            A fraction in [0, 1); 0.0 if every slot is a real token (or no slot exists).
        """
        if epoch is None:
            epoch = self.epoch
        slots = tokens = 0
        for step in self._steps(epoch):
            for batch in step:
                batch_lengths = self.lengths[batch]
                slots += len(batch) * int(batch_lengths.max())
                tokens += int(batch_lengths.sum())
        return 0.0 if slots == 0 else 1.0 - tokens / slots


@dataclass(frozen=True)
class Batch:
    """A right-padded batch of token ids.

    Attributes:
        ids: (B, T) int64 token ids, `pad_id` after each sequence's end; T is the longest
            length in the batch.
        lengths: (B,) int64 real length of each sequence, all >= 1. `to()` leaves it on the
            CPU because `pack_padded_sequence` requires CPU lengths.
        labels: (B,) int64 class ids, or None for unlabelled data.
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def num_tokens(self) -> int:
        """Real (non-padding) tokens in the batch."""
        return int(self.lengths.sum())

    def mask(self) -> torch.Tensor:
        """(B, T) bool, True at real tokens and False at padding, on the device of `ids`."""
        steps = torch.arange(self.ids.shape[1], device=self.ids.device)
        return steps[None, :] < self.lengths.to(self.ids.device)[:, None]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with `ids` and `labels` on `device`; `lengths` stays on the CPU (see above)."""
        return Batch(
            self.ids.to(device, non_blocking=non_blocking),
            self.lengths,
            None if self.labels is None else self.labels.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Batch:
        """Page-locked copy, called by `DataLoader(pin_memory=True)` for faster GPU copies."""
        return Batch(
            self.ids.pin_memory(),
            self.lengths,
            None if self.labels is None else self.labels.pin_memory(),
        )


def _as_ids(ids: object, where: str) -> torch.Tensor:
    """`ids` as a 1-D int64 tensor, or a DataError naming `where` it came from."""
    if isinstance(ids, torch.Tensor):
        tensor = ids
    elif isinstance(ids, np.ndarray):
        tensor = torch.from_numpy(ids)
    elif isinstance(ids, Sequence) and not isinstance(ids, (str, bytes)):
        try:
            tensor = torch.tensor(ids, dtype=torch.int64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise DataError(f"{where}: token ids must be a flat list of ints ({err})") from None
    else:
        raise DataError(
            f"{where}: token ids must be a list of ints, a 1-D tensor or a 1-D array, "
            f"got {type(ids).__name__}"
        )
    if tensor.ndim != 1:
        raise DataError(f"{where}: token ids must be 1-D, got shape {tuple(tensor.shape)}")
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise DataError(f"{where}: token ids must be integers, got dtype {tensor.dtype}")
    if len(tensor) == 0:
        raise DataError(
            f"{where} is an empty sequence: an RNN cannot take a zero-length sequence; "
            "drop empty texts before batching"
        )
    return tensor.to(torch.int64)


class PadCollate:
    """Turns a list of `(ids, label)` pairs into one right-padded `Batch`.

    Args:
        pad_id: the id written after each sequence's end (the vocabulary's padding id).
        max_length: keep only the first `max_length` tokens of longer sequences; None keeps
            everything. Truncation is explicit because silently cut reviews lose their ending,
            which often carries the verdict.
    """

    def __init__(self, pad_id: int = 0, max_length: int | None = None) -> None:
        self.pad_id = _check_int("pad_id", pad_id, minimum=0, accepted="an int >= 0")
        self.max_length = (
            None
            if max_length is None
            else _check_int("max_length", max_length, minimum=1, accepted="None or an int >= 1")
        )

    def __repr__(self) -> str:
        return f"PadCollate(pad_id={self.pad_id}, max_length={self.max_length})"

    def __call__(self, items: Sequence[tuple[SequenceLike, int | None]]) -> Batch:
        """Pads `items` to the longest of them (after truncation).

        Raises:
            DataError: an item is not an `(ids, label)` pair, has no tokens, or has a label
                while another item has none; the message names the item's place in the batch.
        """
        if len(items) == 0:
            raise DataError("cannot collate an empty batch")
        sequences: list[torch.Tensor] = []
        labels: list[object] = []
        for i, item in enumerate(items):
            where = f"item {i} of the batch"
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise DataError(f"{where}: expected an (ids, label) pair, got {item!r:.80}")
            ids = _as_ids(item[0], where)
            sequences.append(ids if self.max_length is None else ids[: self.max_length])
            labels.append(item[1])
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)  # (B,)
        ids = pad_sequence(sequences, batch_first=True, padding_value=self.pad_id)  # (B, T)
        return Batch(ids, lengths, self._labels(labels))

    @staticmethod
    def _labels(labels: list[object]) -> torch.Tensor | None:
        missing = [i for i, label in enumerate(labels) if label is None]
        if len(missing) == len(labels):
            return None
        if missing:
            first = next(i for i, label in enumerate(labels) if label is not None)
            raise DataError(
                f"item {missing[0]} of the batch has no label but item {first} has one; "
                "label every item or none"
            )
        try:
            return torch.tensor([int(label) for label in labels], dtype=torch.int64)  # (B,)
        except (TypeError, ValueError) as err:
            raise DataError(f"labels must be integer class ids ({err})") from None


class SequenceDataset(Dataset[tuple[torch.Tensor, int | None]]):
    """Token-id sequences with optional integer labels; item `i` is `(ids, label)`.

    Sequences are converted to int64 tensors once here, so collating costs only copies.

    Args:
        ids_list: one sequence of token ids per item (lists of ints, 1-D tensors or arrays).
        labels: one class id per item, or None for unlabelled data (items then carry None).

    Raises:
        DataError: a sequence is empty or not integer ids (naming its row), or `labels` has a
            different length than `ids_list`.
    """

    def __init__(
        self, ids_list: Sequence[SequenceLike], labels: Sequence[int] | np.ndarray | None = None
    ) -> None:
        self.sequences = [_as_ids(ids, f"row {i}") for i, ids in enumerate(ids_list)]
        if labels is not None:
            if len(labels) != len(self.sequences):
                raise DataError(
                    f"labels has {len(labels)} entries for {len(self.sequences)} sequences; "
                    "give one label per sequence"
                )
            try:
                labels = [int(label) for label in labels]
            except (TypeError, ValueError) as err:
                raise DataError(
                    f"labels must be integer class ids; map string labels to ids first ({err})"
                ) from None
        self.labels: list[int] | None = labels

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | None]:
        label = None if self.labels is None else self.labels[index]
        return self.sequences[index], label

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64, the length of every sequence, for `BucketBatchSampler`."""
        return np.array([len(s) for s in self.sequences], dtype=np.int64)
