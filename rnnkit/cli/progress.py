"""A progress bar for training, in the CLI layer only (the library logs, it does not draw)."""

from __future__ import annotations

import sys

from tqdm import tqdm

from rnnkit.training import Callback, TrainState
from rnnkit.training.distributed import is_main_process


class ProgressBar(Callback):
    """One bar per epoch: loss, learning rate, tokens/s and ETA; a summary line per epoch."""

    def __init__(self, monitor: str, disable: bool = False) -> None:
        self.monitor = monitor
        # A bar redrawn ten times a second is noise in a log file or CI; keep the epoch lines.
        self.disable = disable or not sys.stderr.isatty()
        # under torchrun only rank 0 reports; the others train in silence
        self.silent = not is_main_process()
        self.disable = self.disable or self.silent
        self.bar: tqdm | None = None

    def on_epoch_begin(self, state: TrainState) -> None:
        self.bar = tqdm(
            total=state.steps_per_epoch,
            desc=f"epoch {state.epoch}/{state.epochs}",
            unit="batch",
            leave=False,
            disable=self.disable,
            dynamic_ncols=True,
            mininterval=0.5,
        )

    def on_step(self, state: TrainState) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        last = state.metrics.get(self.monitor)
        self.bar.set_postfix(
            **({f"val_{self.monitor}": f"{last:.4f}"} if last is not None else {}),
            loss=f"{state.loss:.4f}",
            lr=f"{state.lr:.2e}",
            tok_s=f"{state.tokens_per_second:,.0f}",
            refresh=False,
        )

    def on_epoch_end(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.silent:
            return
        metrics = " ".join(f"val_{k}={v:.4f}" for k, v in state.metrics.items())
        mark = " *" if state.best_epoch == state.epoch else ""
        tqdm.write(
            f"epoch {state.epoch}/{state.epochs}  train_loss={state.loss:.4f}  {metrics}"
            f"  ({state.tokens_per_second:,.0f} tokens/s){mark}",
        )
