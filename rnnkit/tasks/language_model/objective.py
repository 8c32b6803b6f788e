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

from rnnkit.models.encoder import detach_state
from rnnkit.tasks.language_model.batches import LMBatch, LMWindows
from rnnkit.tasks.language_model.soft_targets import StoredTeacher
from rnnkit.text import TextEncoder
from rnnkit.training import EvalContext
from rnnkit.training.distill import (
    Teacher,
    carried_tensors,
    soft_cross_entropy,
    sparse_soft_cross_entropy,
    split_carried,
)
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
        teacher: when distilling, a language model on the same vocabulary whose next-token
            distributions (temperature-softened) are mixed into the loss; it carries its own
            state between windows, reset where the student's is.
        stored: the teacher's outputs over the training stream, read once
            (`distill.top_k`): looked up by the batch's stream positions instead of running
            `teacher` beside each step (which then only weighs the two losses).
    """

    monitor = "loss"
    monitor_mode: Literal["max", "min"] = "min"

    def __init__(
        self,
        carry_state: bool = True,
        chars_per_token: float = 1.0,
        bptt: int = 128,
        eval_batch_size: int = 16,
        teacher: Teacher | None = None,
        stored: StoredTeacher | None = None,
    ) -> None:
        self.carry_state = carry_state
        self.stored = stored
        self.chars_per_token = chars_per_token
        self.bptt, self.eval_batch_size = bptt, eval_batch_size
        self.teacher = teacher
        self.state: Any = None
        self.teacher_state: Any = None

    def carried_state(self) -> dict[str, torch.Tensor]:
        """The state carried into the next window (the teacher's too), for a checkpoint."""
        return carried_tensors(self.state, self.teacher_state)

    def load_carried_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.state, self.teacher_state = split_carried(tensors)

    def compute_loss(self, model: torch.nn.Module, batch: LMBatch) -> torch.Tensor:
        fresh = batch.first or not self.carry_state
        logits, state = model(batch.inputs, None if fresh else self.state)  # (B, T, V)
        self.state = detach_state(state)
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten())
        teacher = self.teacher
        if teacher is None or teacher.alpha == 0.0:
            return loss
        stored = self.stored
        if stored is not None:
            if batch.positions is None:
                raise ValueError("a stored teacher needs the batch's stream positions")
            top, ids = stored.lookup(batch.positions, batch.inputs.size(1), logits.device)
            return teacher.mix(
                loss, lambda: sparse_soft_cross_entropy(logits, top, ids, teacher.temperature)
            )
        teacher_logits, teacher_state = teacher(
            model, batch.inputs, None if fresh else self.teacher_state
        )
        self.teacher_state = teacher_state
        return teacher.mix(
            loss, lambda: soft_cross_entropy(logits, teacher_logits, teacher.temperature)
        )

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
