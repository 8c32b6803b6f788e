"""Consecutive windows for stateful training: the state runs on from one window to the next.

A model trained only on fixed windows from a zero state has never seen a long carried state,
yet a streaming forecaster carries one from the first observation. Stateful training runs like
the language model's truncated BPTT: each series' steps are cut into a few long *streams*, the
streams side by side make the batch rows, and the windows of `window` steps are visited in order,
so the final state of one window is the initial state of the next (the task detaches it)::

    stream 0: s0 s1 s2 s3 | s4 s5 s6 s7 | s8 s9
    stream 1: t0 t1 t2 t3 | t4 t5 t6 t7 | t8 t9 t10 t11     (window 4; ragged ends masked)
              batch 0       batch 1       batch 2

Every step is a forecast origin: the head runs after each step and is scored on the `horizon`
steps after it wherever those lie in the scored span (`StreamBatch.valid`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.errors import ConfigError
from rnnkit.tasks.forecasting.windows import Baseline, StackedSeries, base_offsets, baseline_values


@dataclass
class StreamBatch:
    """One window of every stream.

    Attributes:
        x: (B, T, F) input features.
        future: (B, T, H, Ff) known-future features of the horizon after each step.
        target: (B, T, H, K) scaled targets of those horizons (masked where not `valid`).
        base: (B, T, H, K) the baseline of each horizon (scaled units).
        valid: (B, T) steps that are scored origins.
        first: the first window of a pass: the state starts from zeros.
    """

    x: Tensor
    future: Tensor
    target: Tensor
    base: Tensor
    valid: Tensor
    first: bool

    def to(self, device: torch.device | str) -> StreamBatch:
        moved = [t.to(device) for t in (self.x, self.future, self.target, self.base, self.valid)]
        return StreamBatch(*moved, first=self.first)

    @property
    def num_tokens(self) -> int:
        """Scored origins in the batch (the engine's throughput unit)."""
        return int(self.valid.sum())

    def __len__(self) -> int:
        return self.num_tokens


class StreamLoader:
    """Windows of parallel streams in order, repeated `passes` times per epoch.

    Args:
        stacked: the series, end to end.
        runs: per series (first, last) local steps the streams run over, inclusive; each
            stream starts from a zero state at its first step.
        scored: per series (first, last) local origins that are scored (within `runs`).
        window: steps per window (truncated-BPTT length).
        horizon, baseline, season: as for `WindowLoader`.
        streams: the most streams to cut all series into (the batch size); a series is cut
            into pieces of a common length so the rows stay aligned.
        min_stream_windows: a piece spans at least this many windows, so its state is carried
            across window boundaries a few times (short series make fewer, longer streams).
        min_epoch_windows: repeat the pass until an epoch scores at least this many origins.
        min_epoch_steps: ... and makes at least this many batches (a long series in few
            streams would otherwise give an epoch of a handful of optimizer steps).
    """

    def __init__(
        self,
        stacked: StackedSeries,
        runs: Sequence[tuple[int, int]],
        scored: Sequence[tuple[int, int]],
        *,
        window: int,
        horizon: int,
        baseline: Baseline,
        season: int,
        streams: int,
        min_stream_windows: int = 4,
        min_epoch_windows: int = 0,
        min_epoch_steps: int = 0,
    ) -> None:
        self.stacked = stacked
        total = sum(max(hi - lo + 1, 0) for lo, hi in runs)
        chunk = max(min_stream_windows * window, math.ceil(total / max(streams, 1)))
        starts, ends, series = [], [], []  # global steps, end exclusive
        for s, (lo, hi) in enumerate(runs):
            offset = int(stacked.starts[s])
            for begin in range(lo, hi + 1, chunk):
                starts.append(offset + begin)
                ends.append(offset + min(begin + chunk, hi + 1))
                series.append(s)
        self._starts = torch.tensor(starts, dtype=torch.long)  # (B,)
        self._ends = torch.tensor(ends, dtype=torch.long)
        self._series = torch.tensor(series, dtype=torch.long)
        bounds = [
            (int(stacked.starts[s]) + lo, int(stacked.starts[s]) + hi)
            for s, (lo, hi) in enumerate(scored)
        ]
        self._scored = torch.tensor(bounds, dtype=torch.long)[self._series]  # (B, 2) inclusive
        self._series_start = torch.as_tensor(stacked.starts[:-1])[self._series]  # (B,)
        self.window = window
        longest = max((e - b for b, e in zip(starts, ends, strict=True)), default=0)
        self.windows_per_pass = math.ceil(longest / window)
        self._ahead = torch.arange(1, horizon + 1)
        self._back = base_offsets(horizon, season, baseline)
        scored_per_pass = sum(int(b.valid.sum()) for b in self._pass())
        self.passes = max(
            1,
            math.ceil(min_epoch_windows / max(scored_per_pass, 1)),
            math.ceil(min_epoch_steps / max(self.windows_per_pass, 1)),
        )
        self._start = 0  # the next pass's first batch (start_at)
        self.batch_sampler = self  # the engine calls set_epoch / start_at on it

    def set_epoch(self, epoch: int) -> None:
        """Order is the point of stateful training: every epoch visits the windows alike."""
        del epoch

    def shard(self, num_replicas: int, rank: int) -> None:
        """Stateful training is not split across processes (see the message)."""
        del num_replicas, rank
        raise ConfigError(
            "train_mode stateful trains in one process: its streams run in order with their "
            "state carried, and a series cut into fewer streams than ranks would leave ranks "
            "idle; use --set train_mode=windows under torchrun"
        )

    def start_at(self, position: int) -> None:
        """Begin the next pass at batch `position` of the epoch (a mid-epoch resume)."""
        if not 0 <= position <= len(self):
            raise ConfigError(f"position must be in [0, {len(self)}], got {position}")
        self._start = position

    @property
    def num_streams(self) -> int:
        return len(self._starts)

    def __len__(self) -> int:
        return self.passes * self.windows_per_pass

    def __iter__(self) -> Iterator[StreamBatch]:
        start, self._start = self._start, 0
        for k in range(start, len(self)):
            yield self.batch(k % self.windows_per_pass)

    def _pass(self) -> Iterator[StreamBatch]:
        for j in range(self.windows_per_pass):
            yield self.batch(j)

    def batch(self, j: int) -> StreamBatch:
        """Window `j` of every stream."""
        s = self.stacked
        steps = self._starts[:, None] + j * self.window + torch.arange(self.window)  # (B, T)
        inside = steps < self._ends[:, None]
        valid = inside & (steps >= self._scored[:, :1]) & (steps <= self._scored[:, 1:])
        last = len(s.values) - 1
        steps = torch.minimum(steps, (self._ends - 1)[:, None])  # ragged ends repeat the last
        ahead = (steps[..., None] + self._ahead).clamp(max=last)  # (B, T, H)
        # before a full season, the baseline repeats the series' first value
        first = self._series_start[:, None, None]
        base = baseline_values(s.values, steps, self._back, len(self._ahead), first)  # (B, T, H, K)
        return StreamBatch(s.features[steps], s.future[ahead], s.values[ahead], base, valid, j == 0)
