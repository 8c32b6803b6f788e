"""Language-model batches: one token stream, contiguous rows, truncated-BPTT windows.

The corpus is one long id stream. It is cut into `batch_size` equal rows laid side by side, so
row b is one contiguous stretch of text, and the rows are read left to right in windows of
`bptt` steps. Targets are the inputs shifted by one token:

    stream:  t0 t1 t2 ... t23                       (24 ids, batch_size 3, bptt 3)

    rows:    b0: t0  t1  t2  | t3  t4  t5  | t6  t7
             b1: t8  t9  t10 | t11 t12 t13 | t14 t15
             b2: t16 t17 t18 | t19 t20 t21 | t22 t23
                 └ window 0 ─┘ └ window 1 ─┘ └ w 2 ┘

    window 0: inputs  [[t0 t1 t2], [t8 t9 t10], [t16 t17 t18]]
              targets [[t1 t2 t3], [t9 t10 t11], [t17 t18 t19]]

Window k+1 of row b continues exactly where window k of row b stopped, so the hidden state that
window k ends with is the right starting state for window k+1: the model sees unbroken context
across windows, while gradients stop at the window boundary (the state is detached). That is
truncated back-propagation through time (Williams & Peng, 1990), as in PyTorch's
`word_language_model` example. The last window may be shorter than `bptt`.

`offset` (set per epoch in training by `set_epoch`) drops the first few ids of the stream, so the
window boundaries fall at different places in each epoch instead of always cutting the same words.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import ConfigError
from rnnkit.text.token_file import SliceReader


@dataclass
class LMBatch:
    """One truncated-BPTT window.

    Attributes:
        inputs: (B, T) token ids.
        targets: (B, T) the next token of each input.
        first: True for the first window of a pass: there is no state to carry into it.
        positions: (B,) where each row's first input is in the stream (CPU, int64), for
            per-position tables such as a stored teacher's outputs; None when unknown.
    """

    inputs: Tensor
    targets: Tensor
    first: bool = False
    positions: Tensor | None = None

    def to(self, device: torch.device | str) -> LMBatch:
        """The ids on `device`; `positions` stay on the CPU, where the tables they index are."""
        return LMBatch(self.inputs.to(device), self.targets.to(device), self.first, self.positions)

    @property
    def num_tokens(self) -> int:
        """Predicted tokens in the window (B x T)."""
        return self.targets.numel()

    def __len__(self) -> int:
        return self.inputs.size(0)


def batchify(ids: np.ndarray | Tensor, batch_size: int) -> Tensor:
    """Cut a stream into `batch_size` contiguous rows, dropping the remainder at the end.

    Args:
        ids: (N,) token ids.
        batch_size: the number of rows B.

    Returns:
        (B, N // B) int64; row b holds ids[b * (N // B) : (b + 1) * (N // B)].

    Raises:
        ConfigError: fewer than two ids per row (no input/target pair).
    """
    ids = torch.as_tensor(np.asarray(ids), dtype=torch.long).reshape(-1)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    per_row = ids.numel() // batch_size
    if per_row < 2:
        raise ConfigError(
            f"{ids.numel()} tokens cannot fill {batch_size} rows of at least 2 tokens; "
            "use a smaller batch_size or more text"
        )
    return ids[: per_row * batch_size].view(batch_size, per_row)


class LMWindows:
    """The windows of one token stream, in order; iterate once per epoch.

    Behaves like a `DataLoader` for `fit`: `len()` gives the windows per pass, `set_epoch` moves
    the window boundaries (training only), `shard` gives a data-parallel rank its rows,
    `start_at` resumes inside an epoch, and each item is an `LMBatch`.

    The stream is never copied whole: each window reads its (B, T + 1) block of ids and turns
    only that into an int64 tensor. A `numpy.memmap` (a token file larger than memory, see
    `rnnkit.text.token_file`) is read with `os.pread`, so the pages read do not stay in the
    process's resident memory.

    Args:
        ids: (N,) the token stream: a NumPy array or memmap, a tensor, or a list.
        batch_size: rows B read in parallel (by this process, when sharded).
        bptt: steps per window T (how far gradients flow back).
        shift_per_epoch: in `set_epoch(e)`, start the stream at a pseudo-random offset in
            [0, bptt) chosen from `seed` and `e`; False always starts at 0 (evaluation).
        seed: seeds the offsets.

    Raises:
        ConfigError: `bptt` < 1, or too little text for `batch_size` rows.
    """

    def __init__(
        self,
        ids: np.ndarray | Tensor,
        batch_size: int,
        bptt: int,
        *,
        shift_per_epoch: bool = False,
        seed: int = 0,
    ) -> None:
        if bptt < 1:
            raise ConfigError(f"bptt must be at least 1, got {bptt}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.reader = SliceReader(ids)
        self.batch_size, self.bptt = batch_size, bptt
        self.shift_per_epoch, self.seed = shift_per_epoch, seed
        self.offset = 0
        self.num_replicas, self.rank = 1, 0
        self._start = 0  # the window the next pass begins at (`start_at`)
        self._row_length = self._layout()

    def _layout(self) -> int:
        """Ids per row L for the current offset and sharding, as `batchify` cuts them."""
        rows = self.batch_size * self.num_replicas
        available = len(self.reader) - self.offset
        per_row = available // rows
        if per_row < 2:
            raise ConfigError(
                f"{available} tokens cannot fill {rows} rows of at least 2 tokens; "
                "use a smaller batch_size or more text"
            )
        return per_row

    @property
    def batch_sampler(self) -> LMWindows:
        """`fit` calls `loader.batch_sampler.set_epoch(e)`; the windows are their own sampler."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Choose epoch `epoch`'s offset (a no-op unless `shift_per_epoch`)."""
        if not self.shift_per_epoch:
            return
        offset = int(np.random.default_rng([self.seed, epoch]).integers(0, self.bptt))
        if offset != self.offset:
            self.offset = offset
            self._row_length = self._layout()

    def shard(self, num_replicas: int, rank: int) -> None:
        """Read rank `rank`'s rows of `num_replicas` data-parallel processes.

        The stream (after the epoch's offset) is cut into `batch_size * num_replicas` rows, as
        `batchify(ids, batch_size * num_replicas)` cuts it, and this rank reads rows
        `[rank * batch_size, (rank + 1) * batch_size)`: 2 ranks of batch_size B / 2 read the
        windows 1 rank of batch_size B reads, split by rows, and `len()` is the same on every
        rank. Composes with `set_epoch` in either order.

        Raises:
            ConfigError: `num_replicas` < 1, `rank` outside [0, num_replicas), or too little
                text for the rows.
        """
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ConfigError(
                f"shard needs num_replicas >= 1 and 0 <= rank < num_replicas, got "
                f"num_replicas={num_replicas}, rank={rank}"
            )
        previous = self.num_replicas, self.rank
        self.num_replicas, self.rank = num_replicas, rank
        try:
            self._row_length = self._layout()
        except ConfigError:
            self.num_replicas, self.rank = previous
            raise

    def start_at(self, position: int) -> None:
        """Begin the next pass at window `position` of this epoch (a resume inside an epoch).

        Only the next `__iter__` is affected; later passes start at window 0 again. The window
        is found by index arithmetic, not by reading the ones before it, and `batch.first` is
        True only for window 0.

        Raises:
            ConfigError: `position` outside [0, len()].
        """
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
            raise ConfigError(f"start_at takes a window index, got {position!r}")
        if not 0 <= position <= len(self):
            raise ConfigError(
                f"start_at({position}) is outside this epoch's windows: 0 to {len(self)}"
            )
        self._start = int(position)

    def __len__(self) -> int:
        return -(-(self._row_length - 1) // self.bptt)  # ceil((L - 1) / T)

    def __iter__(self) -> Iterator[LMBatch]:
        length, first_window = self._row_length, self._start
        self._start = 0
        rows = self.rank * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
        row_starts = self.offset + rows * length
        for k in range(first_window, len(self)):
            start = k * self.bptt
            stop = min(start + self.bptt, length - 1)
            block = torch.from_numpy(self.reader.read(row_starts + start, stop - start + 1))
            positions = torch.from_numpy(row_starts + start)
            yield LMBatch(block[:, :-1], block[:, 1:], k == 0, positions)
