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


@dataclass
class LMBatch:
    """One truncated-BPTT window.

    Attributes:
        inputs: (B, T) token ids.
        targets: (B, T) the next token of each input.
        first: True for the first window of a pass: there is no state to carry into it.
    """

    inputs: Tensor
    targets: Tensor
    first: bool = False

    def to(self, device: torch.device | str) -> LMBatch:
        return LMBatch(self.inputs.to(device), self.targets.to(device), self.first)

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
    the window boundaries (training only), and each item is an `LMBatch`.

    Args:
        ids: (N,) the token stream.
        batch_size: rows B read in parallel.
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
        self.ids = torch.as_tensor(np.asarray(ids), dtype=torch.long).reshape(-1)
        self.batch_size, self.bptt = batch_size, bptt
        self.shift_per_epoch, self.seed = shift_per_epoch, seed
        self.offset = 0
        self.rows = batchify(self.ids, batch_size)  # (B, N // B)

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
            self.rows = batchify(self.ids[offset:], self.batch_size)

    def __len__(self) -> int:
        return -(-(self.rows.size(1) - 1) // self.bptt)  # ceil((L - 1) / T)

    def __iter__(self) -> Iterator[LMBatch]:
        length = self.rows.size(1)
        for k, start in enumerate(range(0, length - 1, self.bptt)):
            stop = min(start + self.bptt, length - 1)
            yield LMBatch(self.rows[:, start:stop], self.rows[:, start + 1 : stop + 1], k == 0)
