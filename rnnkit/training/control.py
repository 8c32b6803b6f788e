"""When the training loop saves and stops: the time budget, the checkpoint cadence, SIGTERM.

`fit` asks a `Progress` before every step whether a checkpoint is due and whether the budget is
spent, and under `torchrun` the ranks agree on both (and on a SIGTERM any of them saw) in one
small all-reduce, so no rank stops or saves alone. The resume point (the epoch's batch position,
its running totals, the RNG states read from a checkpoint) lives here too.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rnnkit.training import distributed
from rnnkit.training.checkpoint import restore_rank_state

if TYPE_CHECKING:
    from rnnkit.training.engine import Objective, TrainConfig


@dataclass(frozen=True)
class Budget:
    """A wall-clock budget: `fraction()` of it used so far, and whether it is `spent()`."""

    started: float  # time.perf_counter() when training (of this run, resumes included) began
    minutes: float | None

    def fraction(self) -> float | None:
        if self.minutes is None:
            return None
        return (time.perf_counter() - self.started) / (60.0 * self.minutes)

    def spent(self) -> bool:
        fraction = self.fraction()
        return fraction is not None and fraction >= 1.0


@dataclass
class Progress:
    """Where the epoch in progress stands and when the run folder was last written."""

    config: TrainConfig
    run_dir: Path | None = None  # where checkpoints go (None: the run is not saved)
    position: int = 0  # batches of the current epoch already trained (resume point)
    totals: tuple[float, int, int] = (0.0, 0, 0)  # this epoch's loss sum, batches, tokens
    saved_at: float = 0.0
    saved_step: int = 0
    pending: bytes | None = None  # a resumed rank's RNG and carried state, not yet restored

    def restore(self, objective: Objective, device: torch.device) -> None:
        """Put back the RNG states and the objective's carried state read from a checkpoint."""
        if self.pending is None:
            return
        carried = restore_rank_state(self.pending)
        self.pending = None
        if carried and hasattr(objective, "load_carried_state"):
            objective.load_carried_state({k: v.to(device) for k, v in carried.items()})

    def due(self, step: int, *, mid_epoch: bool = False) -> bool:
        """Whether a checkpoint is due by this process's clock or step count.

        `checkpoint_seconds=0` means "after every epoch", not "after every step".
        """
        every, seconds = self.config.checkpoint_every, self.config.checkpoint_seconds
        if every is not None and step - self.saved_step >= every:
            return True
        if mid_epoch and seconds == 0:
            return False
        return time.perf_counter() - self.saved_at >= seconds

    def saved(self, step: int) -> None:
        self.saved_at, self.saved_step = time.perf_counter(), step

    @staticmethod
    def agree(sigterm: bool, due: bool, fraction: float | None = None) -> tuple:
        """(fraction, due, sigterm) as every rank will act on them: the maximum over ranks."""
        if not distributed.active():
            return fraction, due, sigterm
        f, d, t = distributed.all_reduce_max(
            [-1.0 if fraction is None else fraction, float(due), float(sigterm)]
        )
        return (None if fraction is None else f), bool(d), bool(t)


def cadence(config: TrainConfig) -> str:
    """One line saying when checkpoints are written, so what a crash would lose is visible."""
    when = []
    if config.checkpoint_every is not None:
        when.append(f"every {config.checkpoint_every} steps")
    if config.checkpoint_seconds > 0:
        when.append(f"every {config.checkpoint_seconds:g} s")
    else:
        when.append("after every epoch")
    return (
        f"checkpoints {' and '.join(when)}, on SIGTERM and after the first and last epoch: a "
        "crash loses the work since the last one (--checkpoint-every, --checkpoint-seconds)"
    )


class SigtermFlag:
    seen = False


@contextmanager
def sigterm_flag() -> Iterator[SigtermFlag]:
    """Note SIGTERM instead of dying at once, so the loop can checkpoint and stop cleanly.

    Only the main thread can take signals; elsewhere (a server's worker thread) SIGTERM keeps
    its default meaning.
    """
    flag = SigtermFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def note(signum: int, frame: Any) -> None:
        del signum, frame
        flag.seen = True

    previous = signal.signal(signal.SIGTERM, note)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)
