"""The language-modelling task for `fit`: next-token loss over truncated-BPTT windows.

`LanguageModelObjective` carries the hidden state from one window to the next (detached), and
evaluates loss (nats/token), perplexity and bits per character over a contiguous id stream.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.models.encoder import detach_state, state_from_tensors, state_tensors
from rnnkit.tasks.language_model.batches import LMBatch, LMWindows
from rnnkit.text import TextEncoder
from rnnkit.training import EvalContext
from rnnkit.training.precision import eval_mode


def encode_stream(encoder: TextEncoder, text: str) -> np.ndarray:
    """The whole text as one id stream, (N,) int64 (documents stay joined by blank lines)."""
    return encoder.encode_batch_arrays([text]).ids


# Evaluation windows are at least this long. The state carries from window to window, so their
# length changes the loss only in rounding; longer ones mean fewer model calls, and evaluation
# time saved is time a 10-minute budget can train with (docs/benchmarks.md, "Language models").
EVAL_WINDOW = 128


class LanguageModelObjective:
    """Next-token cross-entropy over truncated-BPTT windows, with the state carried between them.

    The task holds the running state between `compute_loss` calls: the first window of a pass
    (`batch.first`) starts from zeros, every later one from the previous window's final state,
    detached so gradients stop at the window boundary (truncated BPTT).

    Args:
        carry_state: False starts every window from zeros.
        chars_per_token: characters per token of the evaluated text, for bits per character.
        bptt: the training's window length; evaluation reads windows of at least
            `EVAL_WINDOW` steps.
        eval_batch_size: rows for evaluation.
    """

    monitor = "loss"
    monitor_mode: Literal["max", "min"] = "min"

    def __init__(
        self,
        carry_state: bool = True,
        chars_per_token: float = 1.0,
        bptt: int = 128,
        eval_batch_size: int = 16,
    ) -> None:
        self.carry_state = carry_state
        self.chars_per_token = chars_per_token
        self.bptt, self.eval_batch_size = bptt, eval_batch_size
        self.state: Any = None

    def carried_state(self) -> dict[str, torch.Tensor]:
        """The state carried into the next window, for a checkpoint inside an epoch."""
        return state_tensors(self.state)

    def load_carried_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.state = state_from_tensors(tensors)

    def compute_loss(self, model: torch.nn.Module, batch: LMBatch) -> torch.Tensor:
        state = None if batch.first or not self.carry_state else self.state
        logits, state = model(batch.inputs, state)  # (B, T, V)
        self.state = detach_state(state)
        return F.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten())

    def evaluate(self, model: torch.nn.Module, loader: Any, ctx: EvalContext) -> dict[str, float]:
        """Loss (nats/token), perplexity and bits per character; the state carries throughout."""
        nats, tokens = 0.0, 0
        state = None
        with eval_mode(model):
            for batch in loader:
                batch = batch.to(ctx.device)
                with ctx.precision.autocast():
                    logits, state = model(batch.inputs, None if batch.first else state)
                nats += float(
                    F.cross_entropy(
                        logits.float().flatten(0, 1), batch.targets.flatten(), reduction="sum"
                    )
                )
                tokens += batch.num_tokens
        return lm_metrics(nats, tokens, self.chars_per_token)

    def windows(self, ids: np.ndarray) -> LMWindows:
        """Evaluation windows over `ids` (fewer rows if the text is short)."""
        bptt = max(self.bptt, EVAL_WINDOW)
        rows = max(1, min(self.eval_batch_size, len(ids) // (2 * bptt)))
        return LMWindows(ids, rows, bptt)


def lm_metrics(nats: float, tokens: int, chars_per_token: float) -> dict[str, float]:
    """`loss` (nats/token), `perplexity`, `bits_per_char` from summed cross-entropy."""
    loss = nats / max(tokens, 1)
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),
        "bits_per_char": loss / math.log(2) / chars_per_token,
    }
